//! `keel performance --format html`: a self-contained page (inline SVG and
//! CSS, no script) with one line chart per metric over the chunks: the
//! realized value, the CBPE estimate with its confidence band, the
//! reference bounds as dashed lines, alerts as red rings; then label
//! coverage per chunk and the segments' table.

use super::Outcome;
use crate::render::thousands;
use keel_algos::performance::{ChunkReport, metric_range};
use keel_report::escape;
use std::fmt::Write as _;
use std::path::Path;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 34.0;
const REALIZED: &str = "#4c78a8";
const ESTIMATED: &str = "#f58518";
const ALERT: &str = "#d62728";

/// The page.
pub fn render(analysis: &Path, out: &Outcome) -> String {
    let r = &out.report;
    let mut s = String::new();
    let title = format!("Performance of {}", analysis.display());
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
         .grid{{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:1em}}\
         figure{{margin:0;border:1px solid #e3e6ea;border-radius:6px;padding:.5em}}\
         table{{border-collapse:collapse}}td,th{{padding:.2em .8em;text-align:right}}\
         th:first-child,td:first-child{{text-align:left}}svg text{{font-size:11px}}</style>\
         </head><body><h1>{t}</h1>",
        t = escape(&title)
    );
    let _ = write!(
        s,
        "<p>{} predictions, {} labelled ({:.1} %); {} label(s) unmatched; task {}; chunks of {} rows.</p>",
        thousands(r.overall.rows as u64),
        thousands(r.overall.labelled as u64),
        r.overall.coverage * 100.0,
        thousands(out.unmatched as u64),
        super::task_name(r.task),
        thousands(out.chunk_size as u64)
    );
    let _ = write!(
        s,
        "<p><span style=\"color:{REALIZED}\">━ realized</span> \
         <span style=\"color:{ESTIMATED}\">━ estimated (band: ±3σ)</span> \
         <span style=\"color:#888\">┅ bounds</span> \
         <span style=\"color:{ALERT}\">○ alert</span></p><div class=\"grid\">"
    );
    for &m in r.task.metrics() {
        let _ = write!(s, "<figure>{}</figure>", chart(m, &r.chunks));
    }
    let coverage: Vec<Point> = r
        .chunks
        .iter()
        .map(|c| Point {
            value: Some(c.coverage),
            ..Point::default()
        })
        .collect();
    let _ = write!(
        s,
        "<figure>{}</figure></div>",
        svg("label coverage", &coverage, (0.0, 1.0), &[])
    );
    segments(&mut s, out);
    s.push_str("</body></html>\n");
    s
}

fn segments(s: &mut String, out: &Outcome) {
    let r = &out.report;
    if r.segments.is_empty() {
        return;
    }
    let names = r.task.metrics();
    s.push_str("<h2>Segments</h2><table><tr><th>segment</th><th>rows</th><th>labelled</th>");
    for m in names {
        let _ = write!(s, "<th>{m}</th>");
    }
    s.push_str("</tr>");
    for (name, seg) in &r.segments {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            escape(name),
            seg.rows,
            seg.labelled
        );
        for &m in names {
            let v = seg.realized.get(m).copied().flatten();
            let _ = write!(
                s,
                "<td>{}</td>",
                v.map_or("-".into(), |v| format!("{v:.4}"))
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
}

/// One chunk's values of a metric.
#[derive(Default, Clone, Copy)]
struct Point {
    value: Option<f64>,
    estimate: Option<f64>,
    band: Option<[f64; 2]>,
    alert: bool,
}

fn chart(metric: &str, chunks: &[ChunkReport]) -> String {
    let points: Vec<Point> = chunks
        .iter()
        .map(|c| Point {
            value: c.realized.get(metric).copied().flatten(),
            estimate: c.estimated.get(metric).copied().flatten(),
            band: c.confidence.get(metric).copied(),
            alert: c.alerts.iter().any(|a| a == metric),
        })
        .collect();
    let bounds: Vec<f64> = chunks
        .first()
        .and_then(|c| c.bounds.get(metric))
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let mut all: Vec<f64> = points
        .iter()
        .flat_map(|p| {
            [
                p.value,
                p.estimate,
                p.band.map(|b| b[0]),
                p.band.map(|b| b[1]),
            ]
        })
        .flatten()
        .chain(bounds.iter().copied())
        .filter(|x| x.is_finite())
        .collect();
    all.sort_by(f64::total_cmp);
    let (lo, hi) = match (all.first(), all.last()) {
        (Some(&lo), Some(&hi)) => {
            let pad = ((hi - lo) * 0.1).max(1e-3);
            let (min, max) = metric_range(metric);
            ((lo - pad).max(min), (hi + pad).min(max))
        }
        _ => (0.0, 1.0),
    };
    let bounds: Vec<f64> = bounds.into_iter().filter(|b| b.is_finite()).collect();
    svg(metric, &points, (lo, hi), &bounds)
}

/// A line chart of `points` over the chunks within `(lo, hi)`, with
/// horizontal dashed lines at `bounds`.
fn svg(title: &str, points: &[Point], (lo, hi): (f64, f64), bounds: &[f64]) -> String {
    let n = points.len().max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| LEFT + plot_w * (i as f64 + 0.5) / n as f64;
    let y = |v: f64| TOP + plot_h * (1.0 - (v - lo) / (hi - lo).max(1e-12));
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"keel-perf\" data-metric=\"{t}\" role=\"img\" aria-label=\"{t} per chunk\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">\
         <text x=\"{LEFT}\" y=\"16\" font-weight=\"bold\">{t}</text>",
        t = escape(title)
    );
    for k in 0..=4 {
        let v = lo + (hi - lo) * f64::from(k) / 4.0;
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#eee\"/>\
             <text x=\"{lx}\" y=\"{ty:.1}\" text-anchor=\"end\">{v:.3}</text>",
            x2 = WIDTH - RIGHT,
            yy = y(v),
            lx = LEFT - 6.0,
            ty = y(v) + 4.0,
        );
    }
    let step = n.div_ceil(12);
    for i in (0..n).step_by(step) {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x(i),
            HEIGHT - 12.0,
            i + 1
        );
    }
    for b in bounds {
        let _ = write!(
            s,
            "<line class=\"bound\" x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" \
             stroke=\"#888\" stroke-dasharray=\"5 4\"/>",
            x2 = WIDTH - RIGHT,
            yy = y(*b),
        );
    }
    // The band: upper edge left to right, lower edge back.
    let band: Vec<(usize, [f64; 2])> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.band.map(|b| (i, b)))
        .collect();
    if !band.is_empty() {
        let upper = band
            .iter()
            .map(|(i, b)| format!("{:.1},{:.1}", x(*i), y(b[1])));
        let lower = band
            .iter()
            .rev()
            .map(|(i, b)| format!("{:.1},{:.1}", x(*i), y(b[0])));
        let pts: Vec<String> = upper.chain(lower).collect();
        let _ = write!(
            s,
            "<polygon class=\"band\" points=\"{}\" fill=\"{ESTIMATED}\" fill-opacity=\"0.18\"/>",
            pts.join(" ")
        );
    }
    line(
        &mut s,
        points,
        |p| p.estimate,
        ESTIMATED,
        "estimated",
        &x,
        &y,
    );
    line(&mut s, points, |p| p.value, REALIZED, "realized", &x, &y);
    for (i, p) in points.iter().enumerate() {
        if let (true, Some(v)) = (p.alert, p.value.or(p.estimate)) {
            let _ = write!(
                s,
                "<circle class=\"alert\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"7\" fill=\"none\" \
                 stroke=\"{ALERT}\" stroke-width=\"2\"/>",
                x(i),
                y(v)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// A polyline through the points that have a value (a gap breaks it) with a dot at each.
fn line(
    s: &mut String,
    points: &[Point],
    value: impl Fn(&Point) -> Option<f64>,
    colour: &str,
    class: &str,
    x: &impl Fn(usize) -> f64,
    y: &impl Fn(f64) -> f64,
) {
    let mut run: Vec<String> = Vec::new();
    let flush = |run: &mut Vec<String>, s: &mut String| {
        if run.len() > 1 {
            let _ = write!(
                s,
                "<polyline class=\"{class}\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
                run.join(" ")
            );
        }
        run.clear();
    };
    for (i, p) in points.iter().enumerate() {
        match value(p) {
            Some(v) => {
                run.push(format!("{:.1},{:.1}", x(i), y(v)));
                let _ = write!(
                    s,
                    "<circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>chunk {}: {v:.4}</title></circle>",
                    x(i),
                    y(v),
                    i + 1
                );
            }
            None => flush(&mut run, s),
        }
    }
    flush(&mut run, s);
}
