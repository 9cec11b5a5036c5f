//! DLE (direct loss estimation for regression) against NannyML's on the set
//! `golden/dle.py` writes. The sampling errors and alert bounds are formulas
//! of the reference and must agree to 1e-9. The estimates come from loss
//! models — forust-ml trees here, LightGBM in NannyML — so they agree within
//! a stated tolerance, must rise with the losses as NannyML's do, and must be
//! about as close to the realized value as NannyML's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use keel_algos::performance::RegressionData;
use keel_algos::performance::dle::{DLE_ESTIMATED, Dle};
use serde_json::Value;

/// Largest relative difference allowed between Keel's and NannyML's estimate
/// (measured: at most 2.9 %, RMSE of the first chunk).
const ESTIMATE_TOLERANCE: f64 = 0.05;

fn set(g: &Value, which: &str) -> (Vec<Vec<f64>>, Vec<f64>, Vec<Option<f64>>) {
    let d = &g[which];
    let features = ["x1", "x2", "x3"].map(|c| floats(&d[c])).to_vec();
    let labels = floats(&d["y"]).into_iter().map(Some).collect();
    (features, floats(&d["pred"]), labels)
}

#[test]
fn dle_agrees_with_nannyml() {
    let g = golden("dle.json");
    let chunk = g["chunk_size"].as_u64().unwrap() as usize;
    let (rf, rp, rl) = set(&g, "reference");
    let reference = RegressionData {
        labels: &rl,
        predictions: &rp,
        features: &[],
    };
    let rf: Vec<&[f64]> = rf.iter().map(Vec::as_slice).collect();
    let dle = Dle::fit(&reference, &rf, chunk).unwrap();
    let (af, ap, _) = set(&g, "analysis");
    let unlabelled = vec![None; ap.len()];
    let analysis = RegressionData {
        labels: &unlabelled,
        predictions: &ap,
        features: &[],
    };
    let af: Vec<&[f64]> = af.iter().map(Vec::as_slice).collect();
    let mut check = Check::default();
    let mut previous = [0.0; 3];
    for (i, c) in cases(&g, "chunks").iter().enumerate() {
        let start = c["start"].as_u64().unwrap() as usize;
        let end = c["end"].as_u64().unwrap() as usize + 1;
        let e = dle.estimate(&analysis, &af, start..end).unwrap();
        for (m, metric) in DLE_ESTIMATED.iter().enumerate() {
            let want = &c[*metric];
            let got = e.values[*metric].unwrap();
            let nanny = f(&want["value"]);
            let realized = f(&c["realized"][*metric]);
            check.that(((got - nanny) / nanny).abs() <= ESTIMATE_TOLERANCE, || {
                format!("chunk {i} {metric}: keel {got:.4}, nannyml {nanny:.4}")
            });
            // No further from the truth than NannyML's trees, give or take 5 %.
            check.that((got - realized).abs() <= (nanny - realized).abs() + 0.05 * realized, || {
                format!("chunk {i} {metric}: keel {got:.4}, nannyml {nanny:.4}, realized {realized:.4}")
            });
            if i >= 2 {
                check.that(got > previous[m], || {
                    format!(
                        "chunk {i} {metric}: {got:.4} does not rise from {:.4}",
                        previous[m]
                    )
                });
            }
            previous[m] = got;
            let se = e.sampling_error[*metric].unwrap();
            check.that(within(se, f(&want["sampling_error"]), 1e-9), || {
                format!(
                    "chunk {i} {metric} sampling error {se} vs {}",
                    want["sampling_error"]
                )
            });
            let [low, high] = dle.bounds[*metric];
            check.that(
                within(low, f(&want["lower_threshold"]), 1e-9)
                    && within(high, f(&want["upper_threshold"]), 1e-9),
                || format!("chunk {i} {metric} bounds [{low}, {high}] vs {want}"),
            );
            let alert = e.alerts.iter().any(|a| a == metric);
            check.that(alert == (got < low || got > high), || {
                format!("chunk {i} {metric}: alert {alert} for {got} in [{low}, {high}]")
            });
        }
    }
    check.done("dle");
}

#[test]
fn dle_refuses_mismatched_features() {
    let g = golden("dle.json");
    let (rf, rp, rl) = set(&g, "reference");
    let reference = RegressionData {
        labels: &rl,
        predictions: &rp,
        features: &[],
    };
    let two: Vec<&[f64]> = rf[..2].iter().map(Vec::as_slice).collect();
    let dle = Dle::fit(&reference, &two, 500).unwrap();
    let three: Vec<&[f64]> = rf.iter().map(Vec::as_slice).collect();
    let err = dle
        .estimate(&reference, &three, 0..10)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("3 feature columns, the reference had 2"),
        "{err}"
    );
    let short = [&rf[0][..10]];
    let err = Dle::fit(&reference, &short, 500).unwrap_err().to_string();
    assert!(err.contains("feature column 0 has 10 rows"), "{err}");
}
