//! The `performance-monitor` component through the real host: created from a
//! labelled reference, fed windows of predictions with and without their
//! labels the way the host feeds them (observe, report, restore the empty
//! snapshot), each window's report checked against
//! `keel_algos::performance::analyse` (proven against scikit-learn and
//! NannyML by its golden tests) on the same rows, bit for bit; its state
//! carried across instances by snapshot and restore.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

use crate::common;

use common::{placement, plugin_dir, runtime};
use keel_algos::performance::{
    BinaryData, ChunkReport, Data, MulticlassData, PerformanceOptions, RegressionData,
    SegmentReport, Task, analyse,
};
use keel_data::{Batch, Column, ColumnData};
use keel_runtime::instance::{Instance, Placement, Report};
use keel_runtime::sandbox::Limits;
use keel_runtime::{Plugin, PluginKind, Runtime};
use std::collections::BTreeMap;
use std::sync::Arc;

const WINDOW: usize = 500;

fn load() -> (Arc<Runtime>, Plugin) {
    let rt = runtime();
    let p = Plugin::load_file(&rt, &plugin_dir().join("performance-monitor.wasm")).unwrap();
    (rt, p)
}

fn place(p: &Plugin, config: &str) -> Placement {
    placement(p, "performance", config, Limits::default(), vec![])
}

/// xorshift64: the same rows on every run.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Binary rows: a score, its prediction (`score >= 0.5`, 0/1), a label
/// drawn from a slightly miscalibrated score (so CBPE calibrates) and a
/// region. `squeezed` scores crowd around 0.5, where the model is unsure.
struct Binary {
    scores: Vec<f64>,
    labels: Vec<bool>,
    regions: Vec<String>,
}

fn binary(rng: &mut Rng, n: usize, squeezed: bool) -> Binary {
    let mut b = Binary {
        scores: Vec::new(),
        labels: Vec::new(),
        regions: Vec::new(),
    };
    for _ in 0..n {
        let u = rng.uniform();
        let s = if squeezed { 0.4 + 0.2 * u } else { u };
        b.scores.push(s);
        b.labels.push(rng.uniform() < s.powf(1.3));
        let r = ["north", "south", "east"][(rng.uniform() * 3.0) as usize];
        b.regions.push(r.to_owned());
    }
    b
}

fn predictions(scores: &[f64]) -> Vec<bool> {
    scores.iter().map(|&s| s >= 0.5).collect()
}

/// The rows `from..to` as a batch; with their labels (`y`, 0/1) or not.
fn batch(b: &Binary, from: usize, to: usize, labelled: bool) -> Batch {
    let mut columns = vec![
        Column::new("score", ColumnData::F64(b.scores[from..to].to_vec())),
        Column::new(
            "prediction",
            ColumnData::S64(
                predictions(&b.scores[from..to])
                    .iter()
                    .map(|&p| i64::from(p))
                    .collect(),
            ),
        ),
        Column::new("region", ColumnData::String(b.regions[from..to].to_vec())),
    ];
    if labelled {
        columns.push(Column::new(
            "y",
            ColumnData::S64(b.labels[from..to].iter().map(|&l| i64::from(l)).collect()),
        ));
    }
    Batch::from_columns(columns).unwrap()
}

fn metric<'a>(
    r: &'a Report,
    column: &str,
    name: &str,
) -> Option<&'a keel_runtime::bindings::types::Metric> {
    r.metrics
        .iter()
        .find(|m| m.column.as_deref() == Some(column) && m.name == name)
}

