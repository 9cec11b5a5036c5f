//! What the CLI shows people: plugin descriptions, a progress bar, and the
//! closing run summary with bar charts of monitor statistics against their
//! thresholds (a picture first, the numbers beside it).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keel_runtime::PluginSummary;
use keel_runtime::pipeline::{Pipeline, RunSummary, severity_name};
use std::fmt::Write as _;
use std::path::Path;

/// Integers with thousands separators, as the HTML reports write them.
pub use keel_report::count as thousands;

/// `keel plugin inspect` as text.
pub fn inspect(s: &PluginSummary) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{} {} ({})", s.name, s.version, s.kind);
    let _ = writeln!(o, "  {}", s.description);
    let _ = writeln!(o, "digest   {}", s.digest);
    let _ = writeln!(o, "size     {} bytes", s.size_bytes);
    let _ = writeln!(o, "exports  {}", s.exports.join(", "));
    let _ = writeln!(o, "imports  {}", s.imports.join(", "));
    let schema = serde_json::to_string_pretty(&s.config_schema).unwrap_or_default();
    let _ = writeln!(o, "config schema:");
    for line in schema.lines() {
        let _ = writeln!(o, "  {line}");
    }
    o.trim_end().to_string()
}

/// A progress bar over the input's bytes, drawn only on a terminal.
pub fn progress_bar(total_bytes: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(total_bytes);
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} ({eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.001 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

/// A bar of `value` on a scale where the threshold sits at 20 cells; cells
/// past the threshold are drawn heavy so drift stands out without colour.
/// A metric's bar against its threshold. Tests are drawn as the evidence
/// `-log10 p` against `-log10 threshold`, so a longer bar is always worse; a
/// metric that alerts below its threshold (e.g. a disparate-impact ratio) gets
/// no bar rather than a misleading one.
fn metric_bar(m: &keel_runtime::instance::Metric) -> String {
    match (m.p_value, m.threshold) {
        (Some(p), Some(t)) if t > 0.0 && t < 1.0 => bar(-p.max(1e-300).log10(), Some(-t.log10())),
        (None, Some(t)) if (m.value >= t) == m.alert => bar(m.value, Some(t)),
        _ => String::new(),
    }
}

fn bar(value: f64, threshold: Option<f64>) -> String {
    const AT: f64 = 20.0;
    const MAX: usize = 40;
    let Some(t) = threshold.filter(|t| *t > 0.0) else {
        return String::new();
    };
    if !value.is_finite() {
        return "?".into();
    }
    let cells = ((value / t) * AT).round().clamp(0.0, MAX as f64) as usize;
    let mut s = String::new();
    for i in 0..MAX.max(AT as usize + 1) {
        let ch = if i < cells {
            if (i as f64) < AT { '▒' } else { '█' }
        } else if i == AT as usize {
            '|'
        } else if i < cells.max(AT as usize + 1) {
            ' '
        } else {
            break;
        };
        s.push(ch);
    }
    if value / t * AT > MAX as f64 {
        s.push('▶');
    }
    s
}

/// The closing summary of `keel run`.
pub fn summary(p: &Pipeline, s: &RunSummary, input: &Path, output: Option<&Path>) -> String {
    let spec = p.spec();
    let mut o = String::new();
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(
        o,
        "\n{} {}: {} → {}",
        spec.name,
        spec.version,
        input.display(),
        output.map_or_else(
            || "(output not written; pass --output FILE)".into(),
            |p| p.display().to_string()
        )
    );
    let _ = writeln!(
        o,
        "  {} rows in, {} out, {} rejected · {} batches · {} workers · {} · {} rows/s",
        thousands(s.rows_in),
        thousands(s.rows_out),
        thousands(s.rows_rejected),
        thousands(s.batches),
        s.workers,
        duration(s.elapsed),
        thousands((s.rows_in as f64 / secs) as u64)
    );
    if !s.stage_time.is_empty() {
        let _ = writeln!(o, "\nstages (time summed over workers)");
        let uses = p.plugins();
        for (stage, plugin, t) in &s.stage_time {
            let version = uses
                .iter()
                .find(|u| &u.name == stage)
                .map_or("", |u| u.version.as_str());
            let _ = writeln!(
                o,
                "  {stage:<20} {:<28} {:>10}",
                format!("{plugin} {version}"),
                duration(*t)
            );
        }
    }
    let _ = writeln!(o, "\nfindings");
    if s.findings.is_empty() {
        let _ = writeln!(o, "  none");
    }
    for ((validator, rule, severity), n) in &s.findings {
        let _ = writeln!(
            o,
            "  {validator:<20} {rule:<16} {severity:<8} {:>8}",
            thousands(*n)
        );
    }
    for (f, line) in s.examples.iter().take(5) {
        let at = line.map_or_else(String::new, |l| format!("line {l}: "));
        let _ = writeln!(
            o,
            "    {at}{} [{} {}]",
            f.finding.message,
            f.finding.rule,
            severity_name(f.finding.severity)
        );
    }
    let _ = writeln!(o, "\nmonitors");
    if s.monitors.is_empty() {
        let _ = writeln!(o, "  none");
    }
    for m in &s.monitors {
        match (&m.report, &m.error) {
            (_, Some(e)) => {
                let _ = writeln!(o, "  {} @ {}: FAILED: {e}", m.name, m.at);
            }
            (Some(r), None) => {
                let verdict = if r.alert { "ALERT" } else { "ok" };
                let _ = writeln!(o, "  {} @ {}: {verdict}: {}", m.name, m.at, r.summary);
                windows(&mut o, m);
                for metric in &r.metrics {
                    // Informational metrics at zero (e.g. no nulls) are noise.
                    if metric.threshold.is_none() && metric.value == 0.0 {
                        continue;
                    }
                    let col = metric.column.as_deref().unwrap_or("(dataset)");
                    let t = metric
                        .threshold
                        .map_or_else(|| "-".into(), |t| format!("{t:.3}"));
                    let p = metric.p_value.map_or_else(String::new, |p| {
                        if p < 1e-3 {
                            format!(" p={p:.0e}")
                        } else {
                            format!(" p={p:.3}")
                        }
                    });
                    let flag = if metric.alert { "ALERT" } else { "" };
                    let _ = writeln!(
                        o,
                        "    {col:<20} {:<17} {:>9.4} / {t:<6}{p} {:<5} {}",
                        metric.name,
                        metric.value,
                        flag,
                        metric_bar(metric)
                    );
                }
            }
            (None, None) => {
                let _ = writeln!(
                    o,
                    "  {} @ {}: not judged: the run failed (no alert, state unchanged; --partial keeps what it saw)",
                    m.name, m.at
                );
            }
        }
    }
    o.trim_end().to_string()
}

/// A windowed monitor's closed windows (the last few) and the alerts it raised.
fn windows(o: &mut String, m: &keel_runtime::pipeline::MonitorResult) {
    const SHOWN: usize = 8;
    if let Some(w) = m.window.as_ref().filter(|w| w.partial) {
        let _ = writeln!(
            o,
            "    open window #{}: {} rows from row {} (reported above; no alerts on a partial window)",
            w.index,
            thousands(w.rows),
            thousands(w.start_row)
        );
    }
    if !m.windows.is_empty() {
        let alerting = m.windows.iter().filter(|w| w.report.alert).count();
        let _ = writeln!(
            o,
            "    {} windows closed, {alerting} with an alert verdict{}",
            m.windows.len(),
            if m.windows.len() > SHOWN {
                " (last shown)"
            } else {
                ""
            }
        );
        for w in m.windows.iter().skip(m.windows.len().saturating_sub(SHOWN)) {
            let when = match (&w.window.start_time, &w.window.end_time) {
                (Some(a), Some(b)) => format!("{a} .. {b}"),
                _ => format!(
                    "rows {}..{}",
                    thousands(w.window.start_row),
                    thousands(w.window.start_row + w.window.rows)
                ),
            };
            let _ = writeln!(
                o,
                "      #{:<4} {when:<28} {:<5} {}",
                w.window.index,
                if w.report.alert { "ALERT" } else { "ok" },
                w.report.summary
            );
        }
    }
    for a in &m.alerts {
        let what: Vec<String> = a
            .raised
            .iter()
            .map(|r| {
                let v = r.p_value.map_or_else(
                    || format!("{:.4}", r.value),
                    |p| format!("{:.4} (p={p:.4})", r.value),
                );
                format!("{} {v}", r.key)
            })
            .collect();
        let sent: Vec<String> = a
            .deliveries
            .iter()
            .map(|d| format!("{} {}", d.sink, if d.ok { "ok" } else { "FAILED" }))
            .collect();
        let _ = writeln!(
            o,
            "    ⚑ alert (window #{}): {}{}",
            a.window.index,
            what.join(", "),
            if sent.is_empty() {
                String::new()
            } else {
                format!(" → {}", sent.join(", "))
            }
        );
    }
}

/// The summary as JSON (`--summary-json`).
pub fn summary_json(p: &Pipeline, s: &RunSummary) -> serde_json::Value {
    let findings: Vec<_> = s
        .findings
        .iter()
        .map(|((v, r, sev), n)| serde_json::json!({"validator": v, "rule": r, "severity": sev, "count": n}))
        .collect();
    let monitors: Vec<_> = s
        .monitors
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "at": m.at,
                "report": m.report.as_ref().map(keel_ops::report_json),
                "window": m.window,
                "error": m.error,
                "windows": m.windows.iter().map(keel_ops::window_report_json).collect::<Vec<_>>(),
                "alerts": m.alerts,
            })
        })
        .collect();
    serde_json::json!({
        "pipeline": {"name": p.spec().name, "version": p.spec().version},
        "plugins": p.plugins(),
        "rows_in": s.rows_in,
        "rows_out": s.rows_out,
        "rows_rejected": s.rows_rejected,
        "batches": s.batches,
        "workers": s.workers,
        "elapsed_s": s.elapsed.as_secs_f64(),
        "findings": findings,
        "monitors": monitors,
    })
}

