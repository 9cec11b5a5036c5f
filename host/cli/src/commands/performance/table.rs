//! `keel performance --format table`: the overall realized metrics, then
//! each chunk's rows, labels and metrics (realized, estimated with its
//! confidence band, bounds; `!` marks an alert), then the segments.

use super::Outcome;
use crate::render::thousands;
use keel_algos::performance::{Metrics, SegmentReport};
use std::fmt::Write as _;
use std::path::Path;

/// The whole table.
pub fn render(analysis: &Path, out: &Outcome) -> String {
    let r = &out.report;
    let names = r.task.metrics();
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: {} predictions, {} labelled ({}), task {}",
        analysis.display(),
        thousands(r.overall.rows as u64),
        thousands(r.overall.labelled as u64),
        percent(r.overall.coverage),
        super::task_name(r.task)
    );
    if out.unmatched > 0 {
        let _ = writeln!(
            o,
            "{} label(s) match no prediction (unmatched)",
            thousands(out.unmatched as u64)
        );
    }
    let _ = writeln!(o, "\noverall (realized)");
    metric_pairs(&mut o, names, &r.overall.realized);
    let alerts: usize = r.chunks.iter().map(|c| c.alerts.len()).sum();
    let _ = writeln!(
        o,
        "\nchunks of {} rows ({} alert(s); `!` marks a metric out of its bounds)",
        thousands(out.chunk_size as u64),
        alerts
    );
    for c in &r.chunks {
        let _ = writeln!(
            o,
            "  rows {}-{}: {} rows, {} labelled ({})",
            c.start,
            c.end,
            thousands(c.rows as u64),
            thousands(c.labelled as u64),
            percent(c.coverage)
        );
        let _ = writeln!(
            o,
            "    {:<20} {:>9} {:>10}  {:<19} bounds",
            "metric", "realized", "estimated", "confidence"
        );
        for &m in names {
            let band = |b: Option<&[f64; 2]>| {
                b.map_or_else(
                    || "-".to_owned(),
                    |[lo, hi]| format!("[{}, {}]", value(Some(*lo)), value(Some(*hi))),
                )
            };
            let estimated = c.estimated.get(m).copied().flatten();
            let _ = writeln!(
                o,
                "  {} {:<20} {:>9} {:>10}  {:<19} {}",
                if c.alerts.iter().any(|a| a == m) {
                    "!"
                } else {
                    " "
                },
                m,
                value(c.realized.get(m).copied().flatten()),
                if c.estimated.is_empty() {
                    "-".to_owned()
                } else {
                    value(estimated)
                },
                band(c.confidence.get(m)),
                band(c.bounds.get(m)),
            );
        }
    }
    if !r.segments.is_empty() {
        let _ = writeln!(o, "\nsegments");
        for (name, s) in &r.segments {
            segment(&mut o, name, s, names);
        }
    }
    o
}

fn segment(o: &mut String, name: &str, s: &SegmentReport, names: &[&str]) {
    let _ = writeln!(
        o,
        "  {name}: {} rows, {} labelled ({}){}",
        thousands(s.rows as u64),
        thousands(s.labelled as u64),
        percent(s.coverage),
        if s.judged {
            ""
        } else {
            ", too few labels to judge"
        }
    );
    if s.judged {
        metric_pairs(o, names, &s.realized);
    }
}

/// `name value` pairs, three to a line.
fn metric_pairs(o: &mut String, names: &[&str], metrics: &Metrics) {
    for line in names.chunks(3) {
        let _ = write!(o, "   ");
        for &m in line {
            let _ = write!(
                o,
                " {m:<18}{:>8}  ",
                value(metrics.get(m).copied().flatten())
            );
        }
        o.truncate(o.trim_end().len());
        o.push('\n');
    }
}

fn value(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.is_infinite() => if x > 0.0 { "inf" } else { "-inf" }.into(),
        Some(x) if x != 0.0 && (x.abs() >= 1e5 || x.abs() < 1e-3) => format!("{x:.3e}"),
        Some(x) => format!("{x:.4}"),
    }
}

fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}
