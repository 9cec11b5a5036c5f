//! The `bias-monitor` component through the real host: created from a
//! reference, fed batches, its report checked against counts taken directly
//! from the data and against the same algorithm compiled natively, and its
//! state carried across instances by snapshot and restore.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

use crate::common;

use common::{placement, plugin_dir, runtime, workspace};
use keel_algos::bias::{BiasConfig, BiasMonitor};
use keel_data::{Batch, Column, ColumnData};
use keel_runtime::instance::{Instance, Placement, Report};
use keel_runtime::sandbox::Limits;
use keel_runtime::{Outcome, Plugin, PluginKind, Runtime};
use std::collections::BTreeMap;
use std::sync::Arc;

fn load() -> (Arc<Runtime>, Plugin) {
    let rt = runtime();
    let p = Plugin::load_file(&rt, &plugin_dir().join("bias-monitor.wasm")).unwrap();
    (rt, p)
}

fn place(p: &Plugin, config: &str) -> Placement {
    placement(p, "bias", config, Limits::default(), vec![])
}

fn penguins(file: &str) -> Batch {
    keel_data::io::read_all(&workspace().join("examples/penguins").join(file), None).unwrap()
}

fn metric<'a>(
    r: &'a Report,
    column: &str,
    name: &str,
) -> &'a keel_runtime::bindings::types::Metric {
    r.metrics
        .iter()
        .find(|m| m.column.as_deref() == Some(column) && m.name == name)
        .unwrap_or_else(|| panic!("no {name} for {column}: {:#?}", r.metrics))
}

/// Rows and rows of species Gentoo per island, counted straight from the CSV.
fn counts(b: &Batch) -> BTreeMap<String, (u64, u64)> {
    let islands = b.require("island").unwrap().strings().unwrap();
    let species = b.require("species").unwrap().strings().unwrap();
    let mut out = BTreeMap::new();
    for (i, s) in islands.iter().zip(species) {
        let e: &mut (u64, u64) = out.entry(i.clone()).or_default();
        e.0 += 1;
        e.1 += u64::from(s == "Gentoo");
    }
    out
}

const PENGUINS: &str =
    r#"{"group":"island","prediction":"species","positive":"Gentoo","min_group_rows":10}"#;

