//! The performance report (`keel performance --format html`) as a
//! self-contained page (inline SVG and CSS, no script) with one line chart per metric over the chunks: the
//! realized value, the CBPE estimate with its confidence band, the
//! reference bounds as dashed lines, alerted chunks shaded and ringed; then
//! label coverage per chunk as bars and the segments' table. Every name that
//! comes from the user (paths, column names, segment values) is escaped.

use crate::text::{count as thousands, escape, nice_step, page_head};
use keel_algos::performance::{ChunkReport, PerformanceReport, Task, metric_range};
use std::fmt::Write as _;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 58.0;
/// Room for the bounds' labels right of the plot.
const RIGHT: f64 = 50.0;
const TOP: f64 = 22.0;
/// Chunk numbers and the axis title.
const BOTTOM: f64 = 42.0;
const REALIZED: &str = "#1f5fa8";
const ESTIMATED: &str = "#e8730c";
const BOUND: &str = "#555";
const ALERT: &str = "#d62728";
const COVERAGE: &str = "#8c9aa8";

const STYLE: &str = ".alerted{color:#b31b1b;font-weight:600}.ok{color:#2b7a3d}.muted{color:#666;font-size:13px}\
.legend{display:flex;flex-wrap:wrap;gap:1.4em;align-items:center;margin:1em 0}\
.legend span{display:inline-flex;align-items:center;gap:.4em}\
svg text{font-size:12px;fill:#333}\
table{border-collapse:collapse;font-variant-numeric:tabular-nums}\
td,th{padding:.25em .8em;text-align:right;border-bottom:1px solid #e6e8eb}\
th{background:#f6f7f9}th:first-child,td:first-child{text-align:left}";

/// What the page shows besides the report: where it came from.
#[derive(Debug, Clone)]
pub struct PerformancePage<'a> {
    pub report: &'a PerformanceReport,
    /// The predictions file (the page's title names it).
    pub analysis: String,
    /// (role, file) of the other inputs: `labels`, `reference`.
    pub files: Vec<(&'static str, String)>,
    /// (role, column name): `id`, `label`, `score`, `prediction`, `segment`.
    pub columns: Vec<(&'static str, String)>,
    /// Label ids that matched no prediction.
    pub unmatched: usize,
    pub chunk_size: usize,
}

/// The page.
pub fn render_performance_html(page: &PerformancePage) -> String {
    let r = page.report;
    let mut s = String::new();
    let title = format!("Performance of {}", page.analysis);
    let _ = write!(s, "{}", page_head(&title, STYLE));
    inputs(&mut s, page);
    let _ = write!(
        s,
        "<p>{} predictions, {} labelled ({:.1} %); {} label(s) unmatched; task {}; {} chunk(s) of {} rows.</p>",
        thousands(r.overall.rows as u64),
        thousands(r.overall.labelled as u64),
        r.overall.coverage * 100.0,
        thousands(page.unmatched as u64),
        task_name(r.task),
        r.chunks.len(),
        thousands(page.chunk_size as u64)
    );
    legend(&mut s);
    s.push_str("<h2>Metrics per chunk</h2><div class=\"grid\">");
    for &m in r.task.metrics() {
        figure(&mut s, m, &r.chunks);
    }
    s.push_str("</div><h2>Label coverage</h2><div class=\"grid\"><figure>");
    coverage(&mut s, &r.chunks);
    s.push_str("</figure></div>");
    segments(&mut s, r);
    s.push_str("</body></html>\n");
    s
}

/// The files and columns the report was made from.
fn inputs(s: &mut String, page: &PerformancePage) {
    let code = |v: &str| format!("<code>{}</code>", escape(v));
    let mut files = vec![format!("predictions {}", code(&page.analysis))];
    files.extend(
        page.files
            .iter()
            .map(|(role, f)| format!("{role} {}", code(f))),
    );
    let columns: Vec<String> = page
        .columns
        .iter()
        .map(|(role, c)| format!("{role} {}", code(c)))
        .collect();
    let _ = write!(
        s,
        "<p class=\"sub\">From {}; columns: {}.</p>",
        files.join(", "),
        columns.join(", ")
    );
}

fn task_name(t: Task) -> &'static str {
    match t {
        Task::Binary => "binary",
        Task::Multiclass => "multiclass",
        Task::Regression => "regression",
    }
}

