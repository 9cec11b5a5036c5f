//! Calibrating scores into probabilities, as NannyML does before CBPE:
//! isotonic regression of the labels on the scores (scikit-learn's
//! `IsotonicRegression(out_of_bounds="clip")`, implemented here with pool
//! adjacent violators: no crate of the right shape exists and the
//! algorithm is thirty lines), used only when it lowers the expected
//! calibration error ([`needs_calibration`], NannyML's test).
//!
//! The fit follows scikit-learn step by step: scores sorted (ties by
//! label), scores closer than 1e-15 (float64's `resolution`) merged into one
//! point carrying the mean label and the count as weight, a weighted
//! non-decreasing fit through those points, and prediction by linear
//! interpolation between them, clipped to the fitted score range.

/// A fitted isotonic calibration curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Isotonic {
    /// Distinct reference scores, ascending.
    x: Vec<f64>,
    /// The fitted, non-decreasing probability at each of them.
    y: Vec<f64>,
}

/// NumPy's `finfo(float64).resolution`: scores closer than this are one point.
const RESOLUTION: f64 = 1e-15;

impl Isotonic {
    /// Fits the curve of `labels` on `scores` (same length). `None` when
    /// there is no row.
    pub fn fit(scores: &[f64], labels: &[bool]) -> Option<Isotonic> {
        let mut pairs: Vec<(f64, bool)> =
            scores.iter().copied().zip(labels.iter().copied()).collect();
        // By score, then label (`np.lexsort((y, X))`); the label order does
        // not change the fit, only keeps it deterministic.
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let first = pairs.first()?.0;
        // Unique points: (x, sum of labels, count).
        let mut points: Vec<(f64, f64, f64)> = vec![(first, 0.0, 0.0)];
        for (s, y) in pairs {
            let y = f64::from(u8::from(y));
            match points.last_mut() {
                Some(last) if s - last.0 < RESOLUTION => {
                    last.1 += y;
                    last.2 += 1.0;
                }
                _ => points.push((s, y, 1.0)),
            }
        }
        let fitted = pool_adjacent_violators(points.iter().map(|p| (p.1 / p.2, p.2)));
        Some(Isotonic {
            x: points.iter().map(|p| p.0).collect(),
            y: fitted,
        })
    }

    /// The calibrated probability of `score`.
    pub fn predict(&self, score: f64) -> f64 {
        let (x, y) = (&self.x, &self.y);
        let hi = x.partition_point(|&t| t < score);
        if hi == 0 {
            return y.first().copied().unwrap_or(0.0);
        }
        if hi >= x.len() {
            return y.last().copied().unwrap_or(0.0);
        }
        let (x0, x1, y0, y1) = (x[hi - 1], x[hi], y[hi - 1], y[hi]);
        if x1 == score {
            return y1;
        }
        (y1 - y0) / (x1 - x0) * (score - x0) + y0
    }

    /// [`Isotonic::predict`] of every score.
    pub fn predict_all(&self, scores: &[f64]) -> Vec<f64> {
        scores.iter().map(|&s| self.predict(s)).collect()
    }
}

/// The weighted least-squares non-decreasing fit of `(value, weight)`
/// points: blocks that violate the order are pooled into their weighted mean.
fn pool_adjacent_violators(points: impl Iterator<Item = (f64, f64)>) -> Vec<f64> {
    // (weighted sum, weight, number of points) per block.
    let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
    for (v, w) in points {
        let mut block = (v * w, w, 1);
        while let Some(&(s, pw, n)) = blocks.last() {
            if s / pw < block.0 / block.1 {
                break;
            }
            block = (s + block.0, pw + block.1, n + block.2);
            blocks.pop();
        }
        blocks.push(block);
    }
    blocks
        .into_iter()
        .flat_map(|(s, w, n)| std::iter::repeat_n(s / w, n))
        .collect()
}

/// NannyML's expected calibration error: rows sorted by probability, cut
/// into `bins` runs of equal count (NannyML's `_get_bin_index_edges`: fewer
/// bins when there are under `2 · bins` rows, a longer last run), and
/// `Σ (run size / n) · |mean probability − mean label|`. `None` below 4 rows
/// (NannyML raises).
pub fn expected_calibration_error(
    probabilities: &[f64],
    labels: &[bool],
    bins: usize,
) -> Option<f64> {
    let n = probabilities.len().min(labels.len());
    let bins = if n <= 2 * bins { n / 2 } else { bins };
    if bins < 2 {
        return None;
    }
    let width = n / bins;
    let mut edges: Vec<usize> = (0..=n).step_by(width).collect();
    if let Some(last) = edges.last_mut() {
        *last = n;
    }
    let mut order: Vec<(f64, bool)> = probabilities
        .iter()
        .copied()
        .zip(labels.iter().copied())
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ece = edges
        .windows(2)
        .map(|e| {
            let run = &order[e[0]..e[1]];
            let m = run.len() as f64;
            let p: f64 = run.iter().map(|r| r.0).sum::<f64>() / m;
            let y = run.iter().filter(|r| r.1).count() as f64 / m;
            m / n as f64 * (p - y).abs()
        })
        .sum();
    Some(ece)
}

