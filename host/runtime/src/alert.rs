//! Alerts from monitor reports: which metrics raise an alert, when an
//! alert that is already raised stays quiet (hysteresis) or may not be raised
//! again yet (cooldown), and the [`AlertSink`] a raised alert is handed to.
//! Delivery itself (a webhook's JSON POST, a command's standard input) is
//! not the runtime's: keel-ops implements it, so the executor does no I/O
//! beyond its plugins.
//!
//! Hysteresis is counted in windows rather than in metric values, so it
//! works the same for any plugin's metrics whichever way they cross their
//! threshold (a PSI rising above it, a p-value or a disparate-impact ratio
//! falling below it): a raised alert stays active, and silent, until its
//! metric has been clear for `clear_after` consecutive windows.

use crate::instance::Report;
use crate::window::WindowInfo;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A monitor's alert policy and sinks (the spec's `[monitors.alerts]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    /// `metrics`: every metric that crosses its threshold is its own alert;
    /// `verdict`: only the monitor's overall verdict (e.g. dataset drift).
    #[serde(default)]
    pub on: AlertOn,
    /// Consecutive clear windows before a raised alert clears and may be raised again.
    #[serde(default = "default_clear_after")]
    pub clear_after: u32,
    /// Windows after raising an alert during which the same alert is not raised again.
    #[serde(default)]
    pub cooldown_windows: u64,
    /// Seconds (wall clock) after raising an alert during which the same alert is not raised again.
    #[serde(default)]
    pub cooldown_seconds: u64,
    /// URL that receives each alert as a JSON POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Program and arguments run for each alert, with the alert JSON on stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Time allowed for each delivery.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_clear_after() -> u32 {
    2
}

fn default_timeout_ms() -> u64 {
    5000
}

impl Default for AlertSpec {
    fn default() -> AlertSpec {
        AlertSpec {
            on: AlertOn::default(),
            clear_after: default_clear_after(),
            cooldown_windows: 0,
            cooldown_seconds: 0,
            webhook: None,
            command: None,
            timeout_ms: default_timeout_ms(),
        }
    }
}

impl AlertSpec {
    /// Checks values serde cannot; the error names the key.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.clear_after == 0 {
            return Err(("clear_after", "must be at least 1".into()));
        }
        if self.timeout_ms == 0 {
            return Err(("timeout_ms", "must be at least 1".into()));
        }
        if let Some(url) = &self.webhook
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(("webhook", format!("`{url}` is not an http(s) URL")));
        }
        // Refused when the spec loads, not when the first alert fires. The
        // feature carries no code here: keel-ops/webhook, whose sink posts
        // webhooks, turns it on.
        if self.webhook.is_some() && !cfg!(feature = "webhook") {
            return Err(("webhook", WEBHOOK_DISABLED.into()));
        }
        if let Some(cmd) = &self.command
            && cmd.first().is_none_or(|p| p.is_empty())
        {
            return Err(("command", "name the program to run".into()));
        }
        Ok(())
    }
}

/// What raises alerts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AlertOn {
    #[default]
    Metrics,
    Verdict,
}

/// An alert that is raised and not yet cleared.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Active {
    /// Window in which it was raised.
    pub since_window: u64,
    /// Consecutive clear windows since it last alerted.
    pub clear: u32,
}

/// When an alert was last raised.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Raised {
    pub window: u64,
    pub unix_ms: i64,
}

/// Alert bookkeeping of one monitor, saved with its window state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct AlertState {
    /// Active alerts by key (`column/metric`, or `*/metric` for dataset-level ones).
    #[serde(default)]
    pub active: BTreeMap<String, Active>,
    #[serde(default)]
    pub last_raised: BTreeMap<String, Raised>,
}

/// A metric that raised an alert.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlertMetric {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub metric: String,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// What one report did to the alert state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Newly raised.
    pub raised: Vec<AlertMetric>,
    /// Alerting, but held back by hysteresis (already active) or cooldown.
    pub held: Vec<String>,
    /// Cleared in this window.
    pub cleared: Vec<String>,
}

fn key(column: Option<&str>, metric: &str) -> String {
    format!("{}/{metric}", column.unwrap_or("*"))
}

impl AlertState {
    /// Updates the state with one window's report.
    pub fn evaluate(
        &mut self,
        spec: &AlertSpec,
        report: &Report,
        window: u64,
        now_ms: i64,
    ) -> Evaluation {
        let mut ev = Evaluation::default();
        let candidates: Vec<(String, AlertMetric, bool)> = match spec.on {
            AlertOn::Metrics => report
                .metrics
                .iter()
                .filter(|m| m.threshold.is_some())
                .map(|m| {
                    let k = key(m.column.as_deref(), &m.name);
                    let am = AlertMetric {
                        key: k.clone(),
                        column: m.column.clone(),
                        metric: m.name.clone(),
                        value: m.value,
                        p_value: m.p_value,
                        threshold: m.threshold,
                    };
                    (k, am, m.alert)
                })
                .collect(),
            AlertOn::Verdict => {
                let dataset = report
                    .metrics
                    .iter()
                    .find(|m| m.column.is_none() && m.threshold.is_some());
                let am = AlertMetric {
                    key: "*/verdict".into(),
                    column: None,
                    metric: dataset.map_or_else(|| "verdict".into(), |m| m.name.clone()),
                    value: dataset.map_or(f64::from(u8::from(report.alert)), |m| m.value),
                    p_value: dataset.and_then(|m| m.p_value),
                    threshold: dataset.and_then(|m| m.threshold),
                };
                vec![("*/verdict".into(), am, report.alert)]
            }
        };
        for (k, am, alerting) in candidates {
            if alerting {
                if let Some(a) = self.active.get_mut(&k) {
                    a.clear = 0;
                    ev.held.push(k);
                    continue;
                }
                let cooling = self.last_raised.get(&k).is_some_and(|r| {
                    window.saturating_sub(r.window) < spec.cooldown_windows
                        || now_ms.saturating_sub(r.unix_ms)
                            < i64::try_from(spec.cooldown_seconds.saturating_mul(1000))
                                .unwrap_or(i64::MAX)
                });
                if cooling {
                    ev.held.push(k);
                    continue;
                }
                self.active.insert(
                    k.clone(),
                    Active {
                        since_window: window,
                        clear: 0,
                    },
                );
                self.last_raised.insert(
                    k,
                    Raised {
                        window,
                        unix_ms: now_ms,
                    },
                );
                ev.raised.push(am);
            } else if let Some(a) = self.active.get_mut(&k) {
                a.clear += 1;
                if a.clear >= spec.clear_after {
                    self.active.remove(&k);
                    ev.cleared.push(k);
                }
            }
        }
        ev
    }
}

/// One raised alert, as logged, recorded and delivered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    pub pipeline: String,
    pub version: String,
    pub monitor: String,
    /// When it was raised (RFC 3339 UTC).
    pub time: String,
    pub window: WindowInfo,
    /// The monitor's one-line summary of the window.
    pub summary: String,
    pub raised: Vec<AlertMetric>,
    /// Every alert of this monitor still active after this window.
    pub active: Vec<String>,
    /// How each sink took it.
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
}

/// The outcome of one delivery.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    /// `webhook` or `command`.
    pub sink: String,
    pub target: String,
    pub ok: bool,
    /// HTTP status, exit status, or the error.
    pub detail: String,
}

/// Where raised alerts go. The executor evaluates alerts and hands each
/// raised one to the sink its caller passed in; the sink knows HTTP,
/// processes or queues, the executor does not (keel-ops delivers to the
/// spec's webhook and command). A failing delivery is recorded in the
/// returned [`Delivery`]s, never an error of the run.
pub trait AlertSink: Send + Sync {
    /// Delivers `alert` to the sinks `spec` names; one entry per attempt.
    fn deliver(&self, spec: &AlertSpec, alert: &Alert) -> Vec<Delivery>;
}

impl std::fmt::Debug for dyn AlertSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlertSink")
    }
}

/// Delivers nothing: raised alerts are still logged and kept with the
/// monitor's results. For tests and for callers that deliver alerts
/// themselves from what `LiveMonitors::take_closed` hands over.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDelivery;

impl AlertSink for NoDelivery {
    fn deliver(&self, _spec: &AlertSpec, _alert: &Alert) -> Vec<Delivery> {
        Vec::new()
    }
}

/// Why a `webhook` is refused in a build without the `webhook` feature,
/// both when a spec loads and (should one get through) when delivering.
pub const WEBHOOK_DISABLED: &str = "this keel was built without the `webhook` feature: alerts cannot be posted; use `command`, or rebuild with --features webhook";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::Metric;

    fn report(values: &[(&str, f64, bool)]) -> Report {
        Report {
            rows: 10,
            alert: values.iter().any(|v| v.2),
            metrics: values
                .iter()
                .map(|(c, v, a)| Metric {
                    column: Some((*c).into()),
                    name: "psi".into(),
                    value: *v,
                    threshold: Some(0.2),
                    p_value: None,
                    alert: *a,
                })
                .collect(),
            summary: String::new(),
        }
    }

    #[test]
    fn a_drifting_column_raises_once_then_clears_after_clean_windows() {
        let spec = AlertSpec::default();
        let mut s = AlertState::default();
        let drift = report(&[("a", 0.5, true), ("b", 0.0, false)]);
        let clean = report(&[("a", 0.0, false), ("b", 0.0, false)]);
        let ev = s.evaluate(&spec, &drift, 0, 0);
        assert_eq!(ev.raised.len(), 1);
        assert_eq!(ev.raised[0].key, "a/psi");
        // Still drifting: no storm.
        for w in 1..5 {
            let ev = s.evaluate(&spec, &drift, w, 0);
            assert!(ev.raised.is_empty());
            assert_eq!(ev.held, vec!["a/psi".to_string()]);
        }
        // One clean window is not enough (clear_after = 2), and a relapse resets the count.
        assert!(s.evaluate(&spec, &clean, 5, 0).cleared.is_empty());
        assert!(s.evaluate(&spec, &drift, 6, 0).raised.is_empty());
        assert!(s.evaluate(&spec, &clean, 7, 0).cleared.is_empty());
        assert_eq!(
            s.evaluate(&spec, &clean, 8, 0).cleared,
            vec!["a/psi".to_string()]
        );
        // Cleared: it may be raised again.
        assert_eq!(s.evaluate(&spec, &drift, 9, 0).raised.len(), 1);
    }

    #[test]
    fn cooldown_holds_back_a_flapping_alert() {
        let spec = AlertSpec {
            clear_after: 1,
            cooldown_windows: 5,
            cooldown_seconds: 60,
            ..AlertSpec::default()
        };
        let mut s = AlertState::default();
        let drift = report(&[("a", 0.5, true)]);
        let clean = report(&[("a", 0.0, false)]);
        assert_eq!(s.evaluate(&spec, &drift, 0, 0).raised.len(), 1);
        assert_eq!(s.evaluate(&spec, &clean, 1, 1000).cleared.len(), 1);
        // Within 5 windows: held.
        assert!(s.evaluate(&spec, &drift, 2, 2000).raised.is_empty());
        s.evaluate(&spec, &clean, 3, 3000);
        // Past 5 windows but within 60 s: held.
        assert!(s.evaluate(&spec, &drift, 6, 30_000).raised.is_empty());
        // Past both.
        assert_eq!(s.evaluate(&spec, &drift, 7, 61_000).raised.len(), 1);
    }

    #[test]
    fn verdict_mode_uses_the_report_verdict_only() {
        let spec = AlertSpec {
            on: AlertOn::Verdict,
            ..AlertSpec::default()
        };
        let mut s = AlertState::default();
        let mut r = report(&[("a", 0.5, true)]);
        r.alert = false;
        assert!(s.evaluate(&spec, &r, 0, 0).raised.is_empty());
        r.alert = true;
        let ev = s.evaluate(&spec, &r, 1, 0);
        assert_eq!(ev.raised.len(), 1);
        assert_eq!(ev.raised[0].key, "*/verdict");
    }

    #[test]
    fn spec_checks_name_the_key() {
        let bad = |t: &str| {
            toml::from_str::<AlertSpec>(t)
                .unwrap()
                .check()
                .unwrap_err()
                .0
        };
        assert_eq!(bad("clear_after = 0"), "clear_after");
        assert_eq!(bad("webhook = \"ftp://x\""), "webhook");
        assert_eq!(bad("command = []"), "command");
        assert!(toml::from_str::<AlertSpec>("hook = \"x\"").is_err());
    }
}