#[test]
fn penguins_islands_through_the_host_match_counts_and_native() {
    let (rt, p) = load();
    let s = p.summary();
    assert_eq!(
        (s.name.as_str(), s.kind),
        ("bias-monitor", PluginKind::Monitor)
    );
    assert_eq!(s.config_schema["additionalProperties"], false);
    assert_eq!(
        s.config_schema["required"],
        serde_json::json!(["group", "prediction"])
    );

    let reference = penguins("reference.csv");
    let current = penguins("current.csv");
    let placed = place(&p, PENGUINS);
    let mut a = Instance::create(&rt, &placed, Some(&reference)).unwrap();
    let n = current.rows();
    for (k, (from, to)) in [(0, 32), (32, 64), (64, n)].into_iter().enumerate() {
        a.observe(current.slice(from, to), k as u64).unwrap();
    }
    let r = a.report().unwrap();
    assert_eq!(r.rows, 75);

    // Expected values from plain counting, independent of the monitor.
    let (rc, cc) = (counts(&reference), counts(&current));
    assert_eq!(rc.len(), 3);
    let (rn, cn) = (reference.rows() as f64, current.rows() as f64);
    let rate = |island: &str| cc[island].1 as f64 / cc[island].0 as f64;
    let top = rate("Biscoe");
    assert!(top > 0.0 && rate("Dream") == 0.0 && rate("Torgersen") == 0.0);
    for island in ["Biscoe", "Dream", "Torgersen"] {
        let col = format!("island={island}");
        let share = cc[island].0 as f64 / cn;
        let change = share - rc[island].0 as f64 / rn;
        assert_eq!(metric(&r, &col, "share").value, share, "{island}");
        let c = metric(&r, &col, "share-change");
        assert_eq!(c.value, change, "{island}");
        assert_eq!(c.threshold, Some(0.1));
        assert_eq!(c.alert, change.abs() > 0.1, "{island}");
        assert_eq!(metric(&r, &col, "positive-rate").value, rate(island));
    }
    // Current data over-samples Biscoe (60 of 75 vs 108 of 224): all three shift.
    assert!(
        r.metrics
            .iter()
            .filter(|m| m.name == "share-change")
            .all(|m| m.alert)
    );
    // Biscoe, the only island with Gentoo, is privileged; Dream (11 rows) is
    // judged at min_group_rows 10 and alerts, Torgersen (4 rows) is not judged.
    let dream = metric(&r, "island=Dream", "disparate-impact");
    assert_eq!(
        (dream.value, dream.threshold, dream.alert),
        (0.0, Some(0.8), true)
    );
    let dp = metric(&r, "island=Dream", "parity-difference");
    assert_eq!((dp.value, dp.alert), (-top, true));
    let torgersen = metric(&r, "island=Torgersen", "disparate-impact");
    assert_eq!((torgersen.threshold, torgersen.alert), (None, false));
    assert!(r.alert);
    let last = r.metrics.last().unwrap();
    assert_eq!(
        (last.name.as_str(), last.value, last.alert),
        ("groups-alerting", 3.0, true)
    );
    assert!(
        r.summary
            .starts_with("3 of 3 groups alert; worst island=Dream: disparate impact 0.00 < 0.8"),
        "{}",
        r.summary
    );
    assert!(
        r.summary
            .contains("privileged island=Biscoe (positive rate 0.73, highest)")
    );
    assert!(r.summary.contains("island=Torgersen (4 rated rows)"));

    // The same algorithm compiled natively gives the same report, bit for bit.
    let cfg: BiasConfig = serde_json::from_str(PENGUINS).unwrap();
    let mut native = BiasMonitor::new(cfg, &reference).unwrap();
    native.observe(&current).unwrap();
    let nr = native.report();
    assert_eq!(
        (nr.rows, nr.alert, &nr.summary),
        (r.rows, r.alert, &r.summary)
    );
    assert_eq!(nr.metrics.len(), r.metrics.len());
    for (n, w) in nr.metrics.iter().zip(&r.metrics) {
        assert_eq!(
            (&n.column, &n.name, n.value.to_bits(), n.threshold, n.alert),
            (&w.column, &w.name, w.value.to_bits(), w.threshold, w.alert)
        );
    }
    assert_eq!(a.snapshot().unwrap(), native.snapshot().unwrap());
}

#[test]
fn snapshot_restore_into_a_fresh_instance() {
    let (rt, p) = load();
    let reference = penguins("reference.csv");
    let current = penguins("current.csv");
    let placed = place(&p, PENGUINS);
    let mut a = Instance::create(&rt, &placed, Some(&reference)).unwrap();
    a.observe(current.slice(0, 40), 0).unwrap();
    let state = a.snapshot().unwrap();
    let early = a.report().unwrap();

    // A fresh instance restored from the snapshot reports the same at once…
    let mut b = Instance::create(&rt, &placed, Some(&reference)).unwrap();
    assert_eq!(b.report().unwrap().rows, 0);
    b.restore(&state).unwrap();
    assert_eq!(b.report().unwrap(), early);
    // …and after the rest of the stream, the same as the original.
    a.observe(current.slice(40, 75), 1).unwrap();
    b.observe(current.slice(40, 75), 1).unwrap();
    let full = a.report().unwrap();
    assert_eq!(full.rows, 75);
    assert_eq!(b.report().unwrap(), full);
    assert_eq!(b.snapshot().unwrap(), a.snapshot().unwrap());

    // A watcher over another reference, or another positive label, refuses
    // the state as a value (no trap) and keeps working.
    let other_reference = reference.slice(0, 200);
    let mut c = Instance::create(&rt, &placed, Some(&other_reference)).unwrap();
    let e = c.restore(&state).unwrap_err();
    assert_eq!(e.outcome, Outcome::Error);
    assert!(
        e.message.starts_with("invalid-state") && e.message.contains("reference groups"),
        "{e}"
    );
    assert!(!c.is_poisoned());
    let adelie = place(
        &p,
        r#"{"group":"island","prediction":"species","positive":"Adelie"}"#,
    );
    let mut d = Instance::create(&rt, &adelie, Some(&reference)).unwrap();
    let e = d.restore(&state).unwrap_err();
    assert!(e.message.contains("positive rule"), "{e}");
    let e = d.restore(b"not json").unwrap_err();
    assert!(e.message.starts_with("invalid-state"), "{e}");
    d.observe(current.clone(), 0).unwrap();
    assert_eq!(d.report().unwrap().rows, 75);
}

