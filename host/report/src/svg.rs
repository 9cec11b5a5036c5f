//! The reports' charts drawn as inline SVG, so they need no script, no
//! library and no network: overlaid reference-vs-current histograms, and
//! horizontal bars on a value axis (the explanation page's waterfalls and
//! importance).
//!
//! Bars are proportions of each side's values, not counts: the two data sets
//! differ in size, and only shares compare. Values outside a numeric
//! histogram's edges get their own `< min` / `> max` bars, set apart by a gap,
//! when either side has any.

use crate::model::{CategoricalHistogram, Histogram, NumericHistogram};
use crate::text::{count, escape, nice_step, percent, short, truncate};
use std::fmt::Write;

/// Colour of the reference bars (also used by the page's legend and CSS).
pub const REF_COLOUR: &str = "#4c78a8";
/// Colour of the current bars.
pub const CUR_COLOUR: &str = "#f58518";

/// About the width a chart gets in the page's two-column grid, so that its
/// text is drawn near its nominal size.
const WIDTH: f64 = 600.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const PLOT_HEIGHT: f64 = 190.0;
/// Longest category label drawn in full; the rest is in its tooltip.
const LABEL_CHARS: usize = 16;
/// Most axis labels drawn; more would overlap.
const MAX_LABELS: usize = 24;

/// One bar position: a bin, a category, or an out-of-range bucket.
struct Slot {
    /// What the bar counts, for its tooltip (`10 – 20`, `Biscoe`, `below 0`).
    what: String,
    reference: u64,
    current: u64,
    out_of_range: bool,
}

