//! Monitors while data flows: created from the pipeline, resumed from saved
//! state, fed the tapped batches, concluded into results; each closed window
//! is evaluated for alerts, and each raised alert handed to the caller's
//! [`AlertSink`].

use super::Pipeline;
use crate::alert::{Alert, AlertSink, AlertSpec, AlertState};
use crate::error::{CallError, Outcome};
use crate::instance::{Instance, Report};
use crate::window::{self, Watch, WindowReport, WindowState};
use keel_data::Batch;
use std::collections::HashMap;
use std::sync::Arc;

/// A live monitor.
pub struct Monitor {
    pub name: String,
    at: usize,
    /// Fed by [`Pipeline::observe_labels`], not by [`Pipeline::observe`].
    labels: bool,
    pub instance: Instance,
    watch: Watch,
    alert_spec: AlertSpec,
    alert_state: AlertState,
    windows: Vec<WindowReport>,
    alerts: Vec<Alert>,
}

/// A monitor's state between runs: its open window and its alerts.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MonitorState {
    /// Identifies what the state belongs to (the caller's choice, e.g. the
    /// pipeline digest); state saved under another identity is not resumed.
    pub identity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowState>,
    #[serde(default)]
    pub alerts: AlertState,
}

/// What a monitor concluded over a run.
#[derive(Debug, Clone)]
pub struct MonitorResult {
    pub name: String,
    pub at: String,
    /// The report on the open window (windowed) or on the whole run.
    pub report: Option<Report>,
    /// Where that report's window lies (`partial` when it is still open).
    pub window: Option<window::WindowInfo>,
    pub error: Option<String>,
    /// Windows closed during the run, in order.
    pub windows: Vec<WindowReport>,
    /// Alerts raised during the run.
    pub alerts: Vec<Alert>,
    /// State to save so the next run carries on (without `identity`).
    pub state: Option<MonitorState>,
    /// Largest linear memory the monitor's instance reached, in bytes.
    pub peak_memory_bytes: Option<u64>,
}

/// A pipeline's monitors while data flows: fed batch by batch, concluded
/// at the end of a run (or whenever a daemon wants a status).
pub struct LiveMonitors {
    monitors: Vec<Monitor>,
    /// A monitor that failed is disabled, with its error kept for its result.
    errors: Vec<Option<String>>,
    /// Where raised alerts go (a webhook, a command, a queue: the caller's choice).
    sink: Arc<dyn AlertSink>,
}

impl LiveMonitors {
    /// The monitors' names, in spec order.
    pub fn names(&self) -> Vec<String> {
        self.monitors.iter().map(|m| m.name.clone()).collect()
    }

    /// Windows closed and alerts raised since the last call, per monitor
    /// name; they are handed over once (a daemon records them as they come).
    pub fn take_closed(&mut self) -> Vec<(String, Vec<WindowReport>, Vec<Alert>)> {
        self.monitors
            .iter_mut()
            .filter(|m| !m.windows.is_empty() || !m.alerts.is_empty())
            .map(|m| {
                (
                    m.name.clone(),
                    std::mem::take(&mut m.windows),
                    std::mem::take(&mut m.alerts),
                )
            })
            .collect()
    }
}

impl Pipeline {
    /// Creates the pipeline's monitors (one instance each).
    pub fn monitors(&self) -> Result<Vec<Monitor>, CallError> {
        self.monitors
            .iter()
            .map(|m| {
                let mut instance = Instance::create(&self.rt, &m.placement, Some(&m.reference))?;
                let watch = Watch::new(&m.placement.stage, m.window.clone(), &mut instance)
                    .map_err(|message| CallError {
                        plugin: m.placement.plugin.name().to_string(),
                        stage: m.placement.stage.clone(),
                        call: "snapshot",
                        outcome: Outcome::Error,
                        limit: None,
                        column: None,
                        message,
                    })?;
                Ok(Monitor {
                    name: m.placement.stage.clone(),
                    at: m.at,
                    labels: m.labels,
                    instance,
                    watch,
                    alert_spec: m.alerts.clone(),
                    alert_state: AlertState::default(),
                    windows: Vec::new(),
                    alerts: Vec::new(),
                })
            })
            .collect()
    }

    /// Creates the monitors and resumes each from its saved state, if any.
    /// A state that cannot be resumed disables that monitor (logged), not the run.
    /// Every alert the monitors raise is handed to `sink`.
    pub fn live_monitors(
        &self,
        resume: &HashMap<String, MonitorState>,
        sink: Arc<dyn AlertSink>,
    ) -> Result<LiveMonitors, CallError> {
        let mut monitors = self.monitors()?;
        let mut errors: Vec<Option<String>> = vec![None; monitors.len()];
        for (m, err) in monitors.iter_mut().zip(errors.iter_mut()) {
            if let Some(saved) = resume.get(&m.name) {
                m.alert_state = saved.alerts.clone();
                if let Some(w) = &saved.window
                    && let Err(e) = m.watch.resume(&mut m.instance, w)
                {
                    tracing::error!(monitor = %m.name, error = %e, "cannot resume the saved window; monitor disabled for this run");
                    *err = Some(format!("resuming the saved window: {e}"));
                }
            }
        }
        Ok(LiveMonitors {
            monitors,
            errors,
            sink,
        })
    }