/// What each mark means, drawn with the marks themselves.
fn legend(s: &mut String) {
    let swatch = |body: &str| {
        format!(
            "<svg width=\"34\" height=\"16\" viewBox=\"0 0 34 16\" aria-hidden=\"true\">{body}</svg>"
        )
    };
    let items = [
        (
            swatch(&format!(
                "<line x1=\"1\" x2=\"33\" y1=\"8\" y2=\"8\" stroke=\"{REALIZED}\" stroke-width=\"2.5\"/>\
                 <circle cx=\"17\" cy=\"8\" r=\"4\" fill=\"{REALIZED}\"/>"
            )),
            "realized (from labels)",
        ),
        (
            swatch(&format!(
                "<rect x=\"1\" y=\"1\" width=\"32\" height=\"14\" fill=\"{ESTIMATED}\" fill-opacity=\"0.2\"/>\
                 <line x1=\"1\" x2=\"33\" y1=\"8\" y2=\"8\" stroke=\"{ESTIMATED}\" stroke-width=\"2.5\"/>\
                 <circle cx=\"17\" cy=\"8\" r=\"4\" fill=\"#fff\" stroke=\"{ESTIMATED}\" stroke-width=\"2\"/>"
            )),
            "estimated (CBPE) with its ±3σ band",
        ),
        (
            swatch(&format!(
                "<line x1=\"1\" x2=\"33\" y1=\"8\" y2=\"8\" stroke=\"{BOUND}\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/>"
            )),
            "alert bounds (from the reference)",
        ),
        (
            swatch(&format!(
                "<rect x=\"7\" y=\"0\" width=\"20\" height=\"16\" fill=\"{ALERT}\" fill-opacity=\"0.12\"/>\
                 <circle cx=\"17\" cy=\"8\" r=\"6\" fill=\"none\" stroke=\"{ALERT}\" stroke-width=\"2.5\"/>"
            )),
            "alert: out of bounds",
        ),
    ];
    s.push_str("<div class=\"legend\">");
    for (mark, text) in items {
        let _ = write!(s, "<span>{mark}{text}</span>");
    }
    s.push_str("</div>");
}