/// Shares of `counts` in their total; all zero when the total is zero.
pub fn proportions(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

/// Number of reference (and of current) bars the chart of `h` has.
pub fn bar_count(h: &Histogram) -> usize {
    match h {
        Histogram::Numeric(n) => {
            let below = n.reference_below + n.current_below > 0;
            let above = n.reference_above + n.current_above > 0;
            n.reference.len() + usize::from(below) + usize::from(above)
        }
        Histogram::Categorical(c) => c.categories.len(),
    }
}

/// The `<svg class="keel-hist">` of one column.
pub fn histogram_svg(column: &str, h: &Histogram) -> String {
    match h {
        Histogram::Numeric(n) => numeric(column, n),
        Histogram::Categorical(c) => categorical(column, c),
    }
}

fn numeric(column: &str, h: &NumericHistogram) -> String {
    let n = h.reference.len();
    let last = h.edges[n];
    let mut slots = Vec::with_capacity(n + 2);
    let below = h.reference_below + h.current_below > 0;
    let above = h.reference_above + h.current_above > 0;
    if below {
        slots.push(Slot {
            what: format!("below {}", short(h.edges[0])),
            reference: h.reference_below,
            current: h.current_below,
            out_of_range: true,
        });
    }
    for i in 0..n {
        slots.push(Slot {
            what: format!("{} – {}", short(h.edges[i]), short(h.edges[i + 1])),
            reference: h.reference[i],
            current: h.current[i],
            out_of_range: false,
        });
    }
    if above {
        slots.push(Slot {
            what: format!("above {}", short(last)),
            reference: h.reference_above,
            current: h.current_above,
            out_of_range: true,
        });
    }
    let geo = Geometry::new(slots.len(), below, above, 30.0);
    let mut labels = String::new();
    // Bin edges sit between bars; label every k-th so they never crowd.
    let step = (n + 1).div_ceil(MAX_LABELS / 2).max(1);
    let first = usize::from(below);
    for i in (0..=n).filter(|i| i % step == 0 || *i == n) {
        if i == n && !n.is_multiple_of(step) && n % step < step.div_ceil(2) {
            continue; // too close to the previous label
        }
        let x = geo.left_of(first + i.min(n - 1)) + if i == n { geo.slot } else { 0.0 };
        axis_label(
            &mut labels,
            x,
            geo.plot_bottom(),
            &short(h.edges[i]),
            None,
            false,
        );
    }
    if below {
        let x = geo.left_of(0) + geo.slot / 2.0;
        let text = format!("< {}", short(h.edges[0]));
        axis_label(&mut labels, x, geo.plot_bottom(), &text, None, false);
    }
    if above {
        let x = geo.left_of(slots.len() - 1) + geo.slot / 2.0;
        let text = format!("> {}", short(last));
        axis_label(&mut labels, x, geo.plot_bottom(), &text, None, false);
    }
    chart(column, ("bin", "bins"), &slots, &geo, &labels, 0.0)
}

fn categorical(column: &str, h: &CategoricalHistogram) -> String {
    let slots: Vec<Slot> = h
        .categories
        .iter()
        .zip(h.reference.iter().zip(&h.current))
        .map(|(cat, (&r, &c))| Slot {
            what: cat.clone(),
            reference: r,
            current: c,
            out_of_range: false,
        })
        .collect();
    let longest = h
        .categories
        .iter()
        .map(|c| c.chars().count().min(LABEL_CHARS))
        .max()
        .unwrap_or(0);
    let rotate = slots.len() > 8 || longest > 10;
    let bottom = if rotate {
        24.0 + longest as f64 * 5.2
    } else {
        30.0
    };
    let geo = Geometry::new(slots.len(), false, false, bottom);
    let step = slots.len().div_ceil(MAX_LABELS).max(1);
    let mut labels = String::new();
    for (i, cat) in h.categories.iter().enumerate() {
        if i % step != 0 {
            continue;
        }
        let x = geo.left_of(i) + geo.slot / 2.0;
        let shown = truncate(cat, LABEL_CHARS);
        let full = (shown != *cat).then_some(cat.as_str());
        axis_label(&mut labels, x, geo.plot_bottom(), &shown, full, rotate);
    }
    chart(
        column,
        ("category", "categories"),
        &slots,
        &geo,
        &labels,
        0.12,
    )
}

/// Horizontal layout: slots of equal width, with a gap of half a slot
/// setting the out-of-range slots apart.
struct Geometry {
    slot: f64,
    gap_after_first: bool,
    gap_before_last: bool,
    slots: usize,
    bottom: f64,
}

impl Geometry {
    fn new(slots: usize, gap_after_first: bool, gap_before_last: bool, bottom: f64) -> Self {
        let gaps = f64::from(u8::from(gap_after_first) + u8::from(gap_before_last));
        let units = slots.max(1) as f64 + gaps * 0.5;
        Geometry {
            slot: (WIDTH - LEFT - RIGHT) / units,
            gap_after_first,
            gap_before_last,
            slots,
            bottom,
        }
    }

    fn left_of(&self, i: usize) -> f64 {
        let mut x = LEFT + i as f64 * self.slot;
        if self.gap_after_first && i >= 1 {
            x += self.slot / 2.0;
        }
        if self.gap_before_last && i + 1 == self.slots {
            x += self.slot / 2.0;
        }
        x
    }

    fn plot_bottom(&self) -> f64 {
        TOP + PLOT_HEIGHT
    }

    fn height(&self) -> f64 {
        TOP + PLOT_HEIGHT + self.bottom
    }
}

fn axis_label(out: &mut String, x: f64, y: f64, text: &str, full: Option<&str>, rotate: bool) {
    let y = y + 14.0;
    let title = full
        .map(|f| format!("<title>{}</title>", escape(f)))
        .unwrap_or_default();
    if rotate {
        let _ = write!(
            out,
            r#"<text class="xlabel" x="{x:.1}" y="{y:.1}" text-anchor="end" transform="rotate(-40 {x:.1} {y:.1})">{title}{}</text>"#,
            escape(text)
        );
    } else {
        let _ = write!(
            out,
            r#"<text class="xlabel" x="{x:.1}" y="{y:.1}" text-anchor="middle">{title}{}</text>"#,
            escape(text)
        );
    }
}

/// A y-axis top and tick step, in shares, that covers `max` with at most
/// five round ticks.
fn y_scale(max: f64) -> (f64, f64) {
    if max <= 0.0 {
        return (1.0, 0.25);
    }
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| s * 5.0 >= max)
        .unwrap_or(10.0 * magnitude);
    let top = ((max / step) - 1e-9).ceil().max(1.0) * step;
    (top.min(1.0).max(step), step)
}

