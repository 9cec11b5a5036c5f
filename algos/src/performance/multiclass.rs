//! Realized multiclass classification metrics, with `sklearn.metrics`'
//! definitions over the classes `0..k` (`labels=range(k)`, so a class
//! absent from a chunk still counts in the macro average):
//!
//! - `accuracy`; `precision`, `recall`, `f1` macro-averaged (the plain mean
//!   over classes), `*_weighted` averaged with the classes' true counts as
//!   weights; a class with a zero denominator scores 0 (`zero_division`);
//! - `roc_auc`: one-vs-rest, macro (`roc_auc_score(multi_class="ovr")`):
//!   the mean of each class's binary ROC AUC of its probability column,
//!   `None` unless every class is present among the labelled rows.
//!   scikit-learn also refuses probability rows that do not sum to 1; this
//!   computes the same mean regardless;
//! - `log_loss` = −mean ln p(true class), clipped to `[ε, 1 − ε]`, `None`
//!   when a probability lies outside `[0, 1]`.

use super::binary::{finite, same_length};
use super::ranking;
use super::{Metrics, metrics_of, ratio};
use crate::{AlgoError, Result};

/// A multiclass model's output and the labels known so far, row-aligned.
/// Classes are numbered `0..k`, `k` the number of probability columns.
#[derive(Debug, Clone, Copy)]
pub struct MulticlassData<'a> {
    /// The true class; `None` while unknown.
    pub labels: &'a [Option<u32>],
    /// The predicted class.
    pub predictions: &'a [u32],
    /// One column per class: its predicted probability.
    pub probabilities: &'a [&'a [f64]],
}

impl MulticlassData<'_> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.probabilities.len()
    }

    /// Lengths agree, probabilities are finite, classes are below `k`, and
    /// there are at least two classes.
    pub fn check(&self) -> Result<()> {
        let (n, k) = (self.labels.len(), self.classes());
        if k < 2 {
            return Err(AlgoError::Input {
                column: "probabilities".into(),
                row: None,
                message: format!("{k} probability column(s); a classifier has at least 2"),
            });
        }
        same_length("prediction", self.predictions.len(), n)?;
        for column in self.probabilities {
            same_length("probabilities", column.len(), n)?;
            finite("probabilities", column)?;
        }
        let out = |column: &str, row: usize, class: u32| AlgoError::Input {
            column: column.into(),
            row: Some(row),
            message: format!("class {class} out of range, there are {k} classes"),
        };
        if let Some(row) = self.predictions.iter().position(|&c| c as usize >= k) {
            return Err(out("prediction", row, self.predictions[row]));
        }
        match self
            .labels
            .iter()
            .position(|c| c.is_some_and(|c| c as usize >= k))
        {
            Some(row) => Err(out("label", row, self.labels[row].unwrap_or(0))),
            None => Ok(()),
        }
    }
}

/// Realized metrics of some rows.
#[derive(Debug, Clone, PartialEq)]
pub struct MulticlassRealized {
    /// Rows looked at.
    pub rows: usize,
    /// Of which labelled.
    pub labelled: usize,
    /// `k × k` counts, rows the truth, columns the prediction.
    pub confusion: Vec<Vec<u64>>,
    /// Metrics by name.
    pub metrics: Metrics,
}

