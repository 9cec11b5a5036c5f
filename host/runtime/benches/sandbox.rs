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

mod common;
use common::{dir, lcg, median};
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
    dir("KEEL_PLUGIN_DIR", "plugins")
}

fn features() -> Vec<String> {
    (0..COLS).map(|i| format!("f{i}")).collect()
}

fn data(rows: usize) -> Batch {
    // A fixed LCG: the same numbers on every run.
    let mut next = lcg();
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
        models: Vec::new(),
    }
}

fn instantiate_and_call(pooling: bool, scaler_cfg: &str, columns: usize) -> (Duration, Duration) {
    let rt = runtime(pooling, None);
    let scaler = Plugin::load_file(&rt, &plugin_dir().join("standard-scaler.wasm")).unwrap();
    let placement = place(&scaler, scaler_cfg, 64);
    let one =
        Batch::from_columns(data(1).into_columns().into_iter().take(columns).collect()).unwrap();
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

/// Times `stages` (as wasm, chained) and `native` over `input` cut into
/// batches of `rows`, median of 5, and prints one table row.
fn row(
    rt: &Runtime,
    what: &str,
    input: &Batch,
    rows: usize,
    stages: &[Placement],
    native: &dyn Fn(Batch) -> Batch,
) {
    let chunks: Vec<Batch> = (0..input.rows())
        .step_by(rows)
        .map(|s| input.slice(s, s + rows))
        .collect();
    let mut insts: Vec<Instance> = stages
        .iter()
        .map(|p| Instance::create(rt, p, None).unwrap())
        .collect();
    let (mut n, mut w) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let batches = chunks.clone();
        let t = Instant::now();
        for c in batches {
            std::hint::black_box(native(c));
        }
        n.push(t.elapsed());
        let batches = chunks.clone();
        let t = Instant::now();
        for (k, c) in batches.into_iter().enumerate() {
            let mut b = c;
            for i in insts.iter_mut() {
                b = i.process(b, k as u64).unwrap();
            }
            std::hint::black_box(b);
        }
        w.push(t.elapsed());
    }
    let (n, w) = (median(n), median(w));
    println!(
        "  {:<34} {:>10} {:>7.1} ms {:>7.1} ms {:>12.0} {:>8.2}",
        what,
        rows,
        n.as_secs_f64() * 1e3,
        w.as_secs_f64() * 1e3,
        input.rows() as f64 / w.as_secs_f64(),
        w.as_secs_f64() / n.as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("sandbox: bench");
        return;
    }
    let (scaler_cfg, logistic_cfg) = configs();
    if let Some(what) = std::env::var_os("KEEL_BENCH_PROFILE") {
        // A steady loop for `perf record`: `call` (1-row calls on one
        // instance) or `fresh` (instance + call).
        let rt = runtime(true, None);
        let scaler = Plugin::load_file(&rt, &plugin_dir().join("standard-scaler.wasm")).unwrap();
        let placement = place(&scaler, &scaler_cfg, 64);
        let one = data(1);
        let mut inst = Instance::create(&rt, &placement, None).unwrap();
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed() < Duration::from_secs(4) {
            if what == "fresh" {
                inst = Instance::create(&rt, &placement, None).unwrap();
            }
            std::hint::black_box(inst.process(one.clone(), n).unwrap());
            n += 1;
        }
        println!(
            "{n} iterations, {:.1} µs each",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        return;
    }
    println!(
        "keel sandbox benchmark ({} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 1. Fresh instance + 1-row call.
    let one_col = serde_json::json!({"columns": ["f0"], "mean": [0.5], "std": [0.29]}).to_string();
    println!(
        "fresh instance from InstancePre + create(config) + 1-row call (standard-scaler), goal <= 20 µs:"
    );
    println!(
        "  {:<12} {:>14} {:>14} {:>10} {:>16}",
        "batch", "pooled", "on-demand", "ratio", "reused instance"
    );
    for (cols, cfg) in [(1usize, &one_col), (COLS, &scaler_cfg)] {
        let (pooled, call) = instantiate_and_call(true, cfg, cols);
        let (on_demand, _) = instantiate_and_call(false, cfg, cols);
        println!(
            "  {:<12} {:>11.1} µs {:>11.1} µs {:>10.2} {:>13.1} µs",
            format!("1 x {cols} cols"),
            pooled.as_secs_f64() * 1e6,
            on_demand.as_secs_f64() * 1e6,
            pooled.as_secs_f64() / on_demand.as_secs_f64(),
            call.as_secs_f64() * 1e6
        );
    }
    println!();

    // 2. Throughput: wasm vs native, same code.
    let all = data(ROWS);
    let scaler = StandardScaler::new(
        serde_json::from_str::<ScalerConfig>(&scaler_cfg).unwrap(),
        None,
    )
    .unwrap();
    let logistic =
        LogisticRegression::new(serde_json::from_str::<LogisticConfig>(&logistic_cfg).unwrap())
            .unwrap();
    let native_both = |c: Batch| logistic.apply(scaler.apply(c).unwrap()).unwrap();
    let native_scaler = |c: Batch| scaler.apply(c).unwrap();
    let native_logistic = |c: Batch| logistic.apply(c).unwrap();
    println!("scaler + logistic regression, {ROWS} rows x {COLS} f64 columns, one thread:");
    println!(
        "  {:<34} {:>10} {:>10} {:>10} {:>12} {:>8}",
        "what", "batch rows", "native", "wasm", "wasm rows/s", "ratio"
    );
    let quick = std::env::var_os("KEEL_BENCH_QUICK").is_some();
    let sizes: &[usize] = if quick {
        &[16_384]
    } else {
        &[1024, 16_384, 131_072]
    };
    for nan in [true, false] {
        let rt = Runtime::new(RuntimeOptions {
            cache_dir: None,
            nan_canonicalization: nan,
            ..RuntimeOptions::default()
        })
        .unwrap();
        let load = |name: &str| {
            Plugin::load_file(&rt, &plugin_dir().join(format!("{name}.wasm"))).unwrap()
        };
        let (sp, lp) = (load("standard-scaler"), load("logistic-regression"));
        let tag = if nan { "" } else { " (NaN canon. off)" };
        for &rows in sizes {
            let stages = [place(&sp, &scaler_cfg, 512), place(&lp, &logistic_cfg, 512)];
            row(
                &rt,
                &format!("scaler + logistic{tag}"),
                &all,
                rows,
                &stages,
                &native_both,
            );
            if nan && (quick || rows == 16_384) {
                row(
                    &rt,
                    "scaler alone",
                    &all,
                    rows,
                    &stages[..1],
                    &native_scaler,
                );
                let scaled = native_scaler(all.clone());
                row(
                    &rt,
                    "logistic alone",
                    &scaled,
                    rows,
                    &stages[1..],
                    &native_logistic,
                );
                let echo = Plugin::load_file(
                    &rt,
                    &PathBuf::from(std::env::var_os("KEEL_TEST_GUESTS").unwrap_or_default())
                        .join("hostile.wasm"),
                )
                .unwrap();
                let e = place(&echo, r#"{"mode":"echo"}"#, 512);
                row(
                    &rt,
                    "boundary only (echo, in + out)",
                    &all,
                    rows,
                    std::slice::from_ref(&e),
                    &|c: Batch| c,
                );
            }
        }
        if quick {
            break;
        }
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