fn chart(
    column: &str,
    (unit, units): (&str, &str),
    slots: &[Slot],
    geo: &Geometry,
    labels: &str,
    bar_gap: f64,
) -> String {
    let refs: Vec<u64> = slots.iter().map(|s| s.reference).collect();
    let curs: Vec<u64> = slots.iter().map(|s| s.current).collect();
    let (ref_total, cur_total) = (refs.iter().sum::<u64>(), curs.iter().sum::<u64>());
    let (rp, cp) = (proportions(&refs), proportions(&curs));
    let max = rp.iter().chain(&cp).copied().fold(0.0, f64::max);
    let (top, step) = y_scale(max);
    let y = |share: f64| TOP + PLOT_HEIGHT * (1.0 - share / top);
    let name = escape(column);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="keel-hist" data-column="{name}" role="img" aria-label="Histogram of {name}: share of reference and current values per {unit}, {n} {units}" viewBox="0 0 {WIDTH} {h:.0}" width="100%" xmlns="http://www.w3.org/2000/svg">"#,
        n = slots.len(),
        h = geo.height(),
    );
    // Grid and y-axis labels.
    let decimals = if step * 100.0 >= 1.0 { 0 } else { 1 };
    let ticks = (top / step).round() as usize;
    for k in 0..=ticks {
        let share = k as f64 * step;
        let yy = y(share);
        let _ = write!(
            s,
            r##"<line class="grid" x1="{LEFT}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e3e6ea" stroke-width="1"/><text class="ylabel" x="{lx}" y="{ty:.1}" text-anchor="end">{p:.decimals$}%</text>"##,
            x2 = WIDTH - RIGHT,
            lx = LEFT - 6.0,
            ty = yy + 4.0,
            p = share * 100.0,
        );
    }
    // Legend, above the plot.
    let _ = write!(
        s,
        r#"<g class="legend"><rect x="{LEFT}" y="8" width="12" height="12" fill="{REF_COLOUR}" fill-opacity="0.6"/><text x="{t1}" y="18">reference ({rt} values)</text><rect x="{x2}" y="8" width="12" height="12" fill="{CUR_COLOUR}" fill-opacity="0.6"/><text x="{t2}" y="18">current ({ct} values)</text></g>"#,
        t1 = LEFT + 17.0,
        x2 = LEFT + 220.0,
        t2 = LEFT + 237.0,
        rt = count(ref_total),
        ct = count(cur_total),
    );
    for (i, slot) in slots.iter().enumerate() {
        let width = geo.slot * (1.0 - bar_gap) - 1.0;
        let x = geo.left_of(i) + geo.slot * bar_gap / 2.0 + 0.5;
        for (side, colour, c, share, total) in [
            ("ref", REF_COLOUR, slot.reference, rp[i], ref_total),
            ("cur", CUR_COLOUR, slot.current, cp[i], cur_total),
        ] {
            // A non-empty bin stays visible however small its share.
            let mut height = PLOT_HEIGHT * share / top;
            if c > 0 {
                height = height.max(1.0);
            }
            let side_name = if side == "ref" {
                "reference"
            } else {
                "current"
            };
            let (class, outline) = if slot.out_of_range {
                (
                    format!("bar {side} out"),
                    format!(r#" stroke="{colour}" stroke-dasharray="3 2""#),
                )
            } else {
                (format!("bar {side}"), String::new())
            };
            let _ = write!(
                s,
                r#"<rect class="{class}" x="{x:.2}" y="{yy:.2}" width="{w:.2}" height="{height:.2}" fill="{colour}" fill-opacity="0.55"{outline}><title>{what}: {side_name} {c} of {t} values ({p})</title></rect>"#,
                yy = TOP + PLOT_HEIGHT - height,
                w = width.max(0.5),
                what = escape(&slot.what),
                c = count(c),
                t = count(total),
                p = percent(share),
            );
        }
    }
    let _ = write!(
        s,
        r##"<line class="axis" x1="{LEFT}" x2="{x2}" y1="{b}" y2="{b}" stroke="#8a939e" stroke-width="1"/>{labels}</svg>"##,
        x2 = WIDTH - RIGHT,
        b = TOP + PLOT_HEIGHT,
    );
    s
}

