//! ONNX inference through the `onnx-model` stage (wasm plugin + wasi:nn +
//! tract) against tract called natively, on the same model and rows; the
//! onnxruntime side of the comparison is `benches/onnx/ort_bench.py`, run by
//! `cargo xtask bench-onnx` in the same run on the data file this writes.
//!
//! Env: `KEEL_BENCH_MODEL` (the example's .onnx), `KEEL_BENCH_DATA` (where
//! to write the rows, f32 little-endian, row-major), `KEEL_PLUGIN_DIR`.
//! Prints one JSON object per measurement.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

mod common;
use common::{lcg, median};
use keel_data::{Batch, Column, ColumnData};
use keel_runtime::instance::{Instance, Placement};
use keel_runtime::nn::StageModel;
use keel_runtime::sandbox::Limits;
use keel_runtime::{Plugin, Runtime, RuntimeOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ROWS: usize = 1_000_000;
const LATENCY_CALLS: usize = 5_000;
const FEATURES: [&str; 7] = [
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "island_Biscoe",
    "island_Dream",
    "island_Torgersen",
];

fn env_path(var: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} is not set: run `cargo xtask bench-onnx`"))
}

/// Scaled-looking features: four roughly standard normal columns and a
/// one-hot island, from a fixed LCG so every run sees the same rows.
fn rows() -> Vec<f32> {
    let mut next = lcg();
    let mut out = Vec::with_capacity(ROWS * FEATURES.len());
    for _ in 0..ROWS {
        for _ in 0..4 {
            // Sum of 4 uniforms, centred and scaled: close enough to N(0, 1).
            let s: f64 = (0..4).map(|_| next()).sum::<f64>() - 2.0;
            out.push((s * 1.73) as f32);
        }
        let island = (next() * 3.0) as usize;
        for k in 0..3 {
            out.push(if k == island { 1.0 } else { 0.0 });
        }
    }
    out
}

fn batch(data: &[f32], start: usize, n: usize) -> Batch {
    let w = FEATURES.len();
    let cols = FEATURES
        .iter()
        .enumerate()
        .map(|(j, name)| {
            Column::new(
                *name,
                ColumnData::F64(
                    (start..start + n)
                        .map(|r| f64::from(data[r * w + j]))
                        .collect(),
                ),
            )
        })
        .collect();
    Batch::from_columns(cols).unwrap()
}

fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e6
}

fn main() {
    let model_path = env_path("KEEL_BENCH_MODEL");
    let data_path = env_path("KEEL_BENCH_DATA");
    let plugins = env_path("KEEL_PLUGIN_DIR");
    let data = rows();
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&data_path, bytes).unwrap();

    let rt = Runtime::new(RuntimeOptions::default()).unwrap();
    let plugin = Plugin::load_file(&rt, &plugins.join("onnx-model.wasm")).unwrap();
    let model = rt
        .load_model(
            &std::fs::read(&model_path).unwrap(),
            &model_path.display().to_string(),
        )
        .unwrap();
    let config = serde_json::json!({
        "model": "penguins-logreg", "input": "features", "features": FEATURES,
        "outputs": [
            {"tensor": "probabilities", "columns": ["", "prob_gentoo"]},
            {"tensor": "label", "columns": ["is_gentoo"], "as_type": "bool"}
        ]
    })
    .to_string();
    let placement = Placement {
        plugin,
        stage: "model".into(),
        limits: Limits {
            timeout_ms: 600_000,
            memory_mb: 1024,
            ..Limits::default()
        },
        grants: vec![],
        config,
        models: vec![StageModel {
            name: "penguins-logreg".into(),
            reference: model_path.display().to_string(),
            version: None,
            model: model.clone(),
        }],
    };
    let mut inst = Instance::create(&rt, &placement, None).unwrap();
    let w = FEATURES.len();

    for batch_rows in [1024usize, 16384] {
        // Batches are built before the clock starts: only the stage is timed.
        let batches: Vec<Batch> = (0..ROWS)
            .step_by(batch_rows)
            .map(|s| batch(&data, s, batch_rows.min(ROWS - s)))
            .collect();
        let tensors: Vec<tract_onnx::prelude::Tensor> = (0..ROWS)
            .step_by(batch_rows)
            .map(|s| {
                let n = batch_rows.min(ROWS - s);
                tract_onnx::prelude::Tensor::from_shape(&[n, w], &data[s * w..(s + n) * w]).unwrap()
            })
            .collect();
        let mut keel = Vec::new();
        let mut native = Vec::new();
        for _ in 0..3 {
            let copies = batches.clone();
            let t = Instant::now();
            for (i, b) in copies.into_iter().enumerate() {
                let n = b.rows();
                let out = inst.process(b, i as u64).unwrap();
                assert_eq!(out.rows(), n);
            }
            keel.push(t.elapsed());
            let copies = tensors.clone();
            let t = Instant::now();
            for x in copies {
                let out = model.run(vec![x]).unwrap();
                assert_eq!(out.len(), 2);
            }
            native.push(t.elapsed());
        }
        for (what, d) in [
            ("keel onnx-model stage", median(keel)),
            ("tract, native", median(native)),
        ] {
            println!(
                "{}",
                serde_json::json!({
                    "what": what, "batch": batch_rows, "rows": ROWS,
                    "seconds": d.as_secs_f64(), "rows_per_s": ROWS as f64 / d.as_secs_f64(),
                })
            );
        }
    }

    let one: Vec<Batch> = (0..LATENCY_CALLS).map(|i| batch(&data, i, 1)).collect();
    let mut lat = Vec::with_capacity(LATENCY_CALLS);
    for (i, b) in one.into_iter().enumerate() {
        let t = Instant::now();
        inst.process(b, i as u64).unwrap();
        lat.push(t.elapsed());
    }
    let mut native = Vec::with_capacity(LATENCY_CALLS);
    for i in 0..LATENCY_CALLS {
        let x =
            tract_onnx::prelude::Tensor::from_shape(&[1, w], &data[i * w..(i + 1) * w]).unwrap();
        let t = Instant::now();
        model.run(vec![x]).unwrap();
        native.push(t.elapsed());
    }
    for (what, v) in [
        ("keel onnx-model stage", &mut lat),
        ("tract, native", &mut native),
    ] {
        println!(
            "{}",
            serde_json::json!({
                "what": what, "batch": 1, "calls": LATENCY_CALLS,
                "p50_us": percentile(v, 0.5), "p99_us": percentile(v, 0.99),
            })
        );
    }
}
