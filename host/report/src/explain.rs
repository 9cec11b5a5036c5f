//! The explanation page (`keel explain --format html`): per explained row a
//! waterfall from the base value to the linked prediction, one bar per
//! feature (largest contributions first, the smallest folded into one), and
//! the global importance (mean |φ|) as a bar chart. Drawn from the JSON
//! `keel explain --format json` prints, with the charts of [`crate::svg`].

use crate::ReportError;
use crate::svg::{HBar, hbars_svg};
use crate::text::{escape, page_head, short};
use serde_json::Value;
use std::fmt::Write as _;

/// Feature bars a waterfall draws; the rest are one "other features" bar.
const WATERFALL_BARS: usize = 12;
/// Rows drawn; more rows are listed in the JSON only.
const MAX_ROWS: usize = 50;
const POSITIVE: &str = "#d62728";
const NEGATIVE: &str = "#1f77b4";
const IMPORTANCE: &str = "#5b6b7b";

const STYLE: &str = ".muted{color:#666;font-size:13px}svg text{font-size:12px;fill:#333}";

fn missing(parent: &str, field: &str) -> ReportError {
    ReportError::Missing {
        parent: parent.into(),
        field: field.into(),
    }
}

fn number(v: &Value, parent: &str, field: &str) -> Result<f64, ReportError> {
    v.get(field)
        .ok_or_else(|| missing(parent, field))?
        .as_f64()
        .ok_or_else(|| ReportError::Invalid {
            path: format!("{parent}.{field}"),
            message: "not a number".into(),
        })
}

fn text<'a>(v: &'a Value, parent: &str, field: &str) -> Result<&'a str, ReportError> {
    v.get(field)
        .ok_or_else(|| missing(parent, field))?
        .as_str()
        .ok_or_else(|| ReportError::Invalid {
            path: format!("{parent}.{field}"),
            message: "not a string".into(),
        })
}

/// `{column: number}` as pairs, largest magnitude first.
fn by_magnitude(v: &Value, path: &str) -> Result<Vec<(String, f64)>, ReportError> {
    let object = v.as_object().ok_or_else(|| ReportError::Invalid {
        path: path.into(),
        message: "not an object of column: value".into(),
    })?;
    let mut pairs = Vec::with_capacity(object.len());
    for (k, x) in object {
        let x = x.as_f64().ok_or_else(|| ReportError::Invalid {
            path: format!("{path}.{k}"),
            message: "not a number".into(),
        })?;
        pairs.push((k.clone(), x));
    }
    pairs.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    Ok(pairs)
}

fn signed(x: f64) -> String {
    if x >= 0.0 {
        format!("+{}", short(x))
    } else {
        short(x)
    }
}