fn groups(spec: &[(&str, usize, usize)]) -> Batch {
    let mut g = Vec::new();
    let mut pred = Vec::new();
    for (name, n, pos) in spec {
        for i in 0..*n {
            g.push(name.to_string());
            pred.push(i < *pos);
        }
    }
    Batch::from_columns(vec![
        Column::new("g", ColumnData::String(g)),
        Column::new("pred", ColumnData::Bool(pred)),
    ])
    .unwrap()
}

#[test]
fn hand_computed_disparate_impact_and_errors_through_the_host() {
    let (rt, p) = load();
    let reference = groups(&[("A", 100, 50), ("B", 100, 50)]);
    let placed = place(&p, r#"{"group":"g","prediction":"pred"}"#);
    let mut m = Instance::create(&rt, &placed, Some(&reference)).unwrap();
    // A 50/100 positive, B 20/100 → DI(B) = 0.4, parity(B) = −0.3, in two batches.
    let current = groups(&[("A", 100, 50), ("B", 100, 20)]);
    m.observe(current.slice(0, 150), 0).unwrap();
    m.observe(current.slice(150, 200), 1).unwrap();
    let r = m.report().unwrap();
    let di = metric(&r, "g=B", "disparate-impact");
    assert!((di.value - 0.4).abs() < 1e-15 && di.alert, "{di:?}");
    let pd = metric(&r, "g=B", "parity-difference");
    assert!((pd.value + 0.3).abs() < 1e-15 && pd.alert, "{pd:?}");
    assert!(!metric(&r, "g=A", "share").alert);
    assert!(r.alert);

    // A batch of the wrong type is refused as invalid input; the state is kept.
    let wrong = Batch::from_columns(vec![
        Column::new("g", ColumnData::String(vec!["A".into()])),
        Column::new("pred", ColumnData::F64(vec![0.9])),
    ])
    .unwrap();
    let e = m.observe(wrong, 2).unwrap_err();
    assert_eq!(e.outcome, Outcome::Error);
    assert!(
        e.message.starts_with("invalid-input") && e.message.contains("`pred`"),
        "{e}"
    );
    assert!(!m.is_poisoned());
    assert_eq!(m.report().unwrap(), r);

    // Bad configs and references are named.
    for (config, code, needle) in [
        (r#"{"group":"g"}"#, "invalid-config", "prediction"),
        (
            r#"{"group":"g","prediction":"pred","bogus":1}"#,
            "invalid-config",
            "bogus",
        ),
        (
            r#"{"group":"g","prediction":"pred","privileged":"C"}"#,
            "invalid-config",
            "`privileged`",
        ),
        (
            r#"{"group":"g","prediction":"pred","representation_max":2}"#,
            "invalid-config",
            "`representation_max`",
        ),
        (
            r#"{"group":"island","prediction":"pred"}"#,
            "invalid-reference",
            "island",
        ),
    ] {
        let e = Instance::create(&rt, &place(&p, config), Some(&reference))
            .err()
            .unwrap();
        assert!(
            e.message.starts_with(code) && e.message.contains(needle),
            "{config}: {e}"
        );
    }
}
