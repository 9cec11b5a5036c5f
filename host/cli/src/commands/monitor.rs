//! `keel monitor status` and `keel monitor history`: what windowed monitors
//! have saved in the store (open window, active alerts) and the reports of
//! the windows they closed.

use super::Globals;
use crate::exit::Failure;
use anyhow::{Context, Result};
use keel_runtime::pipeline::MonitorState;
use keel_runtime::window::rfc3339;
use keel_store::Store;
use std::fmt::Write as _;

#[derive(clap::Subcommand)]
pub enum MonitorCommand {
    /// Each monitor's open window and active alerts, as saved after the last run.
    Status {
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The reports of a monitor's closed windows, newest first.
    History {
        pipeline: String,
        monitor: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

impl MonitorCommand {
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        let out = match self {
            MonitorCommand::Status { pipeline, json } => {
                status(&globals.store()?, pipeline.as_deref(), json)?
            }
            MonitorCommand::History {
                pipeline,
                monitor,
                limit,
                json,
            } => history(&globals.store()?, &pipeline, &monitor, limit, json)?,
        };
        out!("{out}");
        Ok(())
    }
}

/// One line per saved monitor: its open window and its active alerts.
fn status(store: &Store, pipeline: Option<&str>, json: bool) -> Result<String> {
    let mut rows = Vec::new();
    for (p, m, bytes) in store.monitor_states()? {
        if pipeline.is_some_and(|want| want != p) {
            continue;
        }
        let state: MonitorState = serde_json::from_slice(&bytes)
            .with_context(|| format!("{p}/{m}: the saved state is not readable"))?;
        let last = store.monitor_reports(&p, &m, Some(1))?.into_iter().next();
        rows.push((p, m, state, last));
    }
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(p, m, s, last)| {
                serde_json::json!({
                    "pipeline": p, "monitor": m,
                    "window": s.window.as_ref().map(|w| serde_json::json!({
                        "index": w.index, "start_row": w.start_row, "rows": w.rows,
                        "start_time": w.start_ms.map(rfc3339),
                    })),
                    "active_alerts": s.alerts.active,
                    "last_report": last.as_ref().map(|r| serde_json::json!({"seq": r.seq, "time": r.time, "report": r.report})),
                })
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&v)? + "\n");
    }
    let mut o = String::new();
    if rows.is_empty() {
        let _ = writeln!(
            o,
            "no monitor state saved yet (it is saved by `keel run` with a store)"
        );
    }
    for (p, m, s, last) in &rows {
        let window = match &s.window {
            Some(w) => format!(
                "open window #{}: {} rows from row {}{}",
                w.index,
                w.rows,
                w.start_row,
                w.start_ms
                    .map_or_else(String::new, |t| format!(", since {}", rfc3339(t)))
            ),
            None => "not windowed (one report per run)".into(),
        };
        let _ = writeln!(o, "{p}/{m}: {window}");
        if s.alerts.active.is_empty() {
            let _ = writeln!(o, "  no active alert");
        }
        for (key, a) in &s.alerts.active {
            let _ = writeln!(
                o,
                "  ⚑ {key} active since window #{} ({} clean window{} since)",
                a.since_window,
                a.clear,
                if a.clear == 1 { "" } else { "s" }
            );
        }
        if let Some(r) = last {
            let verdict = if r.report["report"]["alert"] == true {
                "ALERT"
            } else {
                "ok"
            };
            let _ = writeln!(
                o,
                "  last closed window #{} at {}: {verdict}: {}",
                r.report["window"]["index"],
                r.time,
                r.report["report"]["summary"].as_str().unwrap_or("")
            );
        }
    }
    Ok(o)
}

/// A monitor's closed windows, newest first.
fn history(
    store: &Store,
    pipeline: &str,
    monitor: &str,
    limit: usize,
    json: bool,
) -> Result<String> {
    let reports = store.monitor_reports(pipeline, monitor, Some(limit))?;
    if json {
        let mut o = String::new();
        for r in &reports {
            o.push_str(&serde_json::to_string(
                &serde_json::json!({"seq": r.seq, "time": r.time, "report": r.report}),
            )?);
            o.push('\n');
        }
        return Ok(o);
    }
    let mut o = String::new();
    if reports.is_empty() {
        let _ = writeln!(o, "no closed window recorded for {pipeline}/{monitor}");
    }
    for r in &reports {
        let w = &r.report["window"];
        let when = match (w["start_time"].as_str(), w["end_time"].as_str()) {
            (Some(a), Some(b)) => format!("{a} .. {b}"),
            _ => format!(
                "rows {}..{}",
                w["start_row"].as_u64().unwrap_or(0),
                w["start_row"].as_u64().unwrap_or(0) + w["rows"].as_u64().unwrap_or(0)
            ),
        };
        let rep = &r.report["report"];
        let _ = writeln!(
            o,
            "#{:<5} {}  {when:<30} {:<5} {}",
            w["index"],
            r.time,
            if rep["alert"] == true { "ALERT" } else { "ok" },
            rep["summary"].as_str().unwrap_or("")
        );
    }
    Ok(o)
}