/// The waterfall of one row: from `base`, a bar per feature.
fn waterfall(row: usize, base: f64, shap: &[(String, f64)], space: &str) -> String {
    let mut bars = Vec::new();
    let mut at = base;
    let (shown, rest) = shap.split_at(shap.len().min(WATERFALL_BARS));
    let mut step = |label: String, phi: f64, title: String| {
        bars.push(HBar {
            label,
            from: at,
            to: at + phi,
            class: if phi >= 0.0 { "pos" } else { "neg" },
            colour: if phi >= 0.0 { POSITIVE } else { NEGATIVE },
            title,
            note: signed(phi),
        });
        at += phi;
    };
    for (name, phi) in shown {
        step(name.clone(), *phi, format!("{name}: {phi}"));
    }
    if !rest.is_empty() {
        let phi: f64 = rest.iter().map(|(_, p)| p).sum();
        let names: Vec<&str> = rest.iter().map(|(n, _)| n.as_str()).collect();
        step(
            format!("{} other features", rest.len()),
            phi,
            format!("{}: {phi}", names.join(", ")),
        );
    }
    hbars_svg(
        "keel-waterfall",
        &format!(r#"data-row="{row}" data-base="{base}" data-end="{at}""#),
        &format!("Contributions to row {row}, from the base value {base} to {at}"),
        &bars,
        &format!("{space}, from the base value"),
    )
}

fn importance(pairs: &[(String, f64)]) -> String {
    let bars: Vec<HBar> = pairs
        .iter()
        .map(|(name, v)| HBar {
            label: name.clone(),
            from: 0.0,
            to: *v,
            class: "importance",
            colour: IMPORTANCE,
            title: format!("{name}: mean |φ| {v}"),
            note: short(*v),
        })
        .collect();
    hbars_svg(
        "keel-importance",
        "",
        "Global importance: mean absolute contribution per feature",
        &bars,
        "mean |φ|",
    )
}

/// Renders the JSON of `keel explain --format json` as a self-contained page.
pub fn render_explain_html(json: &Value) -> Result<String, ReportError> {
    let top = "explanation";
    let output = text(json, top, "output")?;
    let method = text(json, top, "method")?;
    let link = text(json, top, "link")?;
    let background = json
        .get("background")
        .ok_or_else(|| missing(top, "background"))?;
    let bg_rows = number(background, "background", "rows")?;
    let digest = text(background, "background", "digest")?;
    let shared = json.get("base_value").and_then(Value::as_f64);
    let rows = json
        .get("rows")
        .and_then(Value::as_array)
        .ok_or_else(|| missing(top, "rows"))?;
    let importance_pairs = by_magnitude(
        json.get("importance")
            .ok_or_else(|| missing(top, "importance"))?,
        "importance",
    )?;
    let space = if link == "logit" {
        format!("log-odds of {output}")
    } else {
        output.to_string()
    };
    let mut s = String::new();
    let title = format!("Why the pipeline predicted {output}");
    let _ = write!(
        s,
        "{head}\
         <p class=\"sub\">Shapley values ({m}, link {l}) of <code>{o}</code> over the raw input columns, \
         against {n} background rows (<code>{d}</code>). Each bar moves the value from the base \
         value towards the prediction; red raises it, blue lowers it.</p>",
        head = page_head(&title, STYLE),
        m = escape(method),
        l = escape(link),
        o = escape(output),
        n = bg_rows,
        d = escape(digest),
    );
    s.push_str("<h2>Global importance</h2><div class=\"grid\"><figure>");
    s.push_str(&importance(&importance_pairs));
    s.push_str("</figure></div><h2>Rows</h2><div class=\"grid\">");
    for (i, row) in rows.iter().enumerate().take(MAX_ROWS) {
        let parent = format!("rows[{i}]");
        let prediction = number(row, &parent, "prediction")?;
        let base = match row.get("base_value").and_then(Value::as_f64).or(shared) {
            Some(b) => b,
            None => return Err(missing(&parent, "base_value")),
        };
        let shap = by_magnitude(
            row.get("shap").ok_or_else(|| missing(&parent, "shap"))?,
            &format!("{parent}.shap"),
        )?;
        let end = base + shap.iter().map(|(_, p)| p).sum::<f64>();
        let _ = write!(
            s,
            "<figure><figcaption><span class=\"name\">Row {i}</span>: {o} = {p}; \
             base value {b} → {e}</figcaption>{svg}</figure>",
            o = escape(output),
            p = short(prediction),
            b = short(base),
            e = short(end),
            svg = waterfall(i, base, &shap, &space),
        );
    }
    s.push_str("</div>");
    if rows.len() > MAX_ROWS {
        let _ = write!(
            s,
            "<p class=\"muted\">{} more rows are in the JSON (<code>--format json</code>).</p>",
            rows.len() - MAX_ROWS
        );
    }
    s.push_str("</body></html>\n");
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_waterfall_per_row_ends_at_base_plus_contributions() {
        let j = json!({
            "output": "p<", "method": "exact", "link": "logit",
            "background": {"rows": 10, "digest": "sha256:ab"},
            "base_value": -1.0,
            "rows": [{"prediction": 0.5, "shap": {"a": 0.5, "b": 0.25, "<c>": 0.25}},
                     {"prediction": 0.2, "shap": {"a": -0.5, "b": 0.0, "<c>": 0.1}}],
            "importance": {"a": 0.5, "b": 0.125, "<c>": 0.175}
        });
        let html = render_explain_html(&j).unwrap();
        assert_eq!(html.matches("<svg class=\"keel-waterfall\"").count(), 2);
        assert!(
            html.contains(r#"data-row="0" data-base="-1" data-end="0""#),
            "{html}"
        );
        assert_eq!(html.matches("<svg class=\"keel-importance\"").count(), 1);
        assert!(!html.contains("<c>") && html.contains("&lt;c&gt;"));
        let e = render_explain_html(&json!({"output": "p"})).unwrap_err();
        assert_eq!(e.to_string(), "explanation: missing `method`");
    }
}
