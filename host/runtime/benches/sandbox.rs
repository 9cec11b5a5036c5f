//! What the sandbox costs, measured as ratios in one run (absolute times on a
//! shared 2-core machine mean little):
//! - a fresh instance from `InstancePre` plus one call on a 1-row batch,
//!   with the pooling allocator and without;
//! - scaler + logistic regression over 1,000,000 rows x 16 columns, the same
//!   Rust code compiled natively and run as wasm plugins;
//! - compiling a component versus loading it from the precompiled cache.
//!
//! Run with `cargo xtask bench` (builds the plugins first).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

use keel_algos::linear::{LogisticConfig, LogisticRegression};
use keel_algos::scaler::{ScalerConfig, StandardScaler};
use keel_data::{Batch, Column, ColumnData};
use keel_runtime::instance::{Instance, Placement};
use keel_runtime::sandbox::Limits;
use keel_runtime::{Plugin, Runtime, RuntimeOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ROWS: usize = 1_000_000;
const COLS: usize = 16;

fn plugin_dir() -> PathBuf {
    std::env::var_os("KEEL_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins"))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn features() -> Vec<String> {
    (0..COLS).map(|i| format!("f{i}")).collect()
}

fn data(rows: usize) -> Batch {
    // A fixed LCG: the same numbers on every run.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let cols = features()
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            Column::new(
                name,
                ColumnData::F64(
                    (0..rows)
                        .map(|_| next() * (i + 1) as f64 + i as f64)
                        .collect(),
                ),
            )
        })
        .collect();
    Batch::from_columns(cols).unwrap()
}

fn configs() -> (String, String) {
    let f = features();
    let mean: Vec<f64> = (0..COLS).map(|i| i as f64 + (i + 1) as f64 / 2.0).collect();
    let std: Vec<f64> = (0..COLS).map(|i| (i + 1) as f64 / 12f64.sqrt()).collect();
    let coef: Vec<f64> = (0..COLS).map(|i| ((i % 5) as f64 - 2.0) * 0.3).collect();
    let scaler = serde_json::json!({"columns": f, "mean": mean, "std": std}).to_string();
    let logistic = serde_json::json!({
        "features": f, "coefficients": coef, "intercept": 0.1,
        "output": "p", "label_output": "label", "threshold": 0.5
    })
    .to_string();
    (scaler, logistic)
}

fn runtime(pooling: bool, cache: Option<PathBuf>) -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: cache,
        pooling,
        ..RuntimeOptions::default()
    })
    .unwrap()
}

fn place(p: &Plugin, config: &str, memory_mb: u64) -> Placement {
    Placement {
        plugin: p.clone(),
        stage: p.name().to_string(),
        limits: Limits {
            memory_mb,
            timeout_ms: 600_000,
            ..Limits::default()
        },
        grants: vec![],
        config: config.to_string(),
    }
}

