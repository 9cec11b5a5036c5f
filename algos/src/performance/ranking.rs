//! ROC AUC and average precision from one sort of `(score, positive)`
//! pairs, with scikit-learn's treatment of tied scores: rows with equal
//! scores form one threshold, so a tie between a positive and a negative
//! counts half (ROC AUC) and a tied group enters the precision–recall curve
//! as one step (average precision).

/// Sorts `pairs` by score ascending (a radix sort: O(n)), the order both
/// [`roc_auc`] and [`average_precision`] walk backwards.
pub(crate) fn sort_by_score(pairs: &mut [(f64, bool)]) {
    radsort::sort_by_key(pairs, |p| p.0);
}

/// `(true positives, false positives)` after each distinct threshold, from
/// the highest score down: the points of scikit-learn's `_binary_clf_curve`.
fn curve(sorted: &[(f64, bool)]) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = sorted.len();
    while i > 0 {
        let score = sorted[i - 1].0;
        while i > 0 && sorted[i - 1].0 == score {
            if sorted[i - 1].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i -= 1;
        }
        points.push((tp, fp));
    }
    points
}

/// `sklearn.metrics.roc_auc_score` of pairs sorted by [`sort_by_score`]:
/// the trapezoidal area under (false positive rate, true positive rate).
/// `None` when only one class is present (scikit-learn raises there).
pub(crate) fn roc_auc(sorted: &[(f64, bool)]) -> Option<f64> {
    let points = curve(sorted);
    let &(p, n) = points.last()?;
    if p == 0.0 || n == 0.0 {
        return None;
    }
    let (mut area, mut last) = (0.0, (0.0, 0.0));
    for (tp, fp) in points {
        let (tpr, fpr) = (tp / p, fp / n);
        area += (fpr - last.1) * (tpr + last.0) / 2.0;
        last = (tpr, fpr);
    }
    Some(area)
}

/// `sklearn.metrics.average_precision_score` of pairs sorted by
/// [`sort_by_score`]: `Σ (Rₖ − Rₖ₋₁) Pₖ` over the distinct thresholds.
/// With no positive, scikit-learn sets recall to 1 everywhere, which makes
/// the sum 0: so is it here. `None` without rows.
pub(crate) fn average_precision(sorted: &[(f64, bool)]) -> Option<f64> {
    let points = curve(sorted);
    let &(p, _) = points.last()?;
    if p == 0.0 {
        return Some(0.0);
    }
    let (mut ap, mut last_recall) = (0.0, 0.0);
    for (tp, fp) in points {
        let recall = tp / p;
        let precision = if tp + fp == 0.0 { 0.0 } else { tp / (tp + fp) };
        ap += (recall - last_recall) * precision;
        last_recall = recall;
    }
    Some(ap)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn sorted(scores: &[f64], labels: &[bool]) -> Vec<(f64, bool)> {
        let mut v: Vec<_> = scores.iter().copied().zip(labels.iter().copied()).collect();
        sort_by_score(&mut v);
        v
    }

    #[test]
    fn ties_count_half() {
        // One positive tied with one negative, one positive above them.
        let v = sorted(&[0.5, 0.5, 0.9], &[true, false, true]);
        assert_eq!(roc_auc(&v), Some(0.75));
        assert_eq!(roc_auc(&sorted(&[0.1, 0.2], &[true, true])), None);
        assert_eq!(
            average_precision(&sorted(&[0.1, 0.2], &[false, false])),
            Some(0.0)
        );
        assert_eq!(average_precision(&[]), None);
    }
}
