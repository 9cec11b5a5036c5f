//! `cargo xtask bench-onnx`: the onnx-model stage (wasi:nn on tract) against
//! onnxruntime on the same model and rows.

use crate::cmd::{run, target_dir};
use crate::guests::build_guests;
use crate::tools::ensure_onnx_tools;
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

/// The `onnx-model` stage against onnxruntime on the example's model and the
/// same 1,000,000 rows, in one run: throughput by batch size and per-row
/// latency, with tract called natively as a third line (what wasm and the
/// batch boundary cost on top of the backend).
pub fn bench_onnx(root: &Path) -> Result<()> {
    let python = ensure_onnx_tools(root)?;
    let plugins = build_guests(root)?;
    let dir = target_dir(root).join("bench-onnx");
    std::fs::create_dir_all(&dir)?;
    let model = dir.join("penguins-logreg.onnx");
    let data = dir.join("features.f32");
    run(Command::new(&python)
        .arg(root.join("examples/penguins-onnx/export_model.py"))
        .arg(&model))?;
    let keel = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["bench", "-q", "-p", "keel-runtime", "--bench", "onnx"])
        .env("KEEL_PLUGIN_DIR", &plugins)
        .env("KEEL_BENCH_MODEL", &model)
        .env("KEEL_BENCH_DATA", &data)
        .output()
        .context("running the keel side")?;
    if !keel.status.success() {
        bail!(
            "keel side failed: {}",
            String::from_utf8_lossy(&keel.stderr)
        );
    }
    let ort = Command::new(&python)
        .arg(root.join("benches/onnx/ort_bench.py"))
        .arg(&model)
        .arg(&data)
        .output()
        .context("running the onnxruntime side")?;
    if !ort.status.success() {
        bail!(
            "onnxruntime side failed: {}",
            String::from_utf8_lossy(&ort.stderr)
        );
    }
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for out in [&keel.stdout, &ort.stdout] {
        for line in String::from_utf8_lossy(out).lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                rows.push(v);
            }
        }
    }
    let ort_of = |batch: u64, key: &str| {
        rows.iter()
            .find(|r| {
                r["batch"] == batch
                    && r["what"]
                        .as_str()
                        .is_some_and(|w| w.starts_with("onnxruntime"))
            })
            .and_then(|r| r[key].as_f64())
    };
    println!("throughput, 1,000,000 rows x 7 features (median of 3 passes), one thread:");
    println!(
        "  {:<34} {:>6} {:>14} {:>16}",
        "what", "batch", "rows/s", "vs onnxruntime"
    );
    for r in rows.iter().filter(|r| r["rows_per_s"].is_number()) {
        let b = r["batch"].as_u64().unwrap_or(0);
        let v = r["rows_per_s"].as_f64().unwrap_or(0.0);
        let ratio = ort_of(b, "rows_per_s").map_or("-".into(), |o| format!("{:.2}x", v / o));
        println!(
            "  {:<34} {:>6} {:>14.0} {:>16}",
            r["what"].as_str().unwrap_or(""),
            b,
            v,
            ratio
        );
    }
    println!("per-row latency, 1-row batches (5,000 calls):");
    println!(
        "  {:<34} {:>9} {:>9} {:>16}",
        "what", "p50 µs", "p99 µs", "p50 vs ort"
    );
    for r in rows.iter().filter(|r| r["p50_us"].is_number()) {
        let p50 = r["p50_us"].as_f64().unwrap_or(0.0);
        let ratio = ort_of(1, "p50_us").map_or("-".into(), |o| format!("{:.2}x", p50 / o));
        println!(
            "  {:<34} {:>9.1} {:>9.1} {:>16}",
            r["what"].as_str().unwrap_or(""),
            p50,
            r["p99_us"].as_f64().unwrap_or(0.0),
            ratio
        );
    }
    Ok(())
}
