//! The conformance transform in each language, measured in one run (only
//! ratios mean much on a shared 2-core machine): component size, compiling
//! it versus loading it from the precompiled cache, a fresh instance
//! (instantiate + `create`), a 1-row call on a reused instance, and
//! throughput over 1,000,000 rows (an f64, an s64 and a string column, 10%
//! nulls) in batches of 16,384 on one reused instance, and with a fresh
//! instance per batch (what instance reuse saves).
//!
//! Run with `cargo xtask bench-langs` (builds the components first and adds
//! their build times).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

mod common;
use common::{dir, median};
use keel_data::{Batch, Column, ColumnData};
use keel_runtime::instance::{Instance, Placement};
use keel_runtime::sandbox::Limits;
use keel_runtime::{Plugin, Runtime, RuntimeOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ROWS: usize = 1_000_000;
const BATCH: usize = 16_384;

fn guests() -> PathBuf {
    dir("KEEL_TEST_GUESTS", "test-guests")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn data(rows: usize) -> Batch {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 11
    };
    let mut x = Vec::with_capacity(rows);
    let mut n = Vec::with_capacity(rows);
    let mut s = Vec::with_capacity(rows);
    let mut valid = Vec::with_capacity(rows);
    for _ in 0..rows {
        let r = next();
        x.push((r % 10_000) as f64 / 7.0);
        n.push((r % 1000) as i64);
        s.push(format!("cat-{}", r % 50));
        valid.push(r % 10 != 0);
    }
    Batch::from_columns(vec![
        Column::with_validity("x", ColumnData::F64(x), valid),
        Column::new("n", ColumnData::S64(n)),
        Column::new("s", ColumnData::String(s)),
    ])
    .unwrap()
}

fn runtime(cache: Option<PathBuf>) -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: cache,
        ..RuntimeOptions::default()
    })
    .unwrap()
}

fn main() {
    let langs = ["rust", "python", "js", "c"];
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(Some(cache.path().to_path_buf()));
    let all = data(ROWS);
    let batches: Vec<Batch> = (0..ROWS)
        .step_by(BATCH)
        .map(|i| all.slice(i, (i + BATCH).min(ROWS)))
        .collect();
    let one = all.slice(0, 1);
    println!(
        "{:<8} {:>9} {:>11} {:>11} {:>14} {:>12} {:>13} {:>16}",
        "language",
        "size KiB",
        "compile ms",
        "cached ms",
        "instantiate ms",
        "1-row call µs",
        "rows/s reused",
        "rows/s fresh/batch"
    );
    for lang in langs {
        let file = if lang == "rust" {
            guests().join("conformance-transform.wasm")
        } else {
            guests().join(format!("conformance-transform-{lang}.wasm"))
        };
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let t = Instant::now();
        let plugin = Plugin::load(&rt, &bytes, lang).unwrap();
        let compile = t.elapsed();
        assert!(!plugin.summary().cached);
        // A second runtime over the same cache directory: a new process's view.
        let rt2 = runtime(Some(cache.path().to_path_buf()));
        let t = Instant::now();
        let again = Plugin::load(&rt2, &bytes, lang).unwrap();
        let cached = t.elapsed();
        assert!(again.summary().cached);
        drop(rt2);
        let placement = Placement {
            plugin: plugin.clone(),
            stage: "bench".into(),
            limits: Limits::default(),
            grants: vec![],
            config: "{}".into(),
            models: Vec::new(),
        };
        let fresh: Vec<Duration> = (0..20)
            .map(|_| {
                let t = Instant::now();
                let i = Instance::create(&rt, &placement, None).unwrap();
                let d = t.elapsed();
                drop(i);
                d
            })
            .collect();
        let mut inst = Instance::create(&rt, &placement, None).unwrap();
        let calls: Vec<Duration> = (0..200)
            .map(|k| {
                let t = Instant::now();
                inst.process(one.clone(), k).unwrap();
                t.elapsed()
            })
            .collect();
        let t = Instant::now();
        let mut out_rows = 0;
        for (k, b) in batches.iter().enumerate() {
            out_rows += inst.process(b.clone(), k as u64).unwrap().rows();
        }
        let reused = t.elapsed();
        assert_eq!(out_rows, ROWS);
        let t = Instant::now();
        for (k, b) in batches.iter().enumerate() {
            let mut i = Instance::create(&rt, &placement, None).unwrap();
            i.process(b.clone(), k as u64).unwrap();
        }
        let per_batch = ROWS as f64 / t.elapsed().as_secs_f64();
        println!(
            "{:<8} {:>9} {:>11.1} {:>11.2} {:>14.3} {:>12.1} {:>13.0} {:>16.0}",
            lang,
            bytes.len() / 1024,
            ms(compile),
            ms(cached),
            ms(median(fresh)),
            median(calls).as_secs_f64() * 1e6,
            ROWS as f64 / reused.as_secs_f64(),
            per_batch
        );
    }
}
