//! Alerts from monitor reports: which metrics raise an alert, when an
//! alert that is already raised stays quiet (hysteresis) or may not be raised
//! again yet (cooldown), and delivery to a webhook (JSON POST) or a command
//! (JSON on standard input).
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
use std::io::Write;
use std::time::{Duration, Instant};

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
        // Refused when the spec loads, not when the first alert fires.
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

/// Sends `alert` to every sink of `spec`. A failing sink is recorded, never fatal.
pub fn deliver(spec: &AlertSpec, alert: &Alert) -> Vec<Delivery> {
    let body = serde_json::to_string(alert).unwrap_or_else(|_| "{}".into());
    let timeout = Duration::from_millis(spec.timeout_ms);
    let mut out = Vec::new();
    if let Some(url) = &spec.webhook {
        let (ok, detail) = post(url, &body, timeout);
        out.push(Delivery {
            sink: "webhook".into(),
            target: url.clone(),
            ok,
            detail,
        });
    }
    if let Some(cmd) = &spec.command {
        let (ok, detail) = run_command(cmd, alert, &body, timeout);
        out.push(Delivery {
            sink: "command".into(),
            target: cmd.join(" "),
            ok,
            detail,
        });
    }
    for d in &out {
        if d.ok {
            tracing::info!(monitor = %alert.monitor, sink = %d.sink, target = %d.target, detail = %d.detail, "alert delivered");
        } else {
            tracing::error!(monitor = %alert.monitor, sink = %d.sink, target = %d.target, detail = %d.detail, "alert delivery failed");
        }
    }
    out
}

const WEBHOOK_DISABLED: &str = "this keel was built without the `webhook` feature: alerts cannot be posted; use `command`, or rebuild with --features webhook";

#[cfg(not(feature = "webhook"))]
fn post(_url: &str, _body: &str, _timeout: Duration) -> (bool, String) {
    (false, WEBHOOK_DISABLED.into())
}

#[cfg(feature = "webhook")]
fn post(url: &str, body: &str, timeout: Duration) -> (bool, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    match agent
        .post(url)
        .header("content-type", "application/json")
        .send(body)
    {
        Ok(resp) => {
            let status = resp.status();
            (status.is_success(), format!("HTTP {}", status.as_u16()))
        }
        Err(e) => (false, e.to_string()),
    }
}

fn run_command(cmd: &[String], alert: &Alert, body: &str, timeout: Duration) -> (bool, String) {
    let Some((program, args)) = cmd.split_first() else {
        return (false, "no program".into());
    };
    let child = std::process::Command::new(program)
        .args(args)
        .env("KEEL_ALERT_PIPELINE", &alert.pipeline)
        .env("KEEL_ALERT_MONITOR", &alert.monitor)
        .env("KEEL_ALERT_SUMMARY", &alert.summary)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (false, format!("cannot start `{program}`: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is still a valid sink.
        let _ = stdin.write_all(body.as_bytes());
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return if status.success() {
                    (true, "exit 0".into())
                } else {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut e, &mut err);
                    }
                    let err = err.trim();
                    (
                        false,
                        if err.is_empty() {
                            status.to_string()
                        } else {
                            format!("{status}: {err}")
                        },
                    )
                };
            }
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return (false, format!("killed after {} ms", timeout.as_millis()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return (false, e.to_string()),
        }
    }
}

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

    fn alert() -> Alert {
        Alert {
            pipeline: "p".into(),
            version: "1".into(),
            monitor: "m".into(),
            time: String::new(),
            window: WindowInfo {
                index: 0,
                start_row: 0,
                rows: 1,
                start_time: None,
                end_time: None,
                partial: false,
            },
            summary: "s".into(),
            raised: Vec::new(),
            active: Vec::new(),
            deliveries: Vec::new(),
        }
    }

    #[test]
    fn command_sink_gets_the_json_and_failures_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("alert.json");
        let spec = AlertSpec {
            command: Some(vec![
                "sh".into(),
                "-c".into(),
                format!("cat > {}", out.display()),
            ]),
            ..AlertSpec::default()
        };
        let d = deliver(&spec, &alert());
        assert!(d[0].ok, "{d:?}");
        let got: Alert = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(got.monitor, "m");

        let failing = AlertSpec {
            command: Some(vec![
                "sh".into(),
                "-c".into(),
                "echo nope >&2; exit 3".into(),
            ]),
            ..AlertSpec::default()
        };
        let d = deliver(&failing, &alert());
        assert!(!d[0].ok && d[0].detail.contains("nope"), "{d:?}");

        let slow = AlertSpec {
            command: Some(vec!["sleep".into(), "5".into()]),
            timeout_ms: 100,
            ..AlertSpec::default()
        };
        let d = deliver(&slow, &alert());
        assert!(!d[0].ok && d[0].detail.contains("killed"), "{d:?}");

        let missing = AlertSpec {
            command: Some(vec!["/no/such/program".into()]),
            ..AlertSpec::default()
        };
        assert!(
            deliver(&missing, &alert())[0]
                .detail
                .contains("cannot start")
        );
    }

    #[test]
    #[cfg(feature = "webhook")]
    fn webhook_to_nothing_is_a_failed_delivery_not_an_error() {
        // A port nobody listens on: bind then drop.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let spec = AlertSpec {
            webhook: Some(format!("http://127.0.0.1:{port}/hook")),
            timeout_ms: 1000,
            ..AlertSpec::default()
        };
        let d = deliver(&spec, &alert());
        assert!(!d[0].ok);
    }
}
