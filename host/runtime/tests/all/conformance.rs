//! The cross-language conformance suite: the same transform and monitor
//! written in Rust, Python, JavaScript and C (tests/conformance/README.md),
//! run over one set of vectors (tests/conformance/vectors.json), must give
//! identical batches, errors and reports, and each must stay inside the
//! sandbox (no files, memory cap, deadline).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

use crate::common;

use common::{placement, runtime, test_guest, workspace};
use keel_data::{Batch, Column, ColumnData};
use keel_runtime::instance::{Instance, Report};
use keel_runtime::sandbox::Limits;
use keel_runtime::{Outcome, Plugin, PluginKind, Runtime};
use serde_json::Value as J;
use std::time::{Duration, Instant};

const LANGS: &[&str] = &["rust", "python", "js", "c"];

/// The component of `kind` (`transform`, `monitor`) in `lang`.
fn component(kind: &str, lang: &str) -> std::path::PathBuf {
    if lang == "rust" {
        test_guest(&format!("conformance-{kind}"))
    } else {
        test_guest(&format!("conformance-{kind}-{lang}"))
    }
}

fn vectors() -> J {
    let path = workspace().join("tests/conformance/vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn float(v: &J) -> f64 {
    match v {
        J::String(s) if s == "NaN" => f64::NAN,
        J::String(s) if s == "inf" => f64::INFINITY,
        J::String(s) if s == "-inf" => f64::NEG_INFINITY,
        v => v.as_f64().unwrap_or_else(|| panic!("not a float: {v}")),
    }
}

/// A batch from the vectors' JSON: `null` cells become nulls with the
/// contract's placeholder value.
fn batch(j: &J) -> Batch {
    let rows = j["rows"].as_u64().unwrap() as usize;
    let columns = j["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap();
            let vals = c["values"].as_array().unwrap();
            let validity: Vec<bool> = vals.iter().map(|v| !v.is_null()).collect();
            let data = match c["type"].as_str().unwrap() {
                "f64" => ColumnData::F64(
                    vals.iter()
                        .map(|v| if v.is_null() { 0.0 } else { float(v) })
                        .collect(),
                ),
                "f32" => ColumnData::F32(
                    vals.iter()
                        .map(|v| if v.is_null() { 0.0 } else { float(v) as f32 })
                        .collect(),
                ),
                "s64" => ColumnData::S64(vals.iter().map(|v| v.as_i64().unwrap_or(0)).collect()),
                "bool" => {
                    ColumnData::Bool(vals.iter().map(|v| v.as_bool().unwrap_or(false)).collect())
                }
                "string" => ColumnData::String(
                    vals.iter()
                        .map(|v| v.as_str().unwrap_or("").to_string())
                        .collect(),
                ),
                t => panic!("unknown type {t}"),
            };
            if validity.iter().all(|v| *v) {
                Column::new(name, data)
            } else {
                Column::with_validity(name, data, validity)
            }
        })
        .collect();
    Batch::new(rows, columns).unwrap()
}