/// Number of shuffled splits [`needs_calibration`] tries, and the share of
/// rows each holds out (NannyML: 10 splits of 10 %).
const SPLITS: usize = 10;
const TEST_SHARE: f64 = 0.1;
/// Bins of the expected calibration error (NannyML: 10).
const ECE_BINS: usize = 10;

/// NannyML's `needs_calibration`: false with one class or a ROC AUC above
/// 0.999; otherwise isotonic calibration is fitted on 90 % of the rows and
/// applied to the other 10 %, ten times over stratified random splits, and
/// calibration is needed when the expected calibration error of the pooled
/// held-out rows is lower calibrated than raw.
///
/// NannyML draws its splits with scikit-learn's `StratifiedShuffleSplit`
/// (NumPy's Mersenne Twister, seed 42); this draws them with SplitMix64
/// (seed 42) so the crate needs no NumPy-compatible generator. The two can
/// disagree only when calibration barely changes the error.
pub fn needs_calibration(scores: &[f64], labels: &[bool]) -> bool {
    let n = scores.len().min(labels.len());
    let positives: Vec<usize> = (0..n).filter(|&i| labels[i]).collect();
    let negatives: Vec<usize> = (0..n).filter(|&i| !labels[i]).collect();
    if positives.is_empty() || negatives.is_empty() {
        return false;
    }
    let mut pairs: Vec<(f64, bool)> = scores[..n]
        .iter()
        .copied()
        .zip(labels[..n].iter().copied())
        .collect();
    super::ranking::sort_by_score(&mut pairs);
    if super::ranking::roc_auc(&pairs).is_some_and(|auc| auc > 0.999) {
        return false;
    }
    let n_test = (TEST_SHARE * n as f64).ceil() as usize;
    // Held-out rows per class, in proportion, remainders to the larger share.
    let exact = |c: usize| c as f64 * n_test as f64 / n as f64;
    let (mut t_pos, mut t_neg) = (
        exact(positives.len()) as usize,
        exact(negatives.len()) as usize,
    );
    if t_pos + t_neg < n_test {
        if exact(positives.len()).fract() >= exact(negatives.len()).fract() {
            t_pos += 1;
        } else {
            t_neg += 1;
        }
    }
    let mut rng = SplitMix64(42);
    let (mut test_y, mut raw, mut calibrated) = (Vec::new(), Vec::new(), Vec::new());
    let (mut pos, mut neg) = (positives, negatives);
    for _ in 0..SPLITS {
        rng.shuffle(&mut pos);
        rng.shuffle(&mut neg);
        let (test_p, train_p) = pos.split_at(t_pos.min(pos.len()));
        let (test_n, train_n) = neg.split_at(t_neg.min(neg.len()));
        let train: Vec<usize> = train_p.iter().chain(train_n).copied().collect();
        let train_s: Vec<f64> = train.iter().map(|&i| scores[i]).collect();
        let train_y: Vec<bool> = train.iter().map(|&i| labels[i]).collect();
        let Some(iso) = Isotonic::fit(&train_s, &train_y) else {
            return false;
        };
        for &i in test_p.iter().chain(test_n) {
            test_y.push(labels[i]);
            raw.push(scores[i]);
            calibrated.push(iso.predict(scores[i]));
        }
    }
    match (
        expected_calibration_error(&raw, &test_y, ECE_BINS),
        expected_calibration_error(&calibrated, &test_y, ECE_BINS),
    ) {
        (Some(before), Some(after)) => before > after,
        _ => false,
    }
}

/// SplitMix64: a small, well-mixed generator for the splits.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fisher–Yates, with Lemire's multiply-shift for the index (its bias,
    /// under 2⁻³², does not matter for a split).
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = ((self.next() >> 32) * (i as u64 + 1)) >> 32;
            v.swap(i, j as usize);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn pools_violators_and_interpolates() {
        let iso = Isotonic::fit(&[0.1, 0.2, 0.3, 0.4], &[false, true, false, true]).unwrap();
        // 0.2 and 0.3 pool into 0.5.
        assert_eq!(iso.y, [0.0, 0.5, 0.5, 1.0]);
        assert_eq!(iso.predict(0.0), 0.0);
        assert_eq!(iso.predict(0.25), 0.5);
        assert!((iso.predict(0.35) - 0.75).abs() < 1e-12);
        assert_eq!(iso.predict(9.0), 1.0);
        assert!(Isotonic::fit(&[], &[]).is_none());
    }

    #[test]
    fn ece_bins_like_nannyml() {
        // 25 rows, 10 bins wanted: width 2, so 12 runs (the last has 3 rows).
        let p: Vec<f64> = (0..25).map(|i| i as f64 / 25.0).collect();
        let y: Vec<bool> = (0..25).map(|i| i % 2 == 0).collect();
        assert!(expected_calibration_error(&p, &y, 10).is_some());
        assert!(expected_calibration_error(&p[..3], &y[..3], 10).is_none());
    }
}