/// `keel explain`'s table: per row the prediction, the base value and the
/// `top` largest contributions; then the global importance.
pub fn explanation(e: &keel_ops::explain::Explained, top: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let space = match e.link {
        keel_algos::explain::Link::Logit => "log-odds",
        keel_algos::explain::Link::Identity => "output",
    };
    let _ = writeln!(
        s,
        "explaining `{}`: {} Shapley values ({} link) over {} feature(s), background {} rows ({})",
        e.output,
        e.method.name(),
        e.link.name(),
        e.features.len(),
        e.background_rows,
        e.background_digest.short()
    );
    let width = e.features.iter().map(String::len).max().unwrap_or(0).max(7);
    for (i, r) in e.rows.iter().enumerate() {
        let _ = writeln!(
            s,
            "\nrow {i}: {} = {:.6}  (base value {:.6} + contributions = {:.6} in {space})",
            e.output,
            r.prediction,
            r.base_value,
            r.base_value + r.shap.iter().sum::<f64>()
        );
        let mut order: Vec<usize> = (0..r.shap.len()).collect();
        order.sort_by(|&a, &b| r.shap[b].abs().total_cmp(&r.shap[a].abs()));
        for &j in order.iter().take(top) {
            let _ = writeln!(s, "  {:<width$}  {:+.6}", e.features[j], r.shap[j]);
        }
        if order.len() > top {
            let rest: f64 = order[top..].iter().map(|&j| r.shap[j]).sum();
            let _ = writeln!(
                s,
                "  {:<width$}  {rest:+.6}",
                format!("({} more)", order.len() - top)
            );
        }
    }
    let _ = writeln!(s, "\nimportance (mean |φ| over {} row(s)):", e.rows.len());
    let importance = e.importance();
    let mut order: Vec<usize> = (0..importance.len()).collect();
    order.sort_by(|&a, &b| importance[b].total_cmp(&importance[a]));
    for j in order {
        let _ = writeln!(s, "  {:<width$}  {:.6}", e.features[j], importance[j]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_mark_the_threshold() {
        assert_eq!(
            bar(0.1, Some(0.2)).chars().filter(|c| *c == '▒').count(),
            10
        );
        let over = bar(0.3, Some(0.2));
        assert_eq!(over.chars().filter(|c| *c == '█').count(), 10);
        assert!(bar(10.0, Some(0.2)).ends_with('▶'));
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