/// Every entry of the plugin's report against the chunk and segments
/// `analyse` gives for the same rows, bit for bit.
fn same(r: &Report, chunk: &ChunkReport, segments: &BTreeMap<String, SegmentReport>, task: Task) {
    assert_eq!(r.rows, chunk.rows as u64);
    let bits = |column: &str, m: &str| metric(r, column, m).map(|x| x.value.to_bits());
    let want = |v: Option<&Option<f64>>| v.copied().flatten().map(f64::to_bits);
    let mut judged = 0;
    for &m in task.metrics() {
        assert_eq!(
            bits("realized", m),
            want(chunk.realized.get(m)),
            "realized {m}"
        );
        assert_eq!(
            bits("estimated", m),
            want(chunk.estimated.get(m)),
            "estimated {m}"
        );
        assert_eq!(
            bits("sampling-error", m),
            want(chunk.sampling_error.get(m)),
            "sampling error {m}"
        );
        let band = chunk.confidence.get(m);
        assert_eq!(bits("confidence-low", m), band.map(|b| b[0].to_bits()));
        assert_eq!(bits("confidence-high", m), band.map(|b| b[1].to_bits()));
        let bounds = chunk
            .bounds
            .get(m)
            .filter(|b| b[0].is_finite() && b[1].is_finite());
        assert_eq!(bits("bound-low", m), bounds.map(|b| b[0].to_bits()), "{m}");
        assert_eq!(bits("bound-high", m), bounds.map(|b| b[1].to_bits()), "{m}");
        // One value is judged: it carries the threshold and the alert.
        let with: Vec<_> = ["realized", "estimated"]
            .iter()
            .filter_map(|c| metric(r, c, m))
            .filter(|x| x.threshold.is_some())
            .collect();
        assert!(with.len() <= 1, "{m}: {with:?}");
        let alert = chunk.alerts.iter().any(|a| a == m);
        assert_eq!(with.first().is_some_and(|x| x.alert), alert, "{m}");
        if let Some(x) = with.first() {
            judged += 1;
            let b = chunk.bounds[m];
            assert!(x.threshold == Some(b[0]) || x.threshold == Some(b[1]));
        }
    }
    assert!(judged > 0);
    for (value, s) in segments {
        let column = format!("region={value}");
        assert_eq!(
            metric(r, &column, "labelled").unwrap().value,
            s.labelled as f64
        );
        for &m in task.metrics() {
            assert_eq!(bits(&column, m), want(s.realized.get(m)), "{column} {m}");
        }
    }
    let alerting = r.metrics.last().unwrap();
    assert_eq!(
        (alerting.name.as_str(), alerting.value),
        ("metrics-alerting", chunk.alerts.len() as f64)
    );
    assert_eq!(r.alert, !chunk.alerts.is_empty());
}

const BINARY: &str = r#"{"task":"binary","label_column":"y","score_column":"score",
    "prediction_column":"prediction","segment_columns":["region"],
    "min_segment_labelled":50,"reference_chunk_rows":500}"#;

#[test]
fn binary_windows_match_analyse_and_estimates_alert_on_a_squeeze() {
    let (rt, p) = load();
    let s = p.summary();
    assert_eq!(
        (s.name.as_str(), s.kind),
        ("performance-monitor", PluginKind::Monitor)
    );
    assert_eq!(
        s.config_schema["required"],
        serde_json::json!(["task", "label_column"])
    );
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let reference = binary(&mut rng, 3000, false);
    // Window 0: labelled; 1: squeezed scores, no labels yet; 2: half labelled.
    let mut data = binary(&mut rng, WINDOW, false);
    let squeezed = binary(&mut rng, WINDOW, true);
    let last = binary(&mut rng, WINDOW, false);
    for part in [squeezed, last] {
        data.scores.extend(part.scores);
        data.labels.extend(part.labels);
        data.regions.extend(part.regions);
    }
    let fed: [&[(usize, usize, bool)]; 3] = [
        &[(0, 200, true), (200, 500, true)],
        &[(500, 1000, false)],
        &[(1000, 1100, true), (1100, 1250, true), (1250, 1500, false)],
    ];

    let placed = place(&p, BINARY);
    let ref_batch = batch(&reference, 0, reference.scores.len(), true);
    let mut inst = Instance::create(&rt, &placed, Some(&ref_batch)).unwrap();
    let empty = inst.snapshot().unwrap();
    let ref_labels: Vec<Option<bool>> = reference.labels.iter().map(|&l| Some(l)).collect();
    let ref_pred = predictions(&reference.scores);
    let ref_data = Data::Binary(BinaryData {
        labels: &ref_labels,
        predictions: &ref_pred,
        scores: Some(&reference.scores),
    });
    let mut options = PerformanceOptions::new(WINDOW);
    options.min_segment_labelled = 50;
    for (k, parts) in fed.iter().enumerate() {
        let mut labels: Vec<Option<bool>> = Vec::new();
        for &(from, to, labelled) in parts.iter() {
            inst.observe(batch(&data, from, to, labelled), k as u64)
                .unwrap();
            labels.extend(data.labels[from..to].iter().map(|&l| labelled.then_some(l)));
        }
        let report = inst.report().unwrap();
        let (from, to) = (k * WINDOW, (k + 1) * WINDOW);
        let pred = predictions(&data.scores[from..to]);
        let window = Data::Binary(BinaryData {
            labels: &labels,
            predictions: &pred,
            scores: Some(&data.scores[from..to]),
        });
        let regions: Vec<Option<&str>> = data.regions[from..to]
            .iter()
            .map(|r| Some(r.as_str()))
            .collect();
        let want = analyse(&window, Some(&ref_data), Some(&regions), &options).unwrap();
        assert_eq!(want.chunks.len(), 1);
        same(&report, &want.chunks[0], &want.segments, Task::Binary);
        match k {
            0 => assert!(
                metric(&report, "realized", "accuracy")
                    .unwrap()
                    .threshold
                    .is_some()
            ),
            1 => {
                // No labels: judged on estimates, and the squeeze drags the
                // estimated accuracy below its bounds.
                assert!(metric(&report, "realized", "accuracy").is_none());
                let acc = metric(&report, "estimated", "accuracy").unwrap();
                assert!(acc.alert && acc.value < acc.threshold.unwrap(), "{acc:?}");
                assert!(report.alert);
                assert!(
                    report
                        .summary
                        .contains(" judged metrics out of their bounds")
                        && report.summary.contains("estimated accuracy"),
                    "{}",
                    report.summary
                );
            }
            _ => {
                // Half labelled, at min_coverage: realized values are judged,
                // and the estimate's error against them is on record.
                let cov = report
                    .metrics
                    .iter()
                    .find(|m| m.column.is_none() && m.name == "coverage");
                assert_eq!(cov.unwrap().value, 0.5);
                let acc = metric(&report, "realized", "accuracy").unwrap();
                assert!(acc.threshold.is_some());
                let est = metric(&report, "estimated", "accuracy").unwrap();
                assert_eq!(est.threshold, None);
                assert_eq!(
                    metric(&report, "estimate-error", "accuracy").unwrap().value,
                    est.value - acc.value
                );
            }
        }
        inst.restore(&empty).unwrap();
        assert_eq!(inst.report().unwrap().rows, 0);
    }
}

