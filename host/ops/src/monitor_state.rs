//! Monitor state and history in the store: the state a monitor carries from
//! one run (or one daemon lifetime) to the next, the reports of the windows
//! it closed, and those reports as JSON.

use anyhow::{Context, Result};
use keel_runtime::instance::Report;
use keel_runtime::pipeline::{MonitorState, Pipeline, RunSummary};
use keel_runtime::window::WindowReport;
use keel_store::{Store, StoreError};
use std::collections::HashMap;

/// What the store holds for one monitor.
#[derive(Debug)]
pub enum Saved {
    /// No state saved.
    Nothing,
    /// State of this pipeline version: the monitor carries on from it.
    Resumable(MonitorState),
    /// State of another version of the pipeline: the monitor starts afresh.
    OtherVersion,
    /// State that does not decode.
    Unreadable(serde_json::Error),
}

/// Why a monitor's state could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("cannot encode monitor state: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The saved state of `monitor` of pipeline `pipeline`, judged against
/// `identity` (the digest of the canonical spec).
pub fn saved_monitor_state(
    store: &Store,
    pipeline: &str,
    monitor: &str,
    identity: &str,
) -> Result<Saved, StoreError> {
    let Some(bytes) = store.monitor_state(pipeline, monitor)? else {
        return Ok(Saved::Nothing);
    };
    Ok(match serde_json::from_slice::<MonitorState>(&bytes) {
        Ok(state) if state.identity == identity => Saved::Resumable(state),
        Ok(_) => Saved::OtherVersion,
        Err(e) => Saved::Unreadable(e),
    })
}

/// Saves `state` of `monitor` under `identity`.
pub fn save_monitor_state(
    store: &Store,
    pipeline: &str,
    monitor: &str,
    state: MonitorState,
    identity: &str,
) -> Result<(), SaveError> {
    let state = MonitorState {
        identity: identity.to_string(),
        ..state
    };
    store.put_monitor_state(pipeline, monitor, &serde_json::to_vec(&state)?)?;
    Ok(())
}

/// Appends a closed window's report to `monitor`'s history (its number there).
pub fn record_window(
    store: &Store,
    pipeline: &str,
    monitor: &str,
    w: &WindowReport,
) -> Result<u64, StoreError> {
    store.append_monitor_report(pipeline, monitor, &window_report_json(w))
}

/// Saved monitor states of `pipeline` that belong to `identity` (others are
/// from another pipeline version and are ignored, with a note).
pub fn load_monitor_states(
    store: &Store,
    pipeline: &Pipeline,
    identity: &str,
) -> Result<HashMap<String, MonitorState>> {
    let mut out = HashMap::new();
    for m in &pipeline.spec().monitors {
        match saved_monitor_state(store, &pipeline.spec().name, &m.name, identity)? {
            Saved::Nothing => {}
            Saved::Resumable(state) => {
                out.insert(m.name.clone(), state);
            }
            Saved::OtherVersion => {
                tracing::info!(monitor = %m.name, "saved monitor state is from another version of the pipeline; starting afresh");
            }
            Saved::Unreadable(e) => {
                return Err(e).with_context(|| {
                    format!("monitor `{}`: the saved state is not readable", m.name)
                });
            }
        }
    }
    Ok(out)
}

/// Saves each monitor's state and appends its window reports to its history.
pub fn save_monitor_states(
    store: &Store,
    pipeline: &Pipeline,
    summary: &RunSummary,
    identity: &str,
) -> Result<()> {
    let name = &pipeline.spec().name;
    for m in &summary.monitors {
        for w in &m.windows {
            record_window(store, name, &m.name, w)?;
        }
        if let Some(state) = &m.state {
            save_monitor_state(store, name, &m.name, state.clone(), identity)?;
        }
    }
    Ok(())
}

fn finite(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into)
}

/// A report's metrics as JSON (NaN and ±∞ become null).
pub fn metrics_json(r: &Report) -> serde_json::Value {
    r.metrics
        .iter()
        .map(|x| {
            serde_json::json!({
                "column": x.column, "name": x.name, "value": finite(x.value),
                "threshold": x.threshold, "p_value": x.p_value, "alert": x.alert,
            })
        })
        .collect()
}

/// A monitor report as JSON.
pub fn report_json(r: &Report) -> serde_json::Value {
    serde_json::json!({
        "rows": r.rows,
        "alert": r.alert,
        "summary": r.summary,
        "metrics": metrics_json(r),
    })
}

/// A window's report as JSON: the window, then the report.
pub fn window_report_json(w: &WindowReport) -> serde_json::Value {
    serde_json::json!({"window": w.window, "report": report_json(&w.report)})
}
