//! Every first-party plugin, as the built component: metadata, config schema,
//! clear errors, and each kind's calls through the sandbox (a validator's
//! findings, a monitor's snapshot and restore).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

use crate::common;

use common::{placement, plugin_dir, runtime};
use keel_data::{Batch, Column, ColumnData};
use keel_runtime::instance::{Instance, Severity};
use keel_runtime::sandbox::Limits;
use keel_runtime::{Outcome, Plugin, PluginKind};

const PLUGINS: &[(&str, PluginKind, bool)] = &[
    ("bias-monitor", PluginKind::Monitor, true),
    ("data-quality", PluginKind::Validator, true),
    ("drift-monitor", PluginKind::Monitor, true),
    ("imputer", PluginKind::Transform, true),
    ("linear-regression", PluginKind::Transform, false),
    ("logistic-regression", PluginKind::Transform, false),
    ("one-hot-encoder", PluginKind::Transform, true),
    ("onnx-model", PluginKind::Transform, false),
    ("ordinal-encoder", PluginKind::Transform, true),
    ("performance-monitor", PluginKind::Monitor, true),
    ("rule-validator", PluginKind::Validator, false),
    ("standard-scaler", PluginKind::Transform, true),
];

/// The smallest valid config that makes a fitting plugin fit.
fn fit_config(name: &str) -> String {
    match name {
        "imputer" => r#"{"strategy":"median","columns":["x"]}"#.into(),
        _ => r#"{"columns":["x"]}"#.into(),
    }
}

#[test]
fn every_plugin_describes_itself() {
    let rt = runtime();
    let mut found: Vec<String> = std::fs::read_dir(plugin_dir())
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    let expected: Vec<&str> = PLUGINS.iter().map(|p| p.0).collect();
    assert_eq!(found, expected);
    for (name, kind, fits) in PLUGINS {
        let p = Plugin::load_file(&rt, &plugin_dir().join(format!("{name}.wasm"))).unwrap();
        let s = p.summary();
        assert_eq!(s.name, *name);
        assert_eq!(s.kind, *kind);
        assert_eq!(s.version, env!("CARGO_PKG_VERSION"));
        assert!(s.description.len() > 20, "{name}: {}", s.description);
        assert_eq!(s.config_schema["type"], "object", "{name}");
        assert_eq!(s.config_schema["additionalProperties"], false, "{name}");
        // No plugin asks for more than the sandbox's WASI and Keel's log.
        assert!(
            s.imports
                .iter()
                .all(|i| i.starts_with("wasi:") || i.starts_with("keel:plugin/")),
            "{name}: {:?}",
            s.imports
        );
        if *fits && *kind == PluginKind::Transform {
            let e = Instance::create(
                &rt,
                &placement(&p, "s", &fit_config(name), Limits::default(), vec![]),
                None,
            )
            .err()
            .unwrap();
            assert!(e.message.starts_with("invalid-reference"), "{name}: {e}");
        }
        if *kind == PluginKind::Transform {
            let e = Instance::create(
                &rt,
                &placement(&p, "s", r#"{"bogus":1}"#, Limits::default(), vec![]),
                None,
            )
            .err()
            .unwrap();
            assert_eq!(e.outcome, Outcome::Error);
            assert!(
                e.message.contains("invalid-config") && e.message.contains("bogus"),
                "{name}: {e}"
            );
        }
    }
}

fn numbers(name: &str, v: &[f64]) -> Column {
    Column::new(name, ColumnData::F64(v.to_vec()))
}

#[test]
fn validator_reports_rows_and_columns() {
    let rt = runtime();
    let p = Plugin::load_file(&rt, &plugin_dir().join("rule-validator.wasm")).unwrap();
    let cfg = r#"{"columns":{"x":{"min":0.0,"max":10.0},"y":{"not_null":true}}}"#;
    let mut v = Instance::create(
        &rt,
        &placement(&p, "rules", cfg, Limits::default(), vec![]),
        None,
    )
    .unwrap();
    let b = Batch::from_columns(vec![
        numbers("x", &[1.0, 11.0, -1.0]),
        Column::from_opt_f64("y", &[Some(1.0), Some(2.0), None]),
    ])
    .unwrap();
    let mut f = v.validate(b, 0).unwrap();
    f.sort_by_key(|f| (f.row, f.rule.clone()));
    let got: Vec<(Option<u32>, &str, &str, Severity)> = f
        .iter()
        .map(|f| {
            (
                f.row,
                f.rule.as_str(),
                f.column.as_deref().unwrap(),
                f.severity,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(1), "max", "x", Severity::Error),
            (Some(2), "min", "x", Severity::Error),
            (Some(2), "not-null", "y", Severity::Warning),
        ]
    );
}

#[test]
fn monitor_state_survives_snapshot_and_restore() {
    let rt = runtime();
    let p = Plugin::load_file(&rt, &plugin_dir().join("drift-monitor.wasm")).unwrap();
    let reference = Batch::from_columns(vec![numbers(
        "x",
        &(0..1000).map(f64::from).collect::<Vec<_>>(),
    )])
    .unwrap();
    let shifted = Batch::from_columns(vec![numbers(
        "x",
        &(500..1500).map(f64::from).collect::<Vec<_>>(),
    )])
    .unwrap();
    let place = placement(
        &p,
        "drift",
        r#"{"columns":["x"]}"#,
        Limits::default(),
        vec![],
    );
    let mut a = Instance::create(&rt, &place, Some(&reference)).unwrap();
    a.observe(shifted.slice(0, 400), 0).unwrap();
    let state = a.snapshot().unwrap();
    a.observe(shifted.slice(400, 1000), 1).unwrap();
    let full = a.report().unwrap();
    assert!(full.alert, "{}", full.summary);
    assert_eq!(full.rows, 1000);

    // A fresh instance restored from the snapshot, fed the rest, agrees exactly.
    let mut b = Instance::create(&rt, &place, Some(&reference)).unwrap();
    b.restore(&state).unwrap();
    b.observe(shifted.slice(400, 1000), 1).unwrap();
    assert_eq!(b.report().unwrap(), full);

    // Garbage state is refused as a value, not a trap.
    let e = b.restore(b"not a snapshot").unwrap_err();
    assert_eq!(e.outcome, Outcome::Error);
    assert!(e.message.starts_with("invalid-state"), "{e}");
    assert!(!b.is_poisoned());

    // The same data as the reference: no drift.
    let mut c = Instance::create(&rt, &place, Some(&reference)).unwrap();
    c.observe(reference.clone(), 0).unwrap();
    assert!(!c.report().unwrap().alert);
}
