//! Realized binary classification metrics, with `sklearn.metrics`'
//! definitions (positive class `true`, `zero_division` answered with 0):
//!
//! - `accuracy` = (TP + TN) / n; `precision` = TP / (TP + FP); `recall` =
//!   TP / (TP + FN); `f1` = 2TP / (2TP + FP + FN); `specificity` =
//!   TN / (TN + FP) (`recall_score(pos_label=0)`);
//! - `roc_auc`, `average_precision`: see the ranking helpers; ties as
//!   scikit-learn, ROC AUC `None` when one class is present;
//! - `log_loss` = −mean ln p(true class), probabilities clipped to
//!   `[ε, 1 − ε]` (ε = `f64::EPSILON`, scikit-learn's `eps="auto"`);
//! - `brier` = mean (score − label)².
//!
//! The score metrics need scores; they are `None` when a score lies outside
//! `[0, 1]`, which scikit-learn refuses. One pass counts and sums, one radix
//! sort ranks.

use super::ranking;
use super::{Metrics, metrics_of, ratio};
use crate::{AlgoError, Result};

/// A binary model's output and the labels known so far, row-aligned.
#[derive(Debug, Clone, Copy)]
pub struct BinaryData<'a> {
    /// The true class; `None` while unknown.
    pub labels: &'a [Option<bool>],
    /// The predicted class.
    pub predictions: &'a [bool],
    /// The predicted probability of `true`, when the model gives one.
    pub scores: Option<&'a [f64]>,
}

impl BinaryData<'_> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Lengths agree and scores are finite.
    pub fn check(&self) -> Result<()> {
        let n = self.labels.len();
        same_length("prediction", self.predictions.len(), n)?;
        if let Some(scores) = self.scores {
            same_length("score", scores.len(), n)?;
            finite("score", scores)?;
        }
        Ok(())
    }
}

/// `score >= threshold`: the predictions of a model that only gives scores.
pub fn predictions_from_scores(scores: &[f64], threshold: f64) -> Vec<bool> {
    scores.iter().map(|&s| s >= threshold).collect()
}

/// Realized metrics of some rows.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryRealized {
    /// Rows looked at.
    pub rows: usize,
    /// Of which labelled.
    pub labelled: usize,
    /// `[[TN, FP], [FN, TP]]`, rows the truth, columns the prediction
    /// (`sklearn.metrics.confusion_matrix` with labels `[false, true]`).
    pub confusion: [[u64; 2]; 2],
    /// Metrics by name; score metrics only when there are scores.
    pub metrics: Metrics,
}

/// Realized metrics of `rows` (indices into `data`; out-of-range ones are
/// ignored). Every metric is `None` when no row is labelled.
pub fn realized(data: &BinaryData, rows: impl IntoIterator<Item = usize>) -> BinaryRealized {
    let mut cm = [[0u64; 2]; 2];
    let (mut seen, mut log_loss, mut brier, mut in_range) = (0usize, 0.0, 0.0, true);
    let mut pairs = Vec::new();
    for i in rows {
        let (Some(label), Some(&pred)) = (data.labels.get(i), data.predictions.get(i)) else {
            continue;
        };
        seen += 1;
        let Some(y) = *label else { continue };
        cm[usize::from(y)][usize::from(pred)] += 1;
        if let Some(&s) = data.scores.and_then(|s| s.get(i)) {
            in_range &= (0.0..=1.0).contains(&s);
            let p = if y { s } else { 1.0 - s };
            log_loss -= p.clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln();
            brier += (s - f64::from(u8::from(y))).powi(2);
            pairs.push((s, y));
        }
    }
    let [[tn, fp], [fn_, tp]] = cm.map(|r| r.map(|c| c as f64));
    let n = tn + fp + fn_ + tp;
    let defined = |v: f64| (n > 0.0).then_some(v);
    let mut list = vec![
        ("accuracy", defined(ratio(tp + tn, n))),
        ("precision", defined(ratio(tp, tp + fp))),
        ("recall", defined(ratio(tp, tp + fn_))),
        ("f1", defined(ratio(2.0 * tp, 2.0 * tp + fp + fn_))),
        ("specificity", defined(ratio(tn, tn + fp))),
    ];
    if data.scores.is_some() {
        ranking::sort_by_score(&mut pairs);
        let m = pairs.len() as f64;
        let probabilistic = |v: f64| (m > 0.0 && in_range).then_some(v / m);
        list.extend([
            ("roc_auc", ranking::roc_auc(&pairs)),
            ("average_precision", ranking::average_precision(&pairs)),
            ("log_loss", probabilistic(log_loss)),
            ("brier", probabilistic(brier)),
        ]);
    }
    BinaryRealized {
        rows: seen,
        labelled: n as usize,
        confusion: cm,
        metrics: metrics_of(&list),
    }
}

pub(crate) fn same_length(column: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(AlgoError::Input {
        column: column.into(),
        row: None,
        message: format!("has {got} rows, the labels {want}"),
    })
}

pub(crate) fn finite(column: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(row) => Err(AlgoError::Input {
            column: column.into(),
            row: Some(row),
            message: format!("{} is not a finite number", values[row]),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn unlabelled_rows_count_but_do_not_score() {
        let labels = [Some(true), None, Some(false), Some(true)];
        let predictions = [true, true, true, false];
        let scores = [0.9, 0.8, 0.7, 0.2];
        let data = BinaryData {
            labels: &labels,
            predictions: &predictions,
            scores: Some(&scores),
        };
        let r = realized(&data, 0..4);
        assert_eq!((r.rows, r.labelled), (4, 3));
        assert_eq!(r.confusion, [[0, 1], [1, 1]]);
        assert_eq!(r.metrics["precision"], Some(0.5));
        assert_eq!(r.metrics["specificity"], Some(0.0));
        let none = realized(&data, 1..2);
        assert_eq!(none.metrics["accuracy"], None);
        assert_eq!(none.metrics["roc_auc"], None);
        assert!(
            BinaryData {
                scores: Some(&[0.1, f64::NAN, 0.2, 0.3]),
                ..data
            }
            .check()
            .is_err()
        );
    }
}