/// One horizontal bar of [`hbars_svg`]: a span on the value axis.
pub struct HBar {
    /// The row's label, left of the plot.
    pub label: String,
    /// Where the bar starts and ends on the value axis.
    pub from: f64,
    pub to: f64,
    /// Extra classes (`pos`, `neg`, `total`, …) for CSS and tests.
    pub class: &'static str,
    pub colour: &'static str,
    /// The bar's tooltip.
    pub title: String,
    /// The text right of the bar.
    pub note: String,
}

const HBAR_LEFT: f64 = 170.0;
const HBAR_RIGHT: f64 = 80.0;
const HBAR_ROW: f64 = 24.0;
const HBAR_TOP: f64 = 10.0;
const HBAR_BOTTOM: f64 = 40.0;

/// Round ticks covering `lo ..= hi`, about five of them.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let step = nice_step((hi - lo) / 5.0);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Horizontal bars, one per row, each spanning `from..to` on a shared value
/// axis: the drawing behind the explanation page's waterfalls (each bar
/// starts where the previous ended) and its importance chart (bars from 0).
/// `class` names the chart (`keel-waterfall`, `keel-importance`), `attrs`
/// are extra attributes of the `<svg>`, `axis` the value axis' title.
pub fn hbars_svg(class: &str, attrs: &str, aria: &str, bars: &[HBar], axis: &str) -> String {
    let lo = bars
        .iter()
        .flat_map(|b| [b.from, b.to])
        .fold(f64::INFINITY, f64::min);
    let hi = bars
        .iter()
        .flat_map(|b| [b.from, b.to])
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        let pad = (hi - lo) * 0.04;
        (lo - pad, hi + pad)
    } else {
        (lo.min(0.0) - 1.0, hi.max(0.0) + 1.0)
    };
    let plot = WIDTH - HBAR_LEFT - HBAR_RIGHT;
    let x = |v: f64| HBAR_LEFT + plot * (v - lo) / (hi - lo);
    let height = HBAR_TOP + HBAR_ROW * bars.len() as f64 + HBAR_BOTTOM;
    let bottom = HBAR_TOP + HBAR_ROW * bars.len() as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="{class}" {attrs} role="img" aria-label="{aria}" viewBox="0 0 {WIDTH} {height:.0}" width="100%" xmlns="http://www.w3.org/2000/svg">"#,
        aria = escape(aria),
    );
    for t in ticks(lo, hi) {
        let _ = write!(
            s,
            r##"<line class="grid" x1="{tx:.1}" x2="{tx:.1}" y1="{HBAR_TOP}" y2="{bottom}" stroke="#e3e6ea" stroke-width="1"/><text class="xlabel" x="{tx:.1}" y="{ly:.1}" text-anchor="middle">{label}</text>"##,
            tx = x(t),
            ly = bottom + 14.0,
            label = short(t),
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let top = HBAR_TOP + HBAR_ROW * i as f64;
        let (x0, x1) = (x(b.from.min(b.to)), x(b.from.max(b.to)));
        // A zero-width bar stays visible as a hairline.
        let w = (x1 - x0).max(1.0);
        let _ = write!(
            s,
            r#"<text class="ylabel" x="{lx}" y="{ty:.1}" text-anchor="end">{title}{label}</text><rect class="bar {cls}" data-from="{from}" data-to="{to}" x="{x0:.2}" y="{y:.2}" width="{w:.2}" height="{h:.2}" fill="{colour}"><title>{tip}</title></rect><text class="note" x="{nx:.1}" y="{ty:.1}">{note}</text>"#,
            lx = HBAR_LEFT - 8.0,
            ty = top + HBAR_ROW / 2.0 + 4.0,
            title = if truncate(&b.label, 24) == b.label {
                String::new()
            } else {
                format!("<title>{}</title>", escape(&b.label))
            },
            label = escape(&truncate(&b.label, 24)),
            cls = b.class,
            from = b.from,
            to = b.to,
            y = top + 3.0,
            h = HBAR_ROW - 6.0,
            colour = b.colour,
            tip = escape(&b.title),
            nx = x0 + w + 4.0,
            note = escape(&b.note),
        );
    }
    let _ = write!(
        s,
        r##"<line class="axis" x1="{HBAR_LEFT}" x2="{x2}" y1="{bottom}" y2="{bottom}" stroke="#8a939e" stroke-width="1"/><text class="axis-title" x="{cx:.1}" y="{ay:.1}" text-anchor="middle">{axis}</text></svg>"##,
        x2 = WIDTH - HBAR_RIGHT,
        cx = HBAR_LEFT + plot / 2.0,
        ay = bottom + 32.0,
        axis = escape(axis),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_hist(below: u64, above: u64) -> Histogram {
        Histogram::Numeric(NumericHistogram {
            edges: vec![0.0, 10.0, 20.0, 30.0],
            reference: vec![10, 500, 490],
            current: vec![5, 300, 495],
            reference_below: below,
            reference_above: 0,
            current_below: 0,
            current_above: above,
        })
    }

    fn rects<'a>(svg: &'a str, class: &str) -> Vec<&'a str> {
        svg.split("<rect ")
            .skip(1)
            .filter(|r| r.starts_with(&format!("class=\"{class}")))
            .collect()
    }

    fn attr(tag: &str, name: &str) -> f64 {
        let start = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        let end = start + tag[start..].find('"').unwrap();
        tag[start..end].parse().unwrap()
    }

    #[test]
    fn proportions_are_shares_of_each_side() {
        assert_eq!(proportions(&[1, 3]), vec![0.25, 0.75]);
        assert_eq!(proportions(&[0, 0]), vec![0.0, 0.0]);
        let p = proportions(&[10, 500, 490]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bars_are_drawn_as_proportions_not_counts() {
        // 800 current values, 1000 reference: equal shares must give equal bars.
        let h = Histogram::Categorical(CategoricalHistogram {
            categories: vec!["a".into(), "b".into()],
            reference: vec![500, 500],
            current: vec![400, 400],
        });
        let svg = histogram_svg("c", &h);
        let (r, c) = (rects(&svg, "bar ref"), rects(&svg, "bar cur"));
        assert_eq!((r.len(), c.len()), (2, 2));
        for (r, c) in r.iter().zip(&c) {
            assert_eq!(attr(r, "height"), attr(c, "height"));
            assert_eq!(attr(r, "x"), attr(c, "x"), "overlaid, not side by side");
        }
        assert!(
            svg.contains("a: reference 500 of 1,000 values (50.0%)"),
            "{svg}"
        );
        assert!(
            svg.contains("a: current 400 of 800 values (50.0%)"),
            "{svg}"
        );
        // 50% is the largest share; the axis tops out at it, so the bar fills the plot.
        assert!((attr(r[0], "height") - PLOT_HEIGHT).abs() < 1e-6);
    }

    #[test]
    fn heights_follow_the_shares() {
        let svg = histogram_svg("age", &numeric_hist(0, 0));
        let refs = rects(&svg, "bar ref");
        let h: Vec<f64> = refs.iter().map(|r| attr(r, "height")).collect();
        // 10 : 500 : 490 of 1000.
        assert!((h[1] / h[2] - 500.0 / 490.0).abs() < 1e-3, "{h:?}");
        assert!((h[1] / h[0] - 50.0).abs() < 0.5, "{h:?}");
    }

    #[test]
    fn out_of_range_bars_appear_only_when_nonzero() {
        let plain = histogram_svg("age", &numeric_hist(0, 0));
        assert_eq!(rects(&plain, "bar ref").len(), 3);
        assert!(!plain.contains("&lt; 0") && !plain.contains("&gt; 30"));
        let h = numeric_hist(4, 7);
        assert_eq!(bar_count(&h), 5);
        let svg = histogram_svg("age", &h);
        assert_eq!(rects(&svg, "bar ref").len(), 5);
        assert_eq!(rects(&svg, "bar cur").len(), 5);
        assert_eq!(rects(&svg, "bar cur out").len(), 2);
        assert!(
            svg.contains(">&lt; 0</text>") && svg.contains(">&gt; 30</text>"),
            "{svg}"
        );
        assert!(
            svg.contains("above 30: current 7 of 807 values (0.9%)"),
            "{svg}"
        );
        // The out-of-range count is part of the current total: 5 of 807.
        assert!(
            svg.contains("0 – 10: current 5 of 807 values (0.6%)"),
            "{svg}"
        );
        assert_eq!(bar_count(&numeric_hist(0, 1)), 4);
    }

    #[test]
    fn chart_carries_its_column_and_escapes_everything() {
        let h = Histogram::Categorical(CategoricalHistogram {
            categories: vec!["<i>".into(), "a&b".into(), "\"q\"".into()],
            reference: vec![1, 2, 3],
            current: vec![3, 2, 1],
        });
        let svg = histogram_svg(r#"x"<y>"#, &h);
        assert!(svg.starts_with(
            r#"<svg class="keel-hist" data-column="x&quot;&lt;y&gt;" role="img" aria-label="Histogram of x&quot;&lt;y&gt;: "#
        ));
        assert!(!svg.contains("<i>") && !svg.contains("<y>") && !svg.contains("a&b"));
        assert!(svg.contains(">&lt;i&gt;</text>") && svg.contains(">a&amp;b</text>"));
    }

    #[test]
    fn long_and_many_categories_are_rotated_and_truncated() {
        let categories: Vec<String> = (0..12)
            .map(|i| format!("category number {i:02} long"))
            .collect();
        let h = Histogram::Categorical(CategoricalHistogram {
            reference: vec![1; 12],
            current: vec![2; 12],
            categories,
        });
        let svg = histogram_svg("c", &h);
        assert!(svg.contains("rotate(-40"));
        assert!(
            svg.contains("<title>category number 03 long</title>category number…</text>"),
            "{svg}"
        );
    }

    #[test]
    fn horizontal_bars_share_one_axis() {
        let bar = |from: f64, to: f64| HBar {
            label: "a<b".into(),
            from,
            to,
            class: "pos",
            colour: "#d62728",
            title: "t".into(),
            note: "n".into(),
        };
        let svg = hbars_svg(
            "keel-test",
            r#"data-x="1""#,
            "aria",
            &[bar(0.0, 2.0), bar(2.0, 1.0)],
            "φ",
        );
        let bars = rects(&svg, "bar pos");
        assert_eq!(bars.len(), 2);
        // Twice the span, twice the width; the second starts where the first ends... minus its own span.
        let (w0, w1) = (attr(bars[0], "width"), attr(bars[1], "width"));
        assert!((w0 / w1 - 2.0).abs() < 1e-3, "{w0} {w1}");
        assert!((attr(bars[1], "x") + w1 - (attr(bars[0], "x") + w0)).abs() < 0.01);
        assert!(svg.contains(">a&lt;b</text>") && !svg.contains("a<b"));
        let t = ticks(0.0, 1.0);
        assert_eq!((t.len(), t[0], t[5]), (6, 0.0, 1.0), "{t:?}");
    }

    #[test]
    fn y_axis_ticks_are_round() {
        assert_eq!(y_scale(0.5), (0.5, 0.1));
        assert_eq!(y_scale(0.37), (0.4, 0.1));
        assert_eq!(y_scale(1.0), (1.0, 0.2));
        let (top, step) = y_scale(0.013);
        assert!(
            (top - 0.015).abs() < 1e-12 && (step - 0.005).abs() < 1e-12,
            "{top} {step}"
        );
        assert_eq!(y_scale(0.0), (1.0, 0.25));
    }
}
