//! Tests on counts: the chi-square test of homogeneity of a 2×k table and the
//! pooled two-proportion Z-test.

use super::TestResult;
use super::special::{chi2_sf, normal_sf};

/// Result of [`chi2_contingency`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChiSquare {
    /// Pearson's statistic `Σ (observed - expected)² / expected`, after Yates'
    /// correction when `dof == 1`.
    pub statistic: f64,
    /// `P(χ²_dof > statistic)`.
    pub p_value: f64,
    /// Degrees of freedom, `k - 1` over the `k` categories kept.
    pub dof: usize,
}

/// Chi-square test of homogeneity of a 2×k contingency table whose row 0 is
/// `reference` and row 1 is `current` (counts per category, aligned by
/// index; a shorter slice counts 0 for the missing categories).
///
/// It is `scipy.stats.chi2_contingency(table)` with its defaults, applied to
/// the table without its all-zero columns (scipy refuses those, since their
/// expected count is 0):
///
/// - expected count `E[r][c] = row_total[r] · column_total[c] / total`;
/// - `dof = k - 1` for the `k` categories with a count in either row;
/// - when `dof == 1`, Yates' continuity correction moves each observed count
///   towards its expected count by `min(0.5, |E - O|)`;
/// - statistic `Σ (O - E)² / E`, p-value `chi2_sf(statistic, dof)`;
/// - `dof == 0` (one category in all) gives statistic 0 and p-value 1, as scipy.
///
/// An empty row (no reference or no current counts) makes the test
/// undefined: statistic and p-value are NaN, `dof` is 0.
pub fn chi2_contingency(reference: &[u64], current: &[u64]) -> ChiSquare {
    let k = reference.len().max(current.len());
    let at = |row: &[u64], c: usize| row.get(c).copied().unwrap_or(0) as f64;
    let kept: Vec<usize> = (0..k)
        .filter(|&c| at(reference, c) + at(current, c) > 0.0)
        .collect();
    let rows = [reference, current];
    let row_totals = rows.map(|row| kept.iter().map(|&c| at(row, c)).sum::<f64>());
    if row_totals.contains(&0.0) {
        return ChiSquare {
            statistic: f64::NAN,
            p_value: f64::NAN,
            dof: 0,
        };
    }
    let total = row_totals[0] + row_totals[1];
    let dof = kept.len() - 1;
    if dof == 0 {
        return ChiSquare {
            statistic: 0.0,
            p_value: 1.0,
            dof,
        };
    }
    let mut statistic = 0.0;
    for &c in &kept {
        let column_total = at(reference, c) + at(current, c);
        for (row, row_total) in rows.iter().zip(row_totals) {
            let expected = row_total * column_total / total;
            let mut observed = at(row, c);
            if dof == 1 {
                let diff = expected - observed;
                observed += diff.abs().min(0.5).copysign(diff);
            }
            statistic += (observed - expected) * (observed - expected) / expected;
        }
    }
    ChiSquare {
        statistic,
        p_value: chi2_sf(statistic, dof as f64),
        dof,
    }
}

/// Pooled two-proportion Z-test, two-sided: `x_ref` successes out of `n_ref`
/// reference trials against `x_cur` out of `n_cur` current ones.
///
/// With `p_ref = x_ref / n_ref`, `p_cur = x_cur / n_cur` and the pooled
/// `p = (x_ref + x_cur) / (n_ref + n_cur)`:
/// `z = (p_ref - p_cur) / √(p (1 - p) (1/n_ref + 1/n_cur))` (Evidently's
/// sign) and `p_value = 2 · normal_sf(|z|)`.
///
/// Edge cases: when `p` is 0 or 1 both samples are all failures or all
/// successes, so the proportions are equal: `z = 0`, p-value 1. No trials on
/// either side, or more successes than trials, is undefined: both NaN.
pub fn z_test_proportions(x_ref: u64, n_ref: u64, x_cur: u64, n_cur: u64) -> TestResult {
    if n_ref == 0 || n_cur == 0 || x_ref > n_ref || x_cur > n_cur {
        return TestResult::undefined();
    }
    let (xr, nr, xc, nc) = (x_ref as f64, n_ref as f64, x_cur as f64, n_cur as f64);
    let pooled = (xr + xc) / (nr + nc);
    if pooled == 0.0 || pooled == 1.0 {
        return TestResult {
            statistic: 0.0,
            p_value: 1.0,
        };
    }
    let z = (xr / nr - xc / nc) / (pooled * (1.0 - pooled) * (1.0 / nr + 1.0 / nc)).sqrt();
    TestResult {
        statistic: z,
        p_value: (2.0 * normal_sf(z.abs())).min(1.0),
    }
}

/// [`z_test_proportions`] on category counts (aligned by index as in
/// [`chi2_contingency`]): a success is category 0, a trial any category.
/// Evidently's Z-test on a binary column takes its first category in sorted
/// order as the success; pass the categories in that order to match it.
pub fn z_test_counts(reference: &[u64], current: &[u64]) -> TestResult {
    let first = |row: &[u64]| row.first().copied().unwrap_or(0);
    z_test_proportions(
        first(reference),
        reference.iter().sum(),
        first(current),
        current.iter().sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_zero_categories_are_dropped_and_shorter_rows_padded() {
        let with_gaps = chi2_contingency(&[10, 0, 20, 0, 30], &[15, 0, 25]);
        let dense = chi2_contingency(&[10, 20, 30], &[15, 25, 0]);
        assert_eq!(with_gaps, dense);
        assert_eq!(dense.dof, 2);
    }

    #[test]
    fn empty_rows_are_undefined_and_one_category_is_no_evidence() {
        let empty = chi2_contingency(&[0, 0], &[3, 4]);
        assert!(empty.statistic.is_nan() && empty.p_value.is_nan());
        assert_eq!(empty.dof, 0);
        assert!(chi2_contingency(&[], &[]).p_value.is_nan());
        let one = chi2_contingency(&[7, 0], &[3]);
        assert_eq!(
            one,
            ChiSquare {
                statistic: 0.0,
                p_value: 1.0,
                dof: 0
            }
        );
    }

    #[test]
    fn yates_correction_never_overshoots() {
        // Observed equals expected: the correction must not push it away (gh-13875).
        let r = chi2_contingency(&[10, 20], &[10, 20]);
        assert_eq!(r.statistic, 0.0);
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.dof, 1);
    }

    #[test]
    fn z_test_edges() {
        assert!(z_test_proportions(1, 0, 1, 2).p_value.is_nan());
        assert!(z_test_proportions(3, 2, 1, 2).statistic.is_nan());
        let same = z_test_proportions(0, 10, 0, 20);
        assert_eq!((same.statistic, same.p_value), (0.0, 1.0));
        let all = z_test_proportions(10, 10, 20, 20);
        assert_eq!((all.statistic, all.p_value), (0.0, 1.0));
        let r = z_test_proportions(30, 100, 50, 100);
        assert!(r.statistic < 0.0, "reference share is lower: {r:?}");
        assert_eq!(z_test_counts(&[30, 70], &[50, 50]), r);
        assert!(z_test_counts(&[], &[1]).p_value.is_nan());
    }
}