#[test]
fn snapshot_restore_into_a_fresh_instance_and_refusals() {
    let (rt, p) = load();
    let mut rng = Rng(7);
    let reference = binary(&mut rng, 1000, false);
    let data = binary(&mut rng, 400, false);
    let ref_batch = batch(&reference, 0, 1000, true);
    let placed = place(&p, BINARY);
    let mut a = Instance::create(&rt, &placed, Some(&ref_batch)).unwrap();
    a.observe(batch(&data, 0, 150, true), 0).unwrap();
    a.observe(batch(&data, 150, 250, false), 1).unwrap();
    let state = a.snapshot().unwrap();
    let mut b = Instance::create(&rt, &placed, Some(&ref_batch)).unwrap();
    b.restore(&state).unwrap();
    assert_eq!(b.report().unwrap(), a.report().unwrap());
    a.observe(batch(&data, 250, 400, true), 2).unwrap();
    b.observe(batch(&data, 250, 400, true), 2).unwrap();
    assert_eq!(b.report().unwrap(), a.report().unwrap());
    assert_eq!(a.report().unwrap().rows, 400);

    // A monitor with other segments refuses the state as a value.
    let other = place(
        &p,
        r#"{"task":"binary","label_column":"y","score_column":"score"}"#,
    );
    let mut c = Instance::create(&rt, &other, Some(&ref_batch)).unwrap();
    let e = c.restore(&state).unwrap_err();
    assert!(e.message.starts_with("invalid-state"), "{e}");
    // A bad score is an input error naming column and row; the window keeps
    // what it had.
    let rows = a.report().unwrap().rows;
    let mut bad = batch(&data, 0, 3, true);
    bad.set(Column::new("score", ColumnData::F64(vec![0.1, 1.5, 0.2])))
        .unwrap();
    let e = a.observe(bad, 3).unwrap_err();
    assert!(
        e.message.starts_with("invalid-input") && e.message.contains("`score`, row 1"),
        "{e}"
    );
    assert_eq!(a.report().unwrap().rows, rows);
    // A reference without the label column.
    let unlabelled = batch(&reference, 0, 100, false);
    let e = Instance::create(&rt, &placed, Some(&unlabelled))
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("invalid-reference") && e.to_string().contains("label column `y`"),
        "{e}"
    );
}