/// Realized metrics of `rows` (indices into `data`, checked by
/// [`MulticlassData::check`]; out-of-range ones are ignored).
pub fn realized(
    data: &MulticlassData,
    rows: impl IntoIterator<Item = usize>,
) -> MulticlassRealized {
    let k = data.classes();
    let mut cm = vec![vec![0u64; k]; k];
    let (mut seen, mut log_loss, mut in_range) = (0usize, 0.0, true);
    let mut labelled = Vec::new();
    for i in rows {
        let (Some(label), Some(&pred)) = (data.labels.get(i), data.predictions.get(i)) else {
            continue;
        };
        seen += 1;
        let Some(y) = *label else { continue };
        let (y, pred) = (y as usize, pred as usize);
        if let Some(cell) = cm.get_mut(y).and_then(|r| r.get_mut(pred)) {
            *cell += 1;
        }
        for (c, column) in data.probabilities.iter().enumerate() {
            let p = column.get(i).copied().unwrap_or(0.0);
            in_range &= (0.0..=1.0).contains(&p);
            if c == y {
                log_loss -= p.clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln();
            }
        }
        labelled.push((i, y));
    }
    let n = labelled.len() as f64;
    let truth: Vec<f64> = cm.iter().map(|r| r.iter().sum::<u64>() as f64).collect();
    let predicted: Vec<f64> = (0..k)
        .map(|c| cm.iter().map(|r| r[c]).sum::<u64>() as f64)
        .collect();
    let tp: Vec<f64> = (0..k).map(|c| cm[c][c] as f64).collect();
    let precision: Vec<f64> = (0..k).map(|c| ratio(tp[c], predicted[c])).collect();
    let recall: Vec<f64> = (0..k).map(|c| ratio(tp[c], truth[c])).collect();
    let f1: Vec<f64> = (0..k)
        .map(|c| ratio(2.0 * tp[c], truth[c] + predicted[c]))
        .collect();
    let defined = |v: f64| (n > 0.0).then_some(v);
    let macro_ = |v: &[f64]| defined(v.iter().sum::<f64>() / k as f64);
    let weighted = |v: &[f64]| {
        defined(ratio(
            v.iter().zip(&truth).map(|(x, w)| x * w).sum(),
            truth.iter().sum(),
        ))
    };
    let roc_auc = one_vs_rest_auc(data, &labelled);
    let list = [
        ("accuracy", defined(ratio(tp.iter().sum(), n))),
        ("precision", macro_(&precision)),
        ("recall", macro_(&recall)),
        ("f1", macro_(&f1)),
        ("precision_weighted", weighted(&precision)),
        ("recall_weighted", weighted(&recall)),
        ("f1_weighted", weighted(&f1)),
        ("roc_auc", roc_auc),
        ("log_loss", (n > 0.0 && in_range).then_some(log_loss / n)),
    ];
    MulticlassRealized {
        rows: seen,
        labelled: labelled.len(),
        confusion: cm,
        metrics: metrics_of(&list),
    }
}

/// The mean over classes of each class's binary ROC AUC; `None` when one
/// of them is undefined (a class absent or alone).
fn one_vs_rest_auc(data: &MulticlassData, labelled: &[(usize, usize)]) -> Option<f64> {
    let k = data.classes();
    let mut pairs = Vec::with_capacity(labelled.len());
    let mut sum = 0.0;
    for (c, column) in data.probabilities.iter().enumerate() {
        pairs.clear();
        pairs.extend(
            labelled
                .iter()
                .map(|&(i, y)| (column.get(i).copied().unwrap_or(0.0), y == c)),
        );
        ranking::sort_by_score(&mut pairs);
        sum += ranking::roc_auc(&pairs)?;
    }
    Some(sum / k as f64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn absent_class_counts_in_the_macro_average() {
        let labels = [Some(0), Some(1), Some(1), None];
        let predictions = [0, 1, 0, 2];
        let p0 = [0.8, 0.1, 0.6, 0.2];
        let p1 = [0.1, 0.8, 0.3, 0.2];
        let p2 = [0.1, 0.1, 0.1, 0.6];
        let probabilities: [&[f64]; 3] = [&p0, &p1, &p2];
        let data = MulticlassData {
            labels: &labels,
            predictions: &predictions,
            probabilities: &probabilities,
        };
        data.check().unwrap();
        let r = realized(&data, 0..4);
        assert_eq!((r.rows, r.labelled), (4, 3));
        // Recall: class 0 1/1, class 1 1/2, class 2 0 (no support).
        assert_eq!(r.metrics["recall"], Some(0.5));
        assert_eq!(r.metrics["roc_auc"], None);
    }
}
