//! Escaping and number formatting shared by the page and the charts.

use std::fmt::Write;

/// Escapes text for HTML and SVG, in element content and in quoted
/// attributes alike, so a column named `<b>&"x"` stays text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newlines are not allowed
            // in XML (the SVG) and would only confuse a reader anyway.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {
                let _ = write!(out, "\u{FFFD}");
            }
            c => out.push(c),
        }
    }
    out
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A statistic, threshold or p-value: four decimals, or scientific notation
/// where four decimals would hide the value.
pub fn stat(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 {
        "0".to_string()
    } else if !(1e-4..1e5).contains(&a) {
        format!("{x:.2e}")
    } else {
        format!("{x:.4}")
    }
}

/// A short axis label: at most four significant digits, no trailing zeros.
pub fn short(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 {
        return "0".to_string();
    }
    if !(1e-3..1e6).contains(&a) {
        return format!("{x:.2e}");
    }
    let digits = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{x:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".to_string() } else { s }
}

/// A share as a percentage: one decimal, more where it would read as zero.
pub fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p == 0.0 || p >= 0.1 || p.is_nan() {
        format!("{p:.1}%")
    } else {
        format!("{p:.3}%")
    }
}

/// An integer with thousands separators.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A round tick step (1, 2, 2.5 or 5 times a power of ten) near `raw`.
pub(crate) fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 0.25;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let k = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|k| *k >= norm - 1e-9)
        .unwrap_or(10.0);
    k * mag
}

/// The CSS every chart page (performance, explanation) shares.
const PAGE_STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}\
h1{margin-bottom:.2em}h2{margin-top:1.6em}.sub{color:#555;margin-top:0}\
code{background:#f3f4f6;padding:0 .3em;border-radius:3px}\
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:1em}\
figure{margin:0;border:1px solid #dde1e6;border-radius:6px;padding:.6em .6em .2em}\
figcaption{font-size:15px;margin:0 0 .3em .3em}figcaption .name{font-weight:600}\
";

/// A chart page's start up to its heading: `title` (escaped here) and the
/// shared CSS followed by the page's own `style`.
pub fn page_head(title: &str, style: &str) -> String {
    let t = escape(title);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>{PAGE_STYLE}{style}</style></head><body><h1>{t}</h1>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_quotes_and_control_characters() {
        assert_eq!(
            escape(r#"<b id="x">Tom & 'Jerry'</b>"#),
            "&lt;b id=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
        assert_eq!(escape("a\u{0}b\tc"), "a\u{FFFD}b\tc");
        assert_eq!(escape("naïve ü 北京"), "naïve ü 北京");
    }

    #[test]
    fn truncate_counts_characters_not_bytes() {
        assert_eq!(truncate("Torgersen", 20), "Torgersen");
        assert_eq!(truncate("ééééé", 3), "éé…");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(stat(0.12), "0.1200");
        assert_eq!(stat(3.2e-7), "3.20e-7");
        assert_eq!(stat(0.0), "0");
        assert_eq!(short(10.0), "10");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(1234.5678), "1235");
        assert_eq!(short(-2.5), "-2.5");
        assert_eq!(short(33.333333), "33.33");
        assert_eq!(short(2.0e7), "2.00e7");
        assert_eq!(percent(0.0126), "1.3%");
        assert_eq!(percent(0.0), "0.0%");
        assert_eq!(percent(0.00001), "0.001%");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(999), "999");
    }
}
