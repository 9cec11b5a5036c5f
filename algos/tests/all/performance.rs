//! The performance metrics of `keel_algos::performance` against
//! scikit-learn and NannyML: every case in `golden/performance.json`
//! (inputs and expected outputs, written by `golden/performance.py`) must
//! agree. Realized metrics to 1e-9 (relative above 1), CBPE estimates,
//! sampling errors, thresholds and confidence bands to 1e-5 (they agree to
//! 3e-7, ROC AUC the least: NannyML rounds its cumulated sums); a metric
//! undefined in one must be undefined in the other. Every mismatch is
//! collected and each test fails once, naming all of them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::{Check, cases, floats, golden, name};
use keel_algos::performance::cbpe::ESTIMATED;
use keel_algos::performance::{
    BinaryCbpe, BinaryData, CbpeOptions, Metrics, MulticlassCbpe, MulticlassData, RegressionData,
    binary, by_size, multiclass, regression,
};
use serde_json::Value;

fn bools(v: &Value) -> Vec<bool> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_bool().unwrap())
        .collect()
}

fn classes(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn columns(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

/// Checks against the expected values of the golden file.
trait Expected {
    fn value(&mut self, case: &str, what: &str, got: Option<f64>, want: &Value, tol: f64);
    fn metrics(&mut self, case: &str, got: &Metrics, want: &Value);
}

impl Expected for Check {
    /// `got` against `want` (JSON number or null) to `tol`, relative above 1.
    fn value(&mut self, case: &str, what: &str, got: Option<f64>, want: &Value, tol: f64) {
        match (got, want.as_f64()) {
            (None, None) => {}
            (Some(g), Some(w)) if (g - w).abs() <= tol * w.abs().max(1.0) => {}
            (g, w) => self
                .0
                .push(format!("{case}: {what} = {g:?}, expected {w:?}")),
        }
    }

    fn metrics(&mut self, case: &str, got: &Metrics, want: &Value) {
        for (metric, w) in want.as_object().unwrap() {
            match got.get(metric) {
                Some(g) => self.value(case, metric, *g, w, 1e-9),
                None => self.0.push(format!("{case}: no `{metric}` in {got:?}")),
            }
        }
    }
}

#[test]
fn binary_metrics_match_sklearn() {
    let g = golden("performance.json");
    let mut check = Check::default();
    for c in cases(&g, "binary") {
        let labels: Vec<Option<bool>> = c["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::as_bool)
            .collect();
        let (predictions, scores) = (bools(&c["predictions"]), floats(&c["scores"]));
        let data = BinaryData {
            labels: &labels,
            predictions: &predictions,
            scores: Some(&scores),
        };
        data.check().unwrap();
        let r = binary::realized(&data, 0..labels.len());
        check.metrics(name(c), &r.metrics, &c["expected"]);
        let want: Vec<Vec<u64>> = serde_json::from_value(c["confusion"].clone()).unwrap();
        check.that(
            r.confusion.iter().map(|r| r.to_vec()).collect::<Vec<_>>() == want,
            || format!("{}: confusion {:?}, sklearn {want:?}", name(c), r.confusion),
        );
        let labelled = labels.iter().filter(|l| l.is_some()).count();
        check.that((r.rows, r.labelled) == (labels.len(), labelled), || {
            format!("{}: rows/labelled {:?}", name(c), (r.rows, r.labelled))
        });
    }
    check.done("binary");
}

#[test]
fn multiclass_metrics_match_sklearn() {
    let g = golden("performance.json");
    let mut check = Check::default();
    for c in cases(&g, "multiclass") {
        let labels: Vec<Option<u32>> = c["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().map(|x| x as u32))
            .collect();
        let predictions = classes(&c["predictions"]);
        let probs = columns(&c["probabilities"]);
        let cols: Vec<&[f64]> = probs.iter().map(Vec::as_slice).collect();
        let data = MulticlassData {
            labels: &labels,
            predictions: &predictions,
            probabilities: &cols,
        };
        data.check().unwrap();
        let r = multiclass::realized(&data, 0..labels.len());
        check.metrics(name(c), &r.metrics, &c["expected"]);
        let want: Vec<Vec<u64>> = serde_json::from_value(c["confusion"].clone()).unwrap();
        check.that(r.confusion == want, || {
            format!("{}: confusion {:?}, sklearn {want:?}", name(c), r.confusion)
        });
    }
    check.done("multiclass");
}

#[test]
fn regression_metrics_match_sklearn() {
    let g = golden("performance.json");
    let mut check = Check::default();
    for c in cases(&g, "regression") {
        let labels: Vec<Option<f64>> = c["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::as_f64)
            .collect();
        let predictions = floats(&c["predictions"]);
        let data = RegressionData {
            labels: &labels,
            predictions: &predictions,
            features: &[],
        };
        data.check().unwrap();
        let r = regression::realized(&data, 0..labels.len());
        check.metrics(name(c), &r.metrics, &c["expected"]);
    }
    check.done("regression");
}

/// One estimated chunk against NannyML's row for it.
fn check_chunk(
    check: &mut Check,
    case: &str,
    est: &keel_algos::performance::Estimate,
    bounds: &keel_algos::performance::Bounds,
    want: &Value,
) {
    for m in ESTIMATED {
        let w = &want[m];
        let what = |x: &str| format!("{m} {x}");
        let value = est.values.get(m).copied().flatten();
        check.value(case, &what("estimate"), value, &w["value"], 1e-5);
        let sigma = est.sampling_error.get(m).copied().flatten();
        check.value(
            case,
            &what("sampling error"),
            sigma,
            &w["sampling_error"],
            1e-5,
        );
        let b = bounds.get(m);
        check.value(
            case,
            &what("lower threshold"),
            b.map(|b| b[0]),
            &w["lower_threshold"],
            1e-5,
        );
        check.value(
            case,
            &what("upper threshold"),
            b.map(|b| b[1]),
            &w["upper_threshold"],
            1e-5,
        );
        let band = est.confidence.get(m);
        check.value(
            case,
            &what("lower confidence"),
            band.map(|b| b[0]),
            &w["lower_confidence"],
            1e-5,
        );
        check.value(
            case,
            &what("upper confidence"),
            band.map(|b| b[1]),
            &w["upper_confidence"],
            1e-5,
        );
        // An alert may differ only when the estimate sits on a threshold.
        let (Some(v), Some(b)) = (value, b) else {
            continue;
        };
        let near = (v - b[0]).abs() < 1e-3 || (v - b[1]).abs() < 1e-3;
        let alert = est.alerts.iter().any(|a| a == m);
        let want_alert = w["alert"].as_bool().unwrap();
        check.that(near || alert == want_alert, || {
            format!("{case}: {m} alert {alert}, NannyML {want_alert} (estimate {v}, bounds {b:?})")
        });
    }
}

#[test]
fn binary_cbpe_matches_nannyml() {
    let g = golden("performance.json");
    let c = &g["cbpe_binary"];
    let mut check = Check::default();
    let r = &c["reference"];
    let labels: Vec<Option<bool>> = bools(&r["labels"]).into_iter().map(Some).collect();
    let (predictions, scores) = (bools(&r["predictions"]), floats(&r["scores"]));
    let reference = BinaryData {
        labels: &labels,
        predictions: &predictions,
        scores: Some(&scores),
    };
    let size = c["chunk_size"].as_u64().unwrap() as usize;
    let cbpe = BinaryCbpe::fit(&reference, &CbpeOptions::new(size)).unwrap();
    let want = c["needs_calibration"].as_bool().unwrap();
    check.that(cbpe.calibrated() == want, || {
        format!("calibrated = {}, NannyML {want}", cbpe.calibrated())
    });
    let a = &c["analysis"];
    let (predictions, scores) = (bools(&a["predictions"]), floats(&a["scores"]));
    let unlabelled = vec![None; scores.len()];
    let analysis = BinaryData {
        labels: &unlabelled,
        predictions: &predictions,
        scores: Some(&scores),
    };
    let spans = by_size(scores.len(), size).unwrap();
    let want = c["chunks"].as_array().unwrap();
    check.that(spans.len() == want.len(), || {
        format!("{} chunks, NannyML {}", spans.len(), want.len())
    });
    for (span, w) in spans.iter().zip(want) {
        let case = format!("chunk {}..={}", span.start, span.end);
        check.that(
            w["start"].as_u64() == Some(span.start as u64)
                && w["end"].as_u64() == Some(span.end as u64),
            || format!("{case}: NannyML's chunk is {}..={}", w["start"], w["end"]),
        );
        let est = cbpe.estimate(&analysis, span.range()).unwrap();
        check_chunk(&mut check, &case, &est, &cbpe.bounds, w);
    }
    check.done("binary CBPE");
}

#[test]
fn multiclass_cbpe_matches_nannyml() {
    let g = golden("performance.json");
    let c = &g["cbpe_multiclass"];
    let mut check = Check::default();
    let r = &c["reference"];
    let labels: Vec<Option<u32>> = classes(&r["labels"]).into_iter().map(Some).collect();
    let predictions = classes(&r["predictions"]);
    let probs = columns(&r["probabilities"]);
    let cols: Vec<&[f64]> = probs.iter().map(Vec::as_slice).collect();
    let reference = MulticlassData {
        labels: &labels,
        predictions: &predictions,
        probabilities: &cols,
    };
    let size = c["chunk_size"].as_u64().unwrap() as usize;
    let cbpe = MulticlassCbpe::fit(&reference, &CbpeOptions::new(size)).unwrap();
    let want = bools(&c["needs_calibration"]);
    check.that(cbpe.calibrated() == want, || {
        format!("calibrated = {:?}, NannyML {want:?}", cbpe.calibrated())
    });
    let a = &c["analysis"];
    let predictions = classes(&a["predictions"]);
    let probs = columns(&a["probabilities"]);
    let cols: Vec<&[f64]> = probs.iter().map(Vec::as_slice).collect();
    let unlabelled = vec![None; predictions.len()];
    let analysis = MulticlassData {
        labels: &unlabelled,
        predictions: &predictions,
        probabilities: &cols,
    };
    let spans = by_size(predictions.len(), size).unwrap();
    let want = c["chunks"].as_array().unwrap();
    check.that(spans.len() == want.len(), || {
        format!("{} chunks, NannyML {}", spans.len(), want.len())
    });
    for (span, w) in spans.iter().zip(want) {
        let case = format!("chunk {}..={}", span.start, span.end);
        let est = cbpe.estimate(&analysis, span.range()).unwrap();
        check_chunk(&mut check, &case, &est, &cbpe.bounds, w);
    }
    check.done("multiclass CBPE");
}
