//! The load generator as a command (the serving benchmark drives it):
//!
//! ```text
//! cargo run --release -p keel-server --example loadgen -- \
//!     --addr 127.0.0.1:8080 --path /v2/models/bench/infer --body-file req.json \
//!     [--rate 2000] [--connections 8] [--duration 10s] [--requests N] \
//!     [--warmup 1s] [--header 'authorization: Bearer x'] [--unique-ids]
//! ```
//!
//! Prints the report as JSON on stdout and a one-line summary on stderr.
//! `--unique-ids` gives each request the id `<body id>-<run>-<n>`: the
//! daemon refuses an id it has already recorded.

use bytes::Bytes;
use keel_server::loadgen::{LoadSpec, run_blocking};
use std::sync::Arc;
use std::time::Duration;

fn duration(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(v) = s.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>()
        .map(|x| Duration::from_secs_f64(x * scale))
        .map_err(|e| format!("duration `{s}`: {e}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut addr = None;
    let mut path = String::from("/v2/models/bench/infer");
    let mut body_file = None;
    let mut rate = None;
    let mut connections = 8;
    let mut dur = Duration::from_secs(10);
    let mut requests = None;
    let mut warmup = Duration::from_secs(1);
    let mut headers = Vec::new();
    let mut unique = false;
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--addr" => addr = Some(value()?.parse()?),
            "--path" => path = value()?,
            "--body-file" => body_file = Some(value()?),
            "--rate" => rate = Some(value()?.parse::<f64>()?),
            "--connections" => connections = value()?.parse()?,
            "--duration" => dur = duration(&value()?)?,
            "--requests" => requests = Some(value()?.parse()?),
            "--warmup" => warmup = duration(&value()?)?,
            "--header" => {
                let h = value()?;
                let (k, v) = h
                    .split_once(':')
                    .ok_or(format!("header `{h}`: NAME: VALUE"))?;
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
            "--unique-ids" => unique = true,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    let addr = addr.ok_or("--addr is required")?;
    let body_file = body_file.ok_or("--body-file is required")?;
    let text = std::fs::read_to_string(&body_file)?;
    let body: Arc<dyn Fn(u64) -> Bytes + Send + Sync> = if unique {
        let mut v: serde_json::Value = serde_json::from_str(&text)?;
        // Unique across runs too: the daemon refuses ids it has recorded.
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let base = format!(
            "{}-{run:x}",
            v.get("id").and_then(|x| x.as_str()).unwrap_or("load")
        );
        // A placeholder id replaced per request: formatting the JSON once.
        v["id"] = serde_json::Value::String("\u{1}ID\u{1}".into());
        let template = serde_json::to_string(&v)?;
        let placeholder = serde_json::to_string("\u{1}ID\u{1}")?;
        Arc::new(move |i| {
            Bytes::from(template.replacen(&placeholder, &format!("\"{base}-{i}\""), 1))
        })
    } else {
        let b = Bytes::from(text);
        Arc::new(move |_| b.clone())
    };
    let report = run_blocking(LoadSpec {
        addr,
        path,
        headers,
        body,
        rate,
        connections,
        duration: dur,
        max_requests: requests,
        warmup,
        collect_ok_bodies: false,
        timeout: Duration::from_secs(10),
    })?;
    println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    eprintln!(
        "{} ok / {} sent, {} errors, {:.0} req/s, p50 {:.0} us, p99 {:.0} us, max {:.0} us",
        report.ok(),
        report.sent,
        report.errors,
        report.throughput,
        report.p50_us,
        report.p99_us,
        report.max_us
    );
    Ok(())
}
