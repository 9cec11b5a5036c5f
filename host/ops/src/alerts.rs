//! Alert delivery: each raised alert posted to its monitor's `webhook` (a
//! JSON POST, with the `webhook` feature) and written to its `command`'s
//! standard input. The executor in keel-runtime evaluates alerts and hands
//! them to an [`AlertSink`]; [`SpecSinks`] is the one the CLI and the daemon
//! pass it.

#[cfg(not(feature = "webhook"))]
use keel_runtime::alert::WEBHOOK_DISABLED;
use keel_runtime::alert::{Alert, AlertSink, AlertSpec, Delivery};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Delivers to the webhook and the command each monitor's spec names.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpecSinks;

impl AlertSink for SpecSinks {
    fn deliver(&self, spec: &AlertSpec, alert: &Alert) -> Vec<Delivery> {
        deliver(spec, alert)
    }
}

/// [`SpecSinks`], shared: what `RunOptions::alerts` and `live_monitors` take.
pub fn sink() -> Arc<dyn AlertSink> {
    Arc::new(SpecSinks)
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
    use keel_runtime::window::WindowInfo;

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
