//! Realized regression metrics, with `sklearn.metrics`' definitions
//! (`e = prediction − truth` over the labelled rows):
//!
//! - `mae` = mean |e|; `rmse` = √(mean e²); `max_error` = max |e|;
//! - `mape` = mean |e| / max(|truth|, ε), ε = `f64::EPSILON` (a fraction,
//!   not a percentage, as `mean_absolute_percentage_error`);
//! - `r2` = 1 − Σe² / Σ(truth − mean truth)²; with a constant truth, 1 when
//!   every prediction is exact and 0 otherwise (`force_finite=True`);
//!   `None` below two labelled rows (scikit-learn returns NaN there);
//! - `mean_error` = mean e, the bias: **positive when the model predicts
//!   too high**, negative when it predicts too low.

use super::binary::{finite, same_length};
use super::{Metrics, metrics_of};
use crate::{AlgoError, Result};

/// A regression model's predictions and the labels known so far.
#[derive(Debug, Clone, Copy)]
pub struct RegressionData<'a> {
    /// The true value; `None` while unknown.
    pub labels: &'a [Option<f64>],
    /// The predicted value.
    pub predictions: &'a [f64],
    /// The model's input features, row-aligned (NaN = missing), for DLE's
    /// loss models; empty when unknown (then no estimate).
    pub features: &'a [&'a [f64]],
}

impl RegressionData<'_> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Lengths agree and values are finite.
    pub fn check(&self) -> Result<()> {
        same_length("prediction", self.predictions.len(), self.labels.len())?;
        finite("prediction", self.predictions)?;
        match self
            .labels
            .iter()
            .position(|y| y.is_some_and(|y| !y.is_finite()))
        {
            None => Ok(()),
            Some(row) => Err(AlgoError::Input {
                column: "label".into(),
                row: Some(row),
                message: "label is not a finite number".into(),
            }),
        }
    }
}

/// Realized metrics of some rows.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionRealized {
    /// Rows looked at.
    pub rows: usize,
    /// Of which labelled.
    pub labelled: usize,
    /// Metrics by name.
    pub metrics: Metrics,
}

/// Realized metrics of `rows` (indices into `data`; out-of-range ones are
/// ignored). Every metric is `None` when no row is labelled.
pub fn realized(
    data: &RegressionData,
    rows: impl IntoIterator<Item = usize>,
) -> RegressionRealized {
    let mut seen = 0usize;
    let mut truth = Vec::new();
    let (mut abs, mut sq, mut pct, mut err, mut max) = (0.0, 0.0, 0.0, 0.0, 0.0f64);
    for i in rows {
        let (Some(label), Some(&p)) = (data.labels.get(i), data.predictions.get(i)) else {
            continue;
        };
        seen += 1;
        let Some(y) = *label else { continue };
        let e = p - y;
        abs += e.abs();
        sq += e * e;
        pct += e.abs() / y.abs().max(f64::EPSILON);
        err += e;
        max = max.max(e.abs());
        truth.push(y);
    }
    let n = truth.len() as f64;
    let mean = |s: f64| (n > 0.0).then_some(s / n);
    let r2 = (truth.len() >= 2).then(|| {
        let m = truth.iter().sum::<f64>() / n;
        let total: f64 = truth.iter().map(|y| (y - m).powi(2)).sum();
        match (total == 0.0, sq == 0.0) {
            (false, _) => 1.0 - sq / total,
            (true, true) => 1.0,
            (true, false) => 0.0,
        }
    });
    let list = [
        ("mae", mean(abs)),
        ("rmse", mean(sq).map(f64::sqrt)),
        ("mape", mean(pct)),
        ("r2", r2),
        ("mean_error", mean(err)),
        ("max_error", (n > 0.0).then_some(max)),
    ];
    RegressionRealized {
        rows: seen,
        labelled: truth.len(),
        metrics: metrics_of(&list),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn bias_is_prediction_minus_truth() {
        let labels = [Some(1.0), Some(3.0), None];
        let predictions = [2.0, 4.0, 100.0];
        let r = realized(
            &RegressionData {
                features: &[],
                labels: &labels,
                predictions: &predictions,
            },
            0..3,
        );
        assert_eq!((r.rows, r.labelled), (3, 2));
        assert_eq!(r.metrics["mean_error"], Some(1.0));
        assert_eq!(r.metrics["r2"], Some(0.0));
        assert_eq!(r.metrics["max_error"], Some(1.0));
    }
}