fn segments(s: &mut String, r: &PerformanceReport) {
    if r.segments.is_empty() {
        return;
    }
    let names = r.task.metrics();
    s.push_str(
        "<h2>Segments</h2><p class=\"sub\">Realized metrics over all labelled rows of each segment.</p>\
         <table><tr><th>segment</th><th>rows</th><th>labelled</th>",
    );
    for m in names {
        let _ = write!(s, "<th>{m}</th>");
    }
    s.push_str("</tr>");
    for (name, seg) in &r.segments {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            escape(name),
            thousands(seg.rows as u64),
            thousands(seg.labelled as u64)
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
/// One chunk's (or window's) marks.
#[derive(Default, Clone, Copy)]
pub(crate) struct Point {
    pub(crate) value: Option<f64>,
    pub(crate) estimate: Option<f64>,
    pub(crate) band: Option<[f64; 2]>,
    pub(crate) alert: bool,
}

/// A metric's chart with its caption: the alerted chunks and the bounds in words.
fn figure(s: &mut String, metric: &str, chunks: &[ChunkReport]) {
    let points: Vec<Point> = chunks
        .iter()
        .map(|c| Point {
            value: c.realized.get(metric).copied().flatten(),
            estimate: c.estimated.get(metric).copied().flatten(),
            band: c.confidence.get(metric).copied(),
            alert: c.alerts.iter().any(|a| a == metric),
        })
        .collect();
    let bounds = chunks.first().and_then(|c| c.bounds.get(metric)).copied();
    let alerted: Vec<String> = (1..=points.len())
        .filter(|i| points[i - 1].alert)
        .map(|i| i.to_string())
        .collect();
    let status = if alerted.is_empty() {
        "<span class=\"ok\">no alert</span>".to_owned()
    } else {
        format!(
            "<span class=\"alerted\">alert in chunk {}</span>",
            alerted.join(", ")
        )
    };
    let bounds_text = match bounds {
        Some([lo, hi]) => format!(
            " <span class=\"muted\">· bounds {} – {}</span>",
            fmt_bound(lo),
            fmt_bound(hi)
        ),
        None => " <span class=\"muted\">· no bounds (no reference)</span>".to_owned(),
    };
    let _ = write!(
        s,
        "<figure class=\"metric\" data-metric=\"{m}\"><figcaption><span class=\"name\">{m}</span> \
         {status}{bounds_text}</figcaption>",
        m = escape(metric)
    );
    let values = points
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
        .chain(bounds.into_iter().flatten());
    let plot = Plot::new(chunk_labels(chunks), "chunk", values, metric_range(metric));
    let lines: Vec<(f64, &str, &str)> = [
        (bounds.map(|b| b[0]), "lower"),
        (bounds.map(|b| b[1]), "upper"),
    ]
    .into_iter()
    .filter_map(|(b, name)| Some((b?, name, "bound")))
    .collect();
    s.push_str(&plot.chart(
        &format!("class=\"keel-perf\" data-metric=\"{}\"", escape(metric)),
        &format!("{metric} per chunk"),
        &points,
        &lines,
    ));
    s.push_str("</figure>");
}

fn fmt_bound(b: f64) -> String {
    if b.is_finite() {
        format!("{b:.3}")
    } else if b > 0.0 {
        "∞".into()
    } else {
        "−∞".into()
    }
}

/// Label coverage per chunk as bars on a 0–100 % axis.
fn coverage(s: &mut String, chunks: &[ChunkReport]) {
    let plot = Plot::new(
        chunk_labels(chunks),
        "chunk",
        [0.0, 1.0].into_iter(),
        (0.0, 1.0),
    );
    let mut body = plot.frame("class=\"keel-coverage\"", "label coverage per chunk", |v| {
        format!("{:.0} %", v * 100.0)
    });
    let w = plot.plot_w() / plot.n() as f64 * 0.6;
    for (i, c) in chunks.iter().enumerate() {
        let top = plot.y(c.coverage);
        let _ = write!(
            body,
            "<rect class=\"coverage\" data-chunk=\"{chunk}\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{w:.1}\" \
             height=\"{h:.1}\" fill=\"{COVERAGE}\"><title>{tip}: {l} of {n} labelled</title></rect>\
             <text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\">{pct:.0} %</text>",
            chunk = i + 1,
            x = plot.x(i) - w / 2.0,
            h = plot.y(0.0) - top,
            tip = chunk_label(i, c),
            l = thousands(c.labelled as u64),
            n = thousands(c.rows as u64),
            cx = plot.x(i),
            ty = top - 4.0,
            pct = c.coverage * 100.0,
        );
    }
    body.push_str("</svg>");
    s.push_str(&body);
}

fn chunk_labels(chunks: &[ChunkReport]) -> Vec<String> {
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| chunk_label(i, c))
        .collect()
}

fn chunk_label(i: usize, c: &ChunkReport) -> String {
    format!(
        "chunk {} (rows {}–{})",
        i + 1,
        thousands(c.start as u64),
        thousands(c.end as u64)
    )
}

/// The scales of one chart: chunks (or monitor windows) across, a padded
/// value range with round ticks up. `labels` name each point in its tooltip;
/// `x_title` is the axis title (`chunk`, `window`).
pub(crate) struct Plot {
    labels: Vec<String>,
    x_title: &'static str,
    lo: f64,
    hi: f64,
    step: f64,
}

impl Plot {
    pub(crate) fn new(
        labels: Vec<String>,
        x_title: &'static str,
        values: impl Iterator<Item = f64>,
        (min, max): (f64, f64),
    ) -> Self {
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.05).max(1e-3 * hi.abs().max(1.0));
        let (lo, hi) = ((lo - pad).max(min), (hi + pad).min(max));
        let step = nice_step((hi - lo) / 4.0);
        let lo = ((lo / step).floor() * step).max(min);
        let hi = ((hi / step).ceil() * step).min(max);
        Plot {
            labels,
            x_title,
            lo,
            hi,
            step,
        }
    }

    fn n(&self) -> usize {
        self.labels.len().max(1)
    }

    fn plot_w(&self) -> f64 {
        WIDTH - LEFT - RIGHT
    }

    fn x(&self, i: usize) -> f64 {
        LEFT + self.plot_w() * (i as f64 + 0.5) / self.n() as f64
    }

    fn y(&self, v: f64) -> f64 {
        let plot_h = HEIGHT - TOP - BOTTOM;
        TOP + plot_h * (1.0 - (v - self.lo) / (self.hi - self.lo).max(1e-12))
    }

    /// The opening `<svg>` with `attrs` (markup: escaped by the caller), its grid, value ticks, chunk numbers and axis
    /// title; the caller adds the marks and closes it.
    fn frame(&self, attrs: &str, label: &str, tick: impl Fn(f64) -> String) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg {attrs} role=\"img\" aria-label=\"{l}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
             width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">",
            l = escape(label)
        );
        let ticks = ((self.hi - self.lo) / self.step).round() as usize;
        for k in 0..=ticks.min(12) {
            let v = self.lo + self.step * k as f64;
            let _ = write!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e4e6e9\"/>\
                 <text x=\"{lx}\" y=\"{ty:.1}\" text-anchor=\"end\">{t}</text>",
                x2 = WIDTH - RIGHT,
                yy = self.y(v),
                lx = LEFT - 6.0,
                ty = self.y(v) + 4.0,
                t = tick(v),
            );
        }
        let axis = self.y(self.lo);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{axis:.1}\" y2=\"{axis:.1}\" stroke=\"#999\"/>",
            x2 = WIDTH - RIGHT
        );
        let n = self.labels.len();
        for i in (0..n).step_by(n.div_ceil(12).max(1)) {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                self.x(i),
                axis + 16.0,
                i + 1
            );
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#666\">{}</text>",
            LEFT + self.plot_w() / 2.0,
            HEIGHT - 4.0,
            self.x_title
        );
        s
    }

    /// A metric's chart (`attrs`: markup of the `<svg>` tag, escaped by the
    /// caller): alerted points shaded, horizontal `lines` (value, label,
    /// class: bounds, thresholds) dashed, band, estimate, realized value,
    /// alert rings on top.
    pub(crate) fn chart(
        &self,
        attrs: &str,
        label: &str,
        points: &[Point],
        lines: &[(f64, &str, &str)],
    ) -> String {
        let decimals = decimals(self.step);
        let mut s = self.frame(attrs, label, |v| format!("{v:.decimals$}"));
        let col = self.plot_w() / self.n() as f64;
        for i in (0..points.len()).filter(|i| points[*i].alert) {
            let _ = write!(
                s,
                "<rect class=\"alert-chunk\" data-chunk=\"{}\" x=\"{:.1}\" y=\"{TOP}\" width=\"{col:.1}\" \
                 height=\"{:.1}\" fill=\"{ALERT}\" fill-opacity=\"0.10\"/>",
                i + 1,
                self.x(i) - col / 2.0,
                HEIGHT - TOP - BOTTOM
            );
        }
        for &(b, name, class) in lines.iter().filter(|l| l.0.is_finite()) {
            // A label longer than the right margin goes above the line's end.
            let (tx, ty, anchor) = if name.chars().count() > 6 {
                (WIDTH - RIGHT, self.y(b) - 4.0, " text-anchor=\"end\"")
            } else {
                (WIDTH - RIGHT + 4.0, self.y(b) + 4.0, "")
            };
            let _ = write!(
                s,
                "<line class=\"{class}\" data-value=\"{b}\" x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" \
                 stroke=\"{BOUND}\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/>\
                 <text x=\"{tx}\" y=\"{ty:.1}\"{anchor} fill=\"{BOUND}\">{name}</text>",
                x2 = WIDTH - RIGHT,
                yy = self.y(b),
            );
        }
        self.band(&mut s, points);
        self.line(&mut s, points, |p| p.estimate, ESTIMATED, "estimated");
        self.line(&mut s, points, |p| p.value, REALIZED, "realized");
        for (i, p) in points.iter().enumerate() {
            if let (true, Some(v)) = (p.alert, p.value.or(p.estimate)) {
                let _ = write!(
                    s,
                    "<circle class=\"alert\" data-chunk=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"8\" fill=\"none\" \
                     stroke=\"{ALERT}\" stroke-width=\"2.5\"/>",
                    i + 1,
                    self.x(i),
                    self.y(v)
                );
            }
        }
        s.push_str("</svg>");
        s
    }

    /// The confidence band: upper edge left to right, lower edge back; a
    /// lone chunk's band is a short bar so it still shows.
    fn band(&self, s: &mut String, points: &[Point]) {
        let band: Vec<(usize, [f64; 2])> = points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.band.map(|b| (i, b)))
            .collect();
        let half = if band.len() == 1 {
            self.plot_w() / self.n() as f64 * 0.2
        } else {
            0.0
        };
        if band.is_empty() {
            return;
        }
        let upper = band.iter().flat_map(|(i, b)| {
            [(self.x(*i) - half, b[1]), (self.x(*i) + half, b[1])]
                .into_iter()
                .take(if half > 0.0 { 2 } else { 1 })
        });
        let lower = band.iter().rev().flat_map(|(i, b)| {
            [(self.x(*i) + half, b[0]), (self.x(*i) - half, b[0])]
                .into_iter()
                .take(if half > 0.0 { 2 } else { 1 })
        });
        let pts: Vec<String> = upper
            .chain(lower)
            .map(|(x, v)| format!("{x:.1},{:.1}", self.y(v)))
            .collect();
        let _ = write!(
            s,
            "<polygon class=\"band\" points=\"{}\" fill=\"{ESTIMATED}\" fill-opacity=\"0.2\"/>",
            pts.join(" ")
        );
    }

    /// A polyline through the points that have a value (a gap breaks it)
    /// with a marker at each: filled for realized, hollow for estimated.
    fn line(
        &self,
        s: &mut String,
        points: &[Point],
        value: impl Fn(&Point) -> Option<f64>,
        colour: &str,
        class: &str,
    ) {
        let fill = if class == "realized" { colour } else { "#fff" };
        let mut run: Vec<String> = Vec::new();
        let mut dots = String::new();
        let flush = |run: &mut Vec<String>, s: &mut String| {
            if run.len() > 1 {
                let _ = write!(
                    s,
                    "<polyline class=\"{class}\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.5\"/>",
                    run.join(" ")
                );
            }
            run.clear();
        };
        for (i, p) in points.iter().enumerate() {
            let Some(v) = value(p) else {
                flush(&mut run, s);
                continue;
            };
            run.push(format!("{:.1},{:.1}", self.x(i), self.y(v)));
            let _ = write!(
                dots,
                "<circle class=\"{class}\" data-chunk=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{fill}\" \
                 stroke=\"{colour}\" stroke-width=\"2\"><title>{}: {class} {v:.4}</title></circle>",
                i + 1,
                self.x(i),
                self.y(v),
                self.labels.get(i).map_or("", String::as_str)
            );
        }
        flush(&mut run, s);
        s.push_str(&dots);
    }
}

/// Decimals that print every multiple of `step` exactly.
fn decimals(step: f64) -> usize {
    (0..8)
        .find(|d| {
            let scaled = step * 10f64.powi(*d);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(8) as usize
}

#[cfg(test)]
mod tests {
    use super::decimals;
    use crate::text::nice_step;

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(0.07), 0.1);
        assert_eq!(nice_step(0.023), 0.025);
        assert_eq!(nice_step(300.0), 500.0);
        assert_eq!(decimals(0.025), 3);
        assert_eq!(decimals(0.1), 1);
        assert_eq!(decimals(500.0), 0);
    }
}