    /// Feeds the batches tapped by one [`Worker::process`] call to the
    /// monitors attached at their points; windows that close are evaluated
    /// for alerts and kept until [`LiveMonitors::take_closed`] or [`Pipeline::conclude`].
    pub fn observe(&self, live: &mut LiveMonitors, taps: &[(usize, Batch)], now_ms: i64) {
        self.feed(live, now_ms, |m| {
            if m.labels {
                return None;
            }
            taps.iter().find(|(at, _)| *at == m.at).map(|(_, b)| b)
        });
    }

    /// Whether any monitor is fed labels (`feed = "labels"`).
    pub fn has_label_monitors(&self) -> bool {
        self.monitors.iter().any(|m| m.labels)
    }

    /// Feeds stored predictions joined to newly accepted labels to the
    /// monitors with `feed = "labels"`, as [`Pipeline::observe`] feeds the
    /// others stage output: same windows, alerts and state.
    pub fn observe_labels(&self, live: &mut LiveMonitors, joined: &Batch, now_ms: i64) {
        self.feed(live, now_ms, |m| m.labels.then_some(joined));
    }

    fn feed<'b>(
        &self,
        live: &mut LiveMonitors,
        now_ms: i64,
        batch_of: impl Fn(&Monitor) -> Option<&'b Batch>,
    ) {
        let sink = live.sink.as_ref();
        for (m, err) in live.monitors.iter_mut().zip(live.errors.iter_mut()) {
            if err.is_some() {
                continue;
            }
            let Some(b) = batch_of(m) else {
                continue;
            };
            match m.watch.feed(&mut m.instance, b, now_ms) {
                Ok(closed) => {
                    for wr in closed {
                        self.raise(m, &wr, sink);
                        m.windows.push(wr);
                    }
                }
                Err(e) => {
                    // A monitor is an observer: its failure is recorded, the data flows on.
                    tracing::error!(monitor = %m.name, error = %e, "monitor failed; disabled from here on");
                    *err = Some(e);
                }
            }
        }
    }

    /// Each monitor's result: its report on the open window (or, unwindowed,
    /// on everything seen), the windows closed and alerts raised since the
    /// last call, and the state to save. With `last`, unwindowed monitors
    /// raise their alerts, since what they saw is their only window (a status
    /// taken mid-stream passes `false`).
    pub fn conclude(&self, live: &mut LiveMonitors, last: bool) -> Vec<MonitorResult> {
        let mut out = Vec::with_capacity(live.monitors.len());
        let sink = live.sink.as_ref();
        for (m, err) in live.monitors.iter_mut().zip(live.errors.iter()) {
            let (open, error) = match err {
                Some(e) => (None, Some(e.clone())),
                None => match m.watch.report_open(&mut m.instance) {
                    Ok(r) => (Some(r), None),
                    Err(e) => (None, Some(e)),
                },
            };
            // Unwindowed, the run is the window; windowed, a partial window
            // raises nothing (too few rows to judge).
            if let Some(wr) = &open
                && last
                && !m.watch.windowed()
            {
                let wr = wr.clone();
                self.raise(m, &wr, sink);
            }
            let state = if error.is_none() {
                let window = if m.watch.windowed() {
                    m.watch.save(&mut m.instance).ok()
                } else {
                    None
                };
                Some(MonitorState {
                    identity: String::new(),
                    window,
                    alerts: m.alert_state.clone(),
                })
            } else {
                None
            };
            out.push(MonitorResult {
                name: m.name.clone(),
                at: self.point_name(m.at),
                window: open.as_ref().map(|w| w.window.clone()),
                report: open.map(|w| w.report),
                error,
                windows: std::mem::take(&mut m.windows),
                alerts: std::mem::take(&mut m.alerts),
                state,
                peak_memory_bytes: Some(m.instance.peak_memory() as u64).filter(|p| *p > 0),
            });
        }
        out
    }
}

impl Pipeline {
    /// Evaluates one window's report for alerts; logs what it raises and
    /// hands it to `sink`, keeping how each delivery went.
    fn raise(&self, m: &mut Monitor, wr: &WindowReport, sink: &dyn AlertSink) {
        let now = window::now_ms();
        let ev = m
            .alert_state
            .evaluate(&m.alert_spec, &wr.report, wr.window.index, now);
        for k in &ev.cleared {
            tracing::info!(monitor = %m.name, alert = %k, window = wr.window.index, "alert cleared");
        }
        if ev.raised.is_empty() {
            return;
        }
        let mut a = Alert {
            pipeline: self.spec.name.clone(),
            version: self.spec.version.clone(),
            monitor: m.name.clone(),
            time: window::rfc3339(now),
            window: wr.window.clone(),
            summary: wr.report.summary.clone(),
            raised: ev.raised,
            active: m.alert_state.active.keys().cloned().collect(),
            deliveries: Vec::new(),
        };
        tracing::warn!(
            monitor = %m.name,
            window = wr.window.index,
            raised = %a.raised.iter().map(|r| r.key.as_str()).collect::<Vec<_>>().join(", "),
            summary = %a.summary,
            "alert raised"
        );
        a.deliveries = sink.deliver(&m.alert_spec, &a);
        m.alerts.push(a);
    }
}
