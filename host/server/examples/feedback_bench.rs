//! Label import through the daemon (`cargo xtask bench-feedback`): serves
//! `--predictions` rows in requests of 1,000 rows (ids `<run>-<i>:<row>`),
//! then posts a label for every one of them from one client in batches of
//! `--batch` items, closed loop, and prints labels/s (every answer has said
//! all of its batch was accepted, so every label was durable before it).
//!
//! ```text
//! cargo run --release -p keel-server --example feedback_bench -- \
//!     --addr 127.0.0.1:8080 --model bench [--predictions 200000] [--batch 1000]
//! ```

use bytes::Bytes;
use keel_server::loadgen::{LoadSpec, run_blocking};
use std::sync::Arc;
use std::time::Duration;

const ROWS_PER_REQUEST: u64 = 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut addr, mut model, mut predictions, mut batch) =
        (None, "bench".to_string(), 200_000u64, 1000u64);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--addr" => addr = Some(value()?.parse()?),
            "--model" => model = value()?,
            "--predictions" => predictions = value()?.parse()?,
            "--batch" => batch = value()?.parse()?,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    let addr = addr.ok_or("--addr is required")?;
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let base = format!("fb{run:x}");
    let requests = predictions.div_ceil(ROWS_PER_REQUEST);
    let column = |name: &str, x: f64| {
        serde_json::json!({"name": name, "datatype": "FP64", "shape": [ROWS_PER_REQUEST],
            "data": vec![x; ROWS_PER_REQUEST as usize]})
    };
    let inputs = serde_json::json!([
        column("bill_length_mm", 46.5),
        column("bill_depth_mm", 15.2),
        column("flipper_length_mm", 215.0),
        column("body_mass_g", 5050.0),
    ]);
    let infer_base = base.clone();
    let infer = run_blocking(LoadSpec {
        addr,
        path: format!("/v2/models/{model}/infer"),
        headers: Vec::new(),
        body: Arc::new(move |i| {
            Bytes::from(
                serde_json::json!({"id": format!("{infer_base}-{i}"), "inputs": inputs})
                    .to_string(),
            )
        }),
        rate: None,
        connections: 2,
        duration: Duration::from_secs(3600),
        max_requests: Some(requests),
        warmup: Duration::ZERO,
        collect_ok_bodies: false,
        timeout: Duration::from_secs(60),
    })?;
    if infer.ok() != requests {
        return Err(format!(
            "serving the predictions: {} of {requests} requests ok: {:?}",
            infer.ok(),
            infer.status
        )
        .into());
    }
    let posts = (requests * ROWS_PER_REQUEST).div_ceil(batch);
    let label_base = base.clone();
    let labels = run_blocking(LoadSpec {
        addr,
        path: format!("/v2/models/{model}/feedback"),
        headers: Vec::new(),
        body: Arc::new(move |i| {
            let items: Vec<serde_json::Value> = (i * batch..(i + 1) * batch)
                .map(|n| {
                    let (req, row) = (n / ROWS_PER_REQUEST, n % ROWS_PER_REQUEST);
                    serde_json::json!({"id": format!("{label_base}-{req}:{row}"), "truth": n % 3 == 0})
                })
                .collect();
            Bytes::from(serde_json::json!({ "items": items }).to_string())
        }),
        rate: None,
        connections: 1,
        duration: Duration::from_secs(3600),
        max_requests: Some(posts),
        warmup: Duration::ZERO,
        collect_ok_bodies: true,
        timeout: Duration::from_secs(60),
    })?;
    let accepted: u64 = labels
        .ok_bodies
        .iter()
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .filter_map(|v| v["accepted"].as_u64())
        .sum();
    if accepted != posts * batch {
        return Err(format!(
            "{accepted} labels accepted of {}: {:?}",
            posts * batch,
            labels.status
        )
        .into());
    }
    let rate = labels.throughput * batch as f64;
    println!(
        "{}",
        serde_json::json!({
            "predictions": requests * ROWS_PER_REQUEST,
            "serve_rows_per_s": infer.throughput * ROWS_PER_REQUEST as f64,
            "labels": accepted,
            "batch": batch,
            "labels_per_s": rate,
            "post_latency_us": {"p50": labels.p50_us, "p99": labels.p99_us, "max": labels.max_us},
        })
    );
    eprintln!(
        "{accepted} labels in batches of {batch}: {rate:.0} labels/s (p50 {:.1} ms, p99 {:.1} ms per batch)",
        labels.p50_us / 1000.0,
        labels.p99_us / 1000.0
    );
    Ok(())
}
