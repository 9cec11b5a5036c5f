//! The example plugins of the Python, JavaScript and C SDKs, as built
//! components through the sandbox: each does its real job, and its errors
//! are values naming the column.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

use crate::common;

use common::{placement, runtime, sdk_example};
use keel_data::{Batch, Column, ColumnData, Value};
use keel_runtime::instance::{Instance, Severity};
use keel_runtime::sandbox::Limits;
use keel_runtime::{Outcome, Plugin, PluginKind, Runtime};

fn load(rt: &Runtime, name: &str, kind: PluginKind) -> Plugin {
    let p = Plugin::load_file(rt, &sdk_example(name)).unwrap();
    assert_eq!(p.kind(), kind, "{name}");
    assert_eq!(p.name(), name);
    assert!(
        p.summary()
            .imports
            .iter()
            .all(|i| i.starts_with("wasi:") || i.starts_with("keel:plugin/")),
        "{name}: {:?}",
        p.summary().imports
    );
    p
}

fn create(rt: &Runtime, p: &Plugin, config: &str, reference: Option<&Batch>) -> Instance {
    Instance::create(
        rt,
        &placement(p, "s", config, Limits::default(), vec![]),
        reference,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn f64s(c: &Column) -> Vec<Option<f64>> {
    (0..c.len())
        .map(|i| match c.value(i) {
            Value::F64(x) => Some(x),
            Value::S64(x) => Some(x as f64),
            Value::Null => None,
            v => panic!("not a number: {v:?}"),
        })
        .collect()
}

/// numpy.quantile's default (linear) method, for checking the plugin.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[test]
fn python_winsorize_clips_to_the_reference_quantiles() {
    let rt = runtime();
    let p = load(&rt, "winsorize", PluginKind::Transform);
    let ref_values: Vec<f64> = (0..20).map(|i| f64::from(i * i)).collect();
    let mut with_null: Vec<Option<f64>> = ref_values.iter().copied().map(Some).collect();
    with_null.push(None);
    let reference = Batch::from_columns(vec![Column::from_opt_f64("x", &with_null)]).unwrap();
    let mut t = create(
        &rt,
        &p,
        r#"{"columns":["x"],"lower":0.1,"upper":0.85}"#,
        Some(&reference),
    );
    let (lo, hi) = (quantile(&ref_values, 0.1), quantile(&ref_values, 0.85));
    let input = Batch::from_columns(vec![
        Column::from_opt_f64(
            "x",
            &[Some(-5.0), Some(100.0), Some(1e6), None, Some(f64::NAN)],
        ),
        Column::new("keep", ColumnData::S64(vec![1, 2, 3, 4, 5])),
    ])
    .unwrap();
    let out = t.process(input, 0).unwrap();
    let x = f64s(out.column("x").unwrap());
    assert_eq!(x[0], Some(lo));
    assert_eq!(x[1], Some(100.0));
    assert_eq!(x[2], Some(hi));
    assert_eq!(x[3], None);
    assert!(x[4].unwrap().is_nan());
    assert_eq!(
        out.column("keep").unwrap().data,
        ColumnData::S64(vec![1, 2, 3, 4, 5])
    );
    // Errors are values naming what is wrong.
    let e = Instance::create(
        &rt,
        &placement(&p, "s", r#"{"columns":["x"]}"#, Limits::default(), vec![]),
        None,
    )
    .err()
    .unwrap();
    assert!(e.message.starts_with("invalid-reference"), "{e}");
    let e = Instance::create(
        &rt,
        &placement(&p, "s", r#"{"columns":["y"]}"#, Limits::default(), vec![]),
        Some(&reference),
    )
    .err()
    .unwrap();
    assert_eq!(e.column.as_deref(), Some("y"), "{e}");
    let e = Instance::create(
        &rt,
        &placement(
            &p,
            "s",
            r#"{"columns":["x"],"lower":"low"}"#,
            Limits::default(),
            vec![],
        ),
        Some(&reference),
    )
    .err()
    .unwrap();
    assert!(
        e.message.starts_with("invalid-config") && e.column.as_deref() == Some("lower"),
        "{e}"
    );
    let e = t
        .process(
            Batch::from_columns(vec![Column::new("z", ColumnData::F64(vec![1.0]))]).unwrap(),
            0,
        )
        .unwrap_err();
    assert_eq!(
        (e.outcome, e.column.as_deref()),
        (Outcome::Error, Some("x")),
        "{e}"
    );
    assert!(!t.is_poisoned());
}

fn strings(name: &str, v: &[Option<&str>]) -> Column {
    Column::from_opt_str(name, v)
}

#[test]
fn python_category_drift_measures_total_variation_and_unseen_categories() {
    let rt = runtime();
    let p = load(&rt, "category-drift", PluginKind::Monitor);
    let reference = Batch::from_columns(vec![
        strings("s", &[Some("a"), Some("a"), Some("b"), Some("c")]),
        Column::new("n", ColumnData::F64(vec![1.0; 4])),
    ])
    .unwrap();
    let mut m = create(&rt, &p, r#"{"threshold":0.3}"#, Some(&reference));
    let first = Batch::from_columns(vec![strings("s", &[Some("a"), Some("b")])]).unwrap();
    let second = Batch::from_columns(vec![strings("s", &[Some("b"), Some("d"), None])]).unwrap();
    m.observe(first.clone(), 0).unwrap();
    let state = m.snapshot().unwrap();
    m.observe(second.clone(), 0).unwrap();
    let r = m.report().unwrap();
    // ref a .5 b .25 c .25; observed a .25 b .5 d .25 (the null is not a category).
    let get = |r: &keel_runtime::instance::Report, name: &str| {
        r.metrics.iter().find(|x| x.name == name).unwrap().clone()
    };
    assert!((get(&r, "tvd").value - 0.5).abs() < 1e-12, "{r:?}");
    assert!(
        (get(&r, "unseen-share").value - 0.25).abs() < 1e-12,
        "{r:?}"
    );
    assert!(r.alert && r.rows == 5, "{r:?}");
    assert_eq!(r.summary, "1 of 1 string columns drifted: s");
    let mut again = create(&rt, &p, r#"{"threshold":0.3}"#, Some(&reference));
    again.restore(&state).unwrap();
    again.observe(second, 0).unwrap();
    assert_eq!(again.report().unwrap(), r);
    let e = again.restore(b"[]").unwrap_err();
    assert!(e.message.starts_with("invalid-state"), "{e}");
    let numeric_only =
        Batch::from_columns(vec![Column::new("n", ColumnData::F64(vec![1.0]))]).unwrap();
    let e = Instance::create(
        &rt,
        &placement(&p, "s", "{}", Limits::default(), vec![]),
        Some(&numeric_only),
    )
    .err()
    .unwrap();
    assert!(e.message.starts_with("invalid-reference"), "{e}");
}

#[test]
fn js_schema_check_finds_each_broken_rule() {
    let rt = runtime();
    let p = load(&rt, "schema-check", PluginKind::Validator);
    let cfg = r#"{"columns":{"x":{"type":"f64","min":0,"max":10,"nullable":false},"s":{"pattern":"^[a-z]+$","values":["ab","cd"]},"gone":{}}}"#;
    let mut v = create(&rt, &p, cfg, None);
    let b = Batch::from_columns(vec![
        Column::from_opt_f64("x", &[Some(1.0), Some(11.0), None]),
        strings("s", &[Some("ab"), Some("Zz"), Some("cd")]),
    ])
    .unwrap();
    let found: Vec<(String, Option<String>, Option<u32>, Severity)> = v
        .validate(b, 0)
        .unwrap()
        .into_iter()
        .map(|f| (f.rule, f.column, f.row, f.severity))
        .collect();
    let want = vec![
        (
            "range".to_string(),
            Some("x".to_string()),
            Some(1),
            Severity::Error,
        ),
        (
            "not-null".into(),
            Some("x".into()),
            Some(2),
            Severity::Error,
        ),
        ("pattern".into(), Some("s".into()), Some(1), Severity::Error),
        (
            "values".into(),
            Some("s".into()),
            Some(1),
            Severity::Warning,
        ),
        ("present".into(), Some("gone".into()), None, Severity::Error),
    ];
    assert_eq!(found, want);
    let wrong_type = Batch::from_columns(vec![Column::new("x", ColumnData::S64(vec![1]))]).unwrap();
    let f = v.validate(wrong_type, 0).unwrap();
    assert_eq!(f[0].rule, "type", "{f:?}");
    let e = Instance::create(
        &rt,
        &placement(
            &p,
            "s",
            r#"{"columns":{"s":{"pattern":"("}}}"#,
            Limits::default(),
            vec![],
        ),
        None,
    )
    .err()
    .unwrap();
    assert!(
        e.message.starts_with("invalid-config") && e.column.as_deref() == Some("s"),
        "{e}"
    );
}

#[test]
fn js_text_stats_counts_code_points_words_and_capitals() {
    let rt = runtime();
    let p = load(&rt, "text-stats", PluginKind::Transform);
    let mut t = create(&rt, &p, r#"{"columns":["s"]}"#, None);
    let b = Batch::from_columns(vec![strings(
        "s",
        &[Some("Hello World"), Some("日本 語👍"), None, Some("")],
    )])
    .unwrap();
    let out = t.process(b, 0).unwrap();
    assert_eq!(
        f64s(out.column("s_length").unwrap()),
        vec![Some(11.0), Some(5.0), None, Some(0.0)]
    );
    assert_eq!(
        f64s(out.column("s_words").unwrap()),
        vec![Some(2.0), Some(2.0), None, Some(0.0)]
    );
    assert_eq!(
        f64s(out.column("s_upper_share").unwrap()),
        vec![Some(0.2), Some(0.0), None, Some(0.0)]
    );
    let e = t
        .process(
            Batch::from_columns(vec![Column::new("s", ColumnData::F64(vec![1.0]))]).unwrap(),
            0,
        )
        .unwrap_err();
    assert_eq!(
        (e.outcome, e.column.as_deref()),
        (Outcome::Error, Some("s")),
        "{e}"
    );
}

#[test]
fn c_log_transform_takes_log1p_and_names_the_bad_row() {
    let rt = runtime();
    let p = load(&rt, "log-transform", PluginKind::Transform);
    let mut t = create(&rt, &p, r#"{"columns":["amount","count"]}"#, None);
    let b = Batch::from_columns(vec![
        Column::from_opt_f64("amount", &[Some(0.0), Some(9.0), None, Some(-0.5)]),
        Column::new("count", ColumnData::S64(vec![1, 2, 3, 4])),
        strings("keep", &[Some("a"), None, Some("c"), Some("d")]),
    ])
    .unwrap();
    let out = t.process(b, 0).unwrap();
    let names: Vec<&str> = out.columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["amount", "count", "keep"]);
    let amount = f64s(out.column("amount").unwrap());
    assert_eq!(
        amount,
        vec![Some(0.0), Some(9f64.ln_1p()), None, Some((-0.5f64).ln_1p())]
    );
    let count = f64s(out.column("count").unwrap());
    assert_eq!(
        count,
        (1..=4)
            .map(|i| Some(f64::from(i).ln_1p()))
            .collect::<Vec<_>>()
    );
    assert_eq!(out.column("keep").unwrap().value(1), Value::Null);
    assert_eq!(out.column("keep").unwrap().value(2), Value::Str("c"));
    let bad = Batch::from_columns(vec![
        Column::new("amount", ColumnData::F64(vec![1.0, -3.0])),
        Column::new("count", ColumnData::S64(vec![1, 1])),
    ])
    .unwrap();
    let e = t.process(bad, 0).unwrap_err();
    assert_eq!(
        (e.outcome, e.column.as_deref()),
        (Outcome::Error, Some("amount")),
        "{e}"
    );
    assert!(e.message.contains("row 1"), "{e}");
    let e = Instance::create(
        &rt,
        &placement(
            &p,
            "s",
            r#"{"columns":"amount"}"#,
            Limits::default(),
            vec![],
        ),
        None,
    )
    .err()
    .unwrap();
    assert!(
        e.message.starts_with("invalid-config") && e.column.as_deref() == Some("columns"),
        "{e}"
    );
    let e = Instance::create(
        &rt,
        &placement(&p, "s", r#"{"colums":["a"]}"#, Limits::default(), vec![]),
        None,
    )
    .err()
    .unwrap();
    assert!(e.message.contains("unknown config key `colums`"), "{e}");
}

/// The PSI of `counts` against reference shares, as the plugin documents it.
fn psi(reference: &[f64], counts: &[f64]) -> f64 {
    let total: f64 = counts.iter().sum();
    reference
        .iter()
        .zip(counts)
        .map(|(p, c)| {
            let (p, q) = (p.max(1e-4), (c / total).max(1e-4));
            (q - p) * (q / p).ln()
        })
        .sum()
}

#[test]
fn c_psi_monitor_bins_on_reference_quantiles() {
    let rt = runtime();
    let p = load(&rt, "psi-monitor", PluginKind::Monitor);
    let reference = Batch::from_columns(vec![
        Column::new("x", ColumnData::F64((0..1000).map(f64::from).collect())),
        Column::new("n", ColumnData::S64((0..1000).collect())),
        strings("s", &[Some("a"); 1000]),
    ])
    .unwrap();
    // Quartile edges at 250, 500, 750: reference shares 1/4 each.
    let mut m = create(
        &rt,
        &p,
        r#"{"columns":["x"],"bins":4,"threshold":0.2}"#,
        Some(&reference),
    );
    let same = Batch::from_columns(vec![Column::new(
        "x",
        ColumnData::F64((0..100).map(|i| f64::from(i) * 10.0).collect()),
    )])
    .unwrap();
    m.observe(same, 0).unwrap();
    let r = m.report().unwrap();
    assert!(!r.alert && r.metrics[0].value.abs() < 1e-12, "{r:?}");
    // Everything below the first edge, plus a null and a NaN (not binned).
    let low = Batch::from_columns(vec![Column::from_opt_f64(
        "x",
        &[Some(1.0), Some(2.0), None, Some(f64::NAN), Some(249.0)],
    )])
    .unwrap();
    m.observe(low.clone(), 0).unwrap();
    let r = m.report().unwrap();
    let want = psi(&[0.25; 4], &[25.0 + 3.0, 25.0, 25.0, 25.0]);
    assert!(
        (r.metrics[0].value - want).abs() < 1e-12,
        "{} vs {want}",
        r.metrics[0].value
    );
    let mut fresh = create(
        &rt,
        &p,
        r#"{"columns":["x"],"bins":4,"threshold":0.2}"#,
        Some(&reference),
    );
    fresh.observe(low, 0).unwrap();
    let r = fresh.report().unwrap();
    let want = psi(&[0.25; 4], &[3.0, 0.0, 0.0, 0.0]);
    assert!(
        (r.metrics[0].value - want).abs() < 1e-12 && r.alert,
        "{r:?}"
    );
    assert_eq!(r.summary, "1 of 1 columns drifted (PSI > 0.2): x");
    assert_eq!(r.rows, 5);
    // Snapshot and restore carry the counts; junk is refused.
    let state = fresh.snapshot().unwrap();
    let mut again = create(
        &rt,
        &p,
        r#"{"columns":["x"],"bins":4,"threshold":0.2}"#,
        Some(&reference),
    );
    again.restore(&state).unwrap();
    assert_eq!(again.report().unwrap(), r);
    let e = again.restore(b"junk").unwrap_err();
    assert!(e.message.starts_with("invalid-state"), "{e}");
    // With no columns named it watches every numeric one.
    let mut all = create(&rt, &p, "{}", Some(&reference));
    let e = all
        .observe(
            Batch::from_columns(vec![Column::new("x", ColumnData::F64(vec![1.0]))]).unwrap(),
            0,
        )
        .unwrap_err();
    assert_eq!(e.column.as_deref(), Some("n"), "{e}");
    let e = Instance::create(
        &rt,
        &placement(&p, "s", r#"{"columns":["s"]}"#, Limits::default(), vec![]),
        Some(&reference),
    )
    .err()
    .unwrap();
    assert!(
        e.message.starts_with("invalid-reference") && e.column.as_deref() == Some("s"),
        "{e}"
    );
    let e = Instance::create(
        &rt,
        &placement(&p, "s", r#"{"bins":1}"#, Limits::default(), vec![]),
        Some(&reference),
    )
    .err()
    .unwrap();
    assert!(
        e.message.starts_with("invalid-config") && e.column.as_deref() == Some("bins"),
        "{e}"
    );
}