fn instantiate_and_call(pooling: bool, scaler_cfg: &str) -> (Duration, Duration) {
    let rt = runtime(pooling, None);
    let scaler = Plugin::load_file(&rt, &plugin_dir().join("standard-scaler.wasm")).unwrap();
    let placement = place(&scaler, scaler_cfg, 64);
    let one = data(1);
    // Warm up: first instantiations fault in pages and fill allocator caches.
    for _ in 0..200 {
        Instance::create(&rt, &placement, None)
            .unwrap()
            .process(one.clone(), 0)
            .unwrap();
    }
    let mut full = Vec::new();
    let mut call_only = Vec::new();
    for round in 0..15 {
        let n = 200;
        let t = Instant::now();
        for _ in 0..n {
            let mut i = Instance::create(&rt, &placement, None).unwrap();
            std::hint::black_box(i.process(one.clone(), 0).unwrap());
        }
        full.push(t.elapsed() / n);
        let mut i = Instance::create(&rt, &placement, None).unwrap();
        let t = Instant::now();
        for k in 0..n {
            std::hint::black_box(i.process(one.clone(), round * 1000 + u64::from(k)).unwrap());
        }
        call_only.push(t.elapsed() / n);
    }
    (median(full), median(call_only))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("sandbox: bench");
        return;
    }
    let (scaler_cfg, logistic_cfg) = configs();
    println!(
        "keel sandbox benchmark ({} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 1. Fresh instance + 1-row call.
    let (pooled, call) = instantiate_and_call(true, &scaler_cfg);
    let (on_demand, _) = instantiate_and_call(false, &scaler_cfg);
    println!("fresh instance from InstancePre + create(config) + 1-row call (standard-scaler):");
    println!(
        "  pooling allocator   {:>8.1} µs   (goal <= 20 µs)",
        pooled.as_secs_f64() * 1e6
    );
    println!(
        "  on-demand allocator {:>8.1} µs   (pooled/on-demand = {:.2})",
        on_demand.as_secs_f64() * 1e6,
        pooled.as_secs_f64() / on_demand.as_secs_f64()
    );
    println!(
        "  1-row call on a reused instance {:>6.1} µs\n",
        call.as_secs_f64() * 1e6
    );

    // 2. Throughput: wasm vs native, same code.
    let rt = runtime(true, None);
    let scaler_p = Plugin::load_file(&rt, &plugin_dir().join("standard-scaler.wasm")).unwrap();
    let logistic_p =
        Plugin::load_file(&rt, &plugin_dir().join("logistic-regression.wasm")).unwrap();
    let scaler = StandardScaler::new(
        serde_json::from_str::<ScalerConfig>(&scaler_cfg).unwrap(),
        None,
    )
    .unwrap();
    let logistic =
        LogisticRegression::new(serde_json::from_str::<LogisticConfig>(&logistic_cfg).unwrap())
            .unwrap();
    let all = data(ROWS);
    println!("scaler + logistic regression, {ROWS} rows x {COLS} f64 columns, one thread:");
    println!(
        "  {:>10} {:>12} {:>12} {:>14} {:>10}",
        "batch rows", "native", "wasm", "wasm rows/s", "wasm/native"
    );
    for batch_rows in [1024usize, 16_384, 131_072] {
        let chunks: Vec<Batch> = (0..ROWS)
            .step_by(batch_rows)
            .map(|s| all.slice(s, s + batch_rows))
            .collect();
        let mut native = Vec::new();
        let mut wasm = Vec::new();
        let mut s_inst = Instance::create(&rt, &place(&scaler_p, &scaler_cfg, 512), None).unwrap();
        let mut l_inst =
            Instance::create(&rt, &place(&logistic_p, &logistic_cfg, 512), None).unwrap();
        let mut check = (0.0, 0.0);
        for _ in 0..5 {
            let input = chunks.clone();
            let t = Instant::now();
            let mut sum = 0.0;
            for c in input {
                let out = logistic.apply(scaler.apply(c).unwrap()).unwrap();
                sum += out.column("p").unwrap().numeric().unwrap()[0];
            }
            native.push(t.elapsed());
            check.0 = sum;
            let input = chunks.clone();
            let t = Instant::now();
            let mut sum = 0.0;
            for (k, c) in input.into_iter().enumerate() {
                let out = l_inst
                    .process(s_inst.process(c, k as u64).unwrap(), k as u64)
                    .unwrap();
                sum += out.column("p").unwrap().numeric().unwrap()[0];
            }
            wasm.push(t.elapsed());
            check.1 = sum;
        }
        assert!(
            (check.0 - check.1).abs() < 1e-9,
            "wasm and native disagree: {check:?}"
        );
        let (n, w) = (median(native), median(wasm));
        println!(
            "  {:>10} {:>9.1} ms {:>9.1} ms {:>14.0} {:>10.2}",
            batch_rows,
            n.as_secs_f64() * 1e3,
            w.as_secs_f64() * 1e3,
            ROWS as f64 / w.as_secs_f64(),
            w.as_secs_f64() / n.as_secs_f64()
        );
    }

    // 3. Compile vs precompiled cache.
    let cache = tempfile::tempdir().unwrap();
    let cold = runtime(true, Some(cache.path().to_path_buf()));
    let path = plugin_dir().join("drift-monitor.wasm");
    let t = Instant::now();
    Plugin::load_file(&cold, &path).unwrap();
    let compile = t.elapsed();
    let warm = runtime(true, Some(cache.path().to_path_buf()));
    let t = Instant::now();
    let p = Plugin::load_file(&warm, &path).unwrap();
    let cached = t.elapsed();
    assert!(p.summary().cached);
    println!(
        "\nload drift-monitor.wasm ({} KiB): compile {:.1} ms, from cache {:.2} ms ({:.0}x faster)",
        p.summary().size_bytes / 1024,
        compile.as_secs_f64() * 1e3,
        cached.as_secs_f64() * 1e3,
        compile.as_secs_f64() / cached.as_secs_f64()
    );
}