#[test]
fn multiclass_and_regression_windows_match_analyse() {
    let (rt, p) = load();
    let mut rng = Rng(99);
    // Three classes; probabilities from random logits, labels drawn from them.
    let classes = ["cat", "dog", "owl"];
    let draw = |rng: &mut Rng, n: usize| {
        let mut probs = vec![Vec::new(); 3];
        let mut labels = Vec::new();
        for _ in 0..n {
            let e: Vec<f64> = (0..3).map(|_| (3.0 * rng.uniform()).exp()).collect();
            let sum: f64 = e.iter().sum();
            let u = rng.uniform();
            let mut acc = 0.0;
            let mut label = 2;
            for (c, x) in e.iter().enumerate() {
                probs[c].push(x / sum);
                acc += x / sum;
                if u < acc && label == 2 && c < 2 {
                    label = c;
                }
            }
            labels.push(label as u32);
        }
        (probs, labels)
    };
    let to_batch = |probs: &[Vec<f64>], labels: &[u32], labelled: bool| {
        let mut cols: Vec<Column> = probs
            .iter()
            .zip(classes)
            .map(|(p, c)| Column::new(format!("p_{c}"), ColumnData::F64(p.clone())))
            .collect();
        if labelled {
            cols.push(Column::new(
                "species",
                ColumnData::String(
                    labels
                        .iter()
                        .map(|&l| classes[l as usize].to_owned())
                        .collect(),
                ),
            ));
        }
        Batch::from_columns(cols).unwrap()
    };
    let (rp, rl) = draw(&mut rng, 1500);
    let (dp, dl) = draw(&mut rng, WINDOW);
    let placed = place(
        &p,
        r#"{"task":"multiclass","label_column":"species","reference_chunk_rows":500,
            "score_columns":{"cat":"p_cat","dog":"p_dog","owl":"p_owl"}}"#,
    );
    let mut inst = Instance::create(&rt, &placed, Some(&to_batch(&rp, &rl, true))).unwrap();
    let half = WINDOW / 2;
    let slice = |p: &[Vec<f64>], from: usize, to: usize| -> Vec<Vec<f64>> {
        p.iter().map(|c| c[from..to].to_vec()).collect()
    };
    inst.observe(to_batch(&slice(&dp, 0, half), &dl[..half], false), 0)
        .unwrap();
    inst.observe(to_batch(&slice(&dp, half, WINDOW), &dl[half..], true), 1)
        .unwrap();
    let report = inst.report().unwrap();
    let argmax = |p: &[Vec<f64>], n: usize| -> Vec<u32> {
        (0..n)
            .map(|i| {
                let mut best = 0;
                for c in 1..3 {
                    if p[c][i] > p[best][i] {
                        best = c;
                    }
                }
                best as u32
            })
            .collect()
    };
    let rlabels: Vec<Option<u32>> = rl.iter().map(|&l| Some(l)).collect();
    let rpred = argmax(&rp, 1500);
    let rcols: Vec<&[f64]> = rp.iter().map(Vec::as_slice).collect();
    let dlabels: Vec<Option<u32>> = dl
        .iter()
        .enumerate()
        .map(|(i, &l)| (i >= half).then_some(l))
        .collect();
    let dpred = argmax(&dp, WINDOW);
    let dcols: Vec<&[f64]> = dp.iter().map(Vec::as_slice).collect();
    let want = analyse(
        &Data::Multiclass(MulticlassData {
            labels: &dlabels,
            predictions: &dpred,
            probabilities: &dcols,
        }),
        Some(&Data::Multiclass(MulticlassData {
            labels: &rlabels,
            predictions: &rpred,
            probabilities: &rcols,
        })),
        None,
        &PerformanceOptions::new(WINDOW),
    )
    .unwrap();
    same(&report, &want.chunks[0], &BTreeMap::new(), Task::Multiclass);
    assert!(metric(&report, "estimated", "f1").is_some());

    // Regression: realized only (no estimator yet).
    let num = |rng: &mut Rng, n: usize| -> (Vec<f64>, Vec<f64>) {
        let x: Vec<f64> = (0..n).map(|_| 10.0 * rng.uniform() + 1.0).collect();
        let y = x.iter().map(|v| v + rng.uniform() - 0.5).collect();
        (x, y)
    };
    let reg_batch = |x: &[f64], y: &[f64]| {
        Batch::from_columns(vec![
            Column::new("pred", ColumnData::F64(x.to_vec())),
            Column::new("y", ColumnData::F64(y.to_vec())),
        ])
        .unwrap()
    };
    let (rx, ry) = num(&mut rng, 1000);
    let (x, y) = num(&mut rng, WINDOW);
    let placed = place(
        &p,
        r#"{"task":"regression","label_column":"y","prediction_column":"pred","reference_chunk_rows":500}"#,
    );
    let mut inst = Instance::create(&rt, &placed, Some(&reg_batch(&rx, &ry))).unwrap();
    inst.observe(reg_batch(&x, &y), 0).unwrap();
    let report = inst.report().unwrap();
    let (ryo, yo): (Vec<_>, Vec<_>) = (
        ry.iter().map(|&v| Some(v)).collect(),
        y.iter().map(|&v| Some(v)).collect(),
    );
    let want = analyse(
        &Data::Regression(RegressionData {
            labels: &yo,
            predictions: &x,
            features: &[],
        }),
        Some(&Data::Regression(RegressionData {
            labels: &ryo,
            predictions: &rx,
            features: &[],
        })),
        None,
        &PerformanceOptions::new(WINDOW),
    )
    .unwrap();
    same(&report, &want.chunks[0], &BTreeMap::new(), Task::Regression);
    assert!(
        report
            .metrics
            .iter()
            .all(|m| m.column.as_deref() != Some("estimated"))
    );
}