fn same_f64(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// Why `got` differs from `want`, if it does. Validity `none` equals all-valid;
/// a null's value must be the contract's placeholder; NaN equals NaN.
fn diff(got: &Batch, want: &Batch) -> Option<String> {
    if got.rows() != want.rows() {
        return Some(format!("{} rows, expected {}", got.rows(), want.rows()));
    }
    let names = |b: &Batch| {
        b.columns()
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    if names(got) != names(want) {
        return Some(format!(
            "columns {:?}, expected {:?}",
            names(got),
            names(want)
        ));
    }
    for (g, w) in got.columns().iter().zip(want.columns()) {
        let valid = |c: &Column| c.validity.clone().unwrap_or_else(|| vec![true; c.len()]);
        if valid(g) != valid(w) {
            return Some(format!(
                "column `{}`: validity {:?}, expected {:?}",
                g.name,
                valid(g),
                valid(w)
            ));
        }
        let equal = match (&g.data, &w.data) {
            (ColumnData::F64(a), ColumnData::F64(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_f64(*x, *y))
            }
            (ColumnData::F32(a), ColumnData::F32(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| same_f64(f64::from(*x), f64::from(*y)))
            }
            (a, b) => a == b,
        };
        if !equal {
            return Some(format!(
                "column `{}`: {:?}, expected {:?}",
                g.name, g.data, w.data
            ));
        }
    }
    None
}

fn load(rt: &Runtime, kind: &str, lang: &str) -> Plugin {
    let path = component(kind, lang);
    Plugin::load_file(rt, &path).unwrap_or_else(|e| panic!("{lang}: {e}"))
}

#[test]
fn every_language_describes_the_same_plugins() {
    let rt = runtime();
    for lang in LANGS {
        for (kind, want) in [
            ("transform", PluginKind::Transform),
            ("monitor", PluginKind::Monitor),
        ] {
            let p = load(&rt, kind, lang);
            assert_eq!(p.kind(), want, "{lang}");
            assert_eq!(p.name(), format!("conformance-{kind}"), "{lang}");
            assert_eq!(p.version(), "0.1.0", "{lang}");
            assert!(p.summary().config_schema.is_object(), "{lang}");
        }
    }
}

#[test]
fn every_language_passes_the_transform_vectors() {
    let rt = runtime();
    let v = vectors();
    let cases = v["transform"].as_array().unwrap();
    assert!(cases.len() >= 8);
    let mut failures = Vec::new();
    for lang in LANGS {
        let p = load(&rt, "transform", lang);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let config = case["config"].to_string();
            let input = batch(&case["input"]);
            let created = Instance::create(
                &rt,
                &placement(&p, "conf", &config, Limits::default(), vec![]),
                None,
            );
            let result = created.and_then(|mut i| {
                let r = i.process(input, 0);
                assert!(
                    !i.is_poisoned(),
                    "{lang}: {name}: the instance was poisoned"
                );
                r
            });
            match (&case["error"], result) {
                (J::Null, Ok(out)) => {
                    if let Some(d) = diff(&out, &batch(&case["expected"])) {
                        failures.push(format!("{lang}: {name}: {d}"));
                    }
                }
                (J::Null, Err(e)) => failures.push(format!("{lang}: {name}: {e}")),
                (want, Ok(out)) => failures.push(format!(
                    "{lang}: {name}: expected {want}, got a batch of {} rows",
                    out.rows()
                )),
                (want, Err(e)) => {
                    let code = want["code"].as_str().unwrap();
                    let call = want["at"].as_str().unwrap_or("process");
                    let column = want["column"].as_str();
                    if e.outcome != Outcome::Error
                        || !e.message.starts_with(code)
                        || e.call != call
                        || e.column.as_deref() != column
                    {
                        failures.push(format!("{lang}: {name}: expected {code} in {call} (column {column:?}), got {:?} in {} (column {:?}): {}", e.outcome, e.call, e.column, e.message));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "conformance failures:\n{}",
        failures.join("\n")
    );
}

fn same_report(got: &Report, want: &J) -> Option<String> {
    if got.rows != want["rows"].as_u64().unwrap() {
        return Some(format!("rows {}, expected {}", got.rows, want["rows"]));
    }
    if got.alert != want["alert"].as_bool().unwrap() {
        return Some(format!("alert {}, expected {}", got.alert, want["alert"]));
    }
    if got.summary != want["summary"].as_str().unwrap() {
        return Some(format!(
            "summary {:?}, expected {}",
            got.summary, want["summary"]
        ));
    }
    let metrics = want["metrics"].as_array().unwrap();
    if got.metrics.len() != metrics.len() {
        return Some(format!(
            "{} metrics, expected {}",
            got.metrics.len(),
            metrics.len()
        ));
    }
    for (g, w) in got.metrics.iter().zip(metrics) {
        let opt = |v: &J| (!v.is_null()).then(|| float(v));
        let same_opt = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => same_f64(a, b),
            (None, None) => true,
            _ => false,
        };
        if g.column.as_deref() != w["column"].as_str()
            || g.name != w["name"].as_str().unwrap()
            || !same_f64(g.value, float(&w["value"]))
            || !same_opt(g.threshold, opt(&w["threshold"]))
            || !same_opt(g.p_value, opt(&w["p-value"]))
            || g.alert != w["alert"].as_bool().unwrap()
        {
            return Some(format!("metric {g:?}, expected {w}"));
        }
    }
    None
}

#[test]
fn every_language_passes_the_monitor_vectors() {
    let rt = runtime();
    let v = vectors();
    let mut failures = Vec::new();
    for lang in LANGS {
        let p = load(&rt, "monitor", lang);
        for case in v["monitor"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let config = case["config"].to_string();
            let reference = batch(&case["reference"]);
            let batches: Vec<Batch> = case["batches"]
                .as_array()
                .unwrap()
                .iter()
                .map(batch)
                .collect();
            let make = || {
                Instance::create(
                    &rt,
                    &placement(&p, "conf", &config, Limits::default(), vec![]),
                    Some(&reference),
                )
                .unwrap()
            };
            // Straight through.
            let mut w = make();
            for b in &batches {
                w.observe(b.clone(), 0)
                    .unwrap_or_else(|e| panic!("{lang}: {name}: {e}"));
            }
            if let Some(d) = same_report(&w.report().unwrap(), &case["expected"]) {
                failures.push(format!("{lang}: {name}: {d}"));
            }
            // Snapshot after the first batch, restore into a fresh watcher, go on.
            let mut first = make();
            first.observe(batches[0].clone(), 0).unwrap();
            let state = first.snapshot().unwrap();
            let mut second = make();
            second
                .restore(&state)
                .unwrap_or_else(|e| panic!("{lang}: {name}: restore: {e}"));
            for b in &batches[1..] {
                second.observe(b.clone(), 0).unwrap();
            }
            if let Some(d) = same_report(&second.report().unwrap(), &case["expected"]) {
                failures.push(format!("{lang}: {name} (after snapshot and restore): {d}"));
            }
            // Bytes it never wrote are refused as a value, not a trap.
            let e = make().restore(b"\xffnot a snapshot").unwrap_err();
            if e.outcome != Outcome::Error || !e.message.starts_with("invalid-state") {
                failures.push(format!("{lang}: {name}: restoring junk: {e}"));
            }
            // A missing column is an error naming it; an empty reference is refused.
            let e = make()
                .observe(
                    Batch::from_columns(vec![Column::new("b", ColumnData::S64(vec![1]))]).unwrap(),
                    0,
                )
                .unwrap_err();
            if e.outcome != Outcome::Error
                || !e.message.starts_with("invalid-input")
                || e.column.as_deref() != Some("a")
            {
                failures.push(format!("{lang}: {name}: observing without column a: {e}"));
            }
            let empty = Batch::new(0, vec![Column::new("a", ColumnData::F64(vec![]))]).unwrap();
            let e = Instance::create(
                &rt,
                &placement(&p, "conf", &config, Limits::default(), vec![]),
                Some(&empty),
            )
            .err()
            .unwrap();
            if e.outcome != Outcome::Error || !e.message.starts_with("invalid-reference") {
                failures.push(format!("{lang}: {name}: empty reference: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "conformance failures:\n{}",
        failures.join("\n")
    );
}

fn probe(rt: &Runtime, lang: &str, config: &str, limits: Limits) -> keel_runtime::CallError {
    let p = load(rt, "transform", lang);
    let mut i = Instance::create(rt, &placement(&p, "probe", config, limits, vec![]), None)
        .unwrap_or_else(|e| panic!("{lang}: {e}"));
    let one = Batch::from_columns(vec![Column::new("x", ColumnData::F64(vec![1.0]))]).unwrap();
    i.process(one, 0).expect_err(lang)
}

#[test]
fn every_language_is_denied_files() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    let config = format!(r#"{{"probe":"read-file","path":"{}"}}"#, secret.display());
    // JavaScript (StarlingMonkey) offers plugins no file API at all.
    for lang in ["rust", "python", "c"] {
        let e = probe(&rt, lang, &config, Limits::default());
        assert_eq!(e.outcome, Outcome::Error, "{lang}: {e}");
        assert!(e.message.contains("cannot read"), "{lang}: {e}");
        assert!(!e.message.contains("top secret"), "{lang}: {e}");
    }
}

#[test]
fn every_language_is_stopped_by_the_deadline() {
    let rt = runtime();
    for lang in LANGS {
        let t = Instant::now();
        let e = probe(
            &rt,
            lang,
            r#"{"probe":"loop"}"#,
            Limits {
                timeout_ms: 300,
                ..Limits::default()
            },
        );
        let took = t.elapsed();
        assert_eq!(e.outcome, Outcome::Timeout, "{lang}: {e}");
        assert_eq!(e.limit.as_deref(), Some("timeout_ms = 300"), "{lang}");
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_secs(10),
            "{lang}: {took:?}"
        );
    }
}

#[test]
fn every_language_hits_the_memory_cap() {
    let rt = runtime();
    for lang in LANGS {
        // Python and JavaScript carry an interpreter: give them room to start.
        let cap = if matches!(*lang, "python" | "js") {
            96
        } else {
            32
        };
        let e = probe(
            &rt,
            lang,
            r#"{"probe":"grow"}"#,
            Limits {
                memory_mb: cap,
                timeout_ms: 20_000,
                ..Limits::default()
            },
        );
        assert_eq!(e.outcome, Outcome::Trap, "{lang}: {e}");
        assert_eq!(e.limit, Some(format!("memory_mb = {cap}")), "{lang}: {e}");
    }
}
