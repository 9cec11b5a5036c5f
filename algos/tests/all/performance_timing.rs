//! Timings of the performance analysis at the benchmark size, for
//! the README: 1,000,000 binary predictions of which 800,000 labelled (in
//! random rows), a 100,000-row labelled reference, chunks of 50,000 and 8
//! segments; realized metrics overall, per chunk and per segment, plus CBPE.
//! Ignored by default (timings are not assertions); run with
//! `cargo test --release -p keel-algos --test all performance_timing:: -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::{Rng, best};
use keel_algos::performance::cbpe::Calibration;
use keel_algos::performance::{
    BinaryCbpe, BinaryData, CbpeOptions, Data, MulticlassData, PerformanceOptions, analyse, binary,
    by_size,
};

/// Scores, predictions and labels (a share `labelled` of them known), the
/// scores under-confident so calibration is fitted.
fn binary_set(n: usize, labelled: f64, seed: u64) -> (Vec<f64>, Vec<bool>, Vec<Option<bool>>) {
    let mut rng = Rng(seed);
    let mut scores = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let z = 3.0 * (rng.uniform() - 0.5) * 2.0;
        let p = 1.0 / (1.0 + (-z).exp());
        scores.push(1.0 / (1.0 + (-z / 2.0).exp()));
        let y = rng.uniform() < p;
        labels.push((rng.uniform() < labelled).then_some(y));
    }
    let predictions = scores.iter().map(|&s| s >= 0.5).collect();
    (scores, predictions, labels)
}

#[test]
#[ignore = "timing run; see the module doc"]
fn timings() {
    let (rs, rp, rl) = binary_set(100_000, 1.0, 7);
    let (s, p, l) = binary_set(1_000_000, 0.8, 11);
    let regions = ["n", "s", "e", "w", "ne", "nw", "se", "sw"];
    let segment: Vec<Option<&str>> = (0..s.len()).map(|i| Some(regions[i % 8])).collect();
    let reference = BinaryData {
        labels: &rl,
        predictions: &rp,
        scores: Some(&rs),
    };
    let data = BinaryData {
        labels: &l,
        predictions: &p,
        scores: Some(&s),
    };
    let options = PerformanceOptions::new(50_000);

    let (t, r) = best(5, || binary::realized(&data, 0..s.len()));
    println!(
        "realized binary metrics, 1M rows (800k labelled):   {t:>10.2?}  roc_auc = {:.5}",
        r.metrics["roc_auc"].unwrap()
    );
    let (t, cbpe) = best(3, || {
        BinaryCbpe::fit(&reference, &CbpeOptions::new(50_000)).unwrap()
    });
    println!(
        "CBPE fit, 100k reference (calibrated: {}):        {t:>10.2?}",
        cbpe.calibrated()
    );
    let spans = by_size(s.len(), 50_000).unwrap();
    let (t, _) = best(3, || {
        spans
            .iter()
            .map(|c| cbpe.estimate(&data, c.range()).unwrap())
            .collect::<Vec<_>>()
    });
    println!("CBPE estimate, 20 chunks of 50k:                    {t:>10.2?}");
    let (t, report) = best(3, || {
        analyse(
            &Data::Binary(data),
            Some(&Data::Binary(reference)),
            Some(&segment),
            &options,
        )
        .unwrap()
    });
    println!(
        "analyse: all of it (overall, 20 chunks, 8 segments, CBPE): {t:>10.2?}  ({} chunks, {} alerts)",
        report.chunks.len(),
        report.chunks.iter().map(|c| c.alerts.len()).sum::<usize>()
    );
    let mut never = options;
    never.calibration = Calibration::Never;
    let (t, _) = best(3, || {
        analyse(
            &Data::Binary(data),
            Some(&Data::Binary(reference)),
            Some(&segment),
            &never,
        )
        .unwrap()
    });
    println!("analyse without calibration:                        {t:>10.2?}");

    // Multiclass, 3 classes, same sizes.
    let mut rng = Rng(13);
    let mut columns = |n: usize| {
        let mut cols: Vec<Vec<f64>> = (0..3).map(|_| Vec::with_capacity(n)).collect();
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let w: Vec<f64> = (0..3).map(|_| (2.0 * rng.uniform()).exp()).collect();
            let sum: f64 = w.iter().sum();
            for (c, col) in cols.iter_mut().enumerate() {
                col.push(w[c] / sum);
            }
            let u = rng.uniform();
            let y = if u < w[0] / sum {
                0
            } else if u < (w[0] + w[1]) / sum {
                1
            } else {
                2
            };
            labels.push((rng.uniform() < 0.8).then_some(y));
        }
        let preds: Vec<u32> = (0..n)
            .map(|i| {
                (0..3)
                    .max_by(|&a, &b| cols[a][i].total_cmp(&cols[b][i]))
                    .unwrap_or(0) as u32
            })
            .collect();
        (cols, preds, labels)
    };
    let (rc, rp, rl) = columns(100_000);
    let (c, p, l) = columns(1_000_000);
    let rl: Vec<Option<u32>> = rl.into_iter().map(|y| y.or(Some(0))).collect();
    let (rcols, cols): (Vec<&[f64]>, Vec<&[f64]>) = (
        rc.iter().map(Vec::as_slice).collect(),
        c.iter().map(Vec::as_slice).collect(),
    );
    let reference = MulticlassData {
        labels: &rl,
        predictions: &rp,
        probabilities: &rcols,
    };
    let data = MulticlassData {
        labels: &l,
        predictions: &p,
        probabilities: &cols,
    };
    let (t, _) = best(3, || {
        analyse(
            &Data::Multiclass(data),
            Some(&Data::Multiclass(reference)),
            Some(&segment),
            &options,
        )
        .unwrap()
    });
    println!("analyse multiclass (3 classes), same sizes:         {t:>10.2?}");
}
