//! Drift statistics: the two-sample tests and distances a drift monitor
//! compares a column's reference and current distributions with, their
//! special functions, and the automatic choice between them. Each one
//! reproduces a scipy function (named in its docs) to 1e-6 or better, which
//! `tests/all/golden.rs` checks against values recorded from scipy by
//! `tests/golden/generate.py`.
//!
//! All functions are pure and deterministic and take already clean inputs:
//! finite values only (the caller drops nulls, NaN and ±∞ and reports them
//! separately). Sample-based statistics ([`ks_2samp`], [`wasserstein`],
//! [`wasserstein_normed`]) want their samples sorted ascending, by
//! [`sort_values`], so that a monitor sorts its reference once.
//!
//! A statistic that is undefined for its input (an empty sample, a frequency
//! vector with no mass) is NaN, never a panic and never a made-up 0: the
//! caller checks `is_nan()` and reports "not enough data". The functions
//! are documented with their exact definition and edge cases.
//!
//! | function | what | scipy / reference |
//! | --- | --- | --- |
//! | [`ks_2samp`] | two-sample Kolmogorov–Smirnov, exact or asymptotic p-value | `scipy.stats.ks_2samp`, `kstwobign.sf` |
//! | [`chi2_contingency`] | chi-square homogeneity of a 2×k table (Yates at dof 1) | `scipy.stats.chi2_contingency` |
//! | [`z_test_proportions`], [`z_test_counts`] | pooled two-proportion Z-test | Evidently's `z` test |
//! | [`jensen_shannon`] | Jensen–Shannon distance | `scipy.spatial.distance.jensenshannon` |
//! | [`hellinger`], [`linf`], [`psi`] | Hellinger, L∞, population stability index | definitions in their docs |
//! | [`wasserstein`], [`wasserstein_normed`] | Wasserstein-1, raw and over the reference's std | `scipy.stats.wasserstein_distance`, Evidently |
//! | [`normal_sf`], [`chi2_sf`], [`kolmogorov_sf`] | survival functions | `norm.sf`, `chi2.sf`, `kstwobign.sf` |

mod categorical;
mod distance;
mod ks;
mod special;

pub use categorical::{ChiSquare, chi2_contingency, z_test_counts, z_test_proportions};
pub use distance::{
    WASSERSTEIN_MIN_STD, hellinger, jensen_shannon, linf, psi, sort_values, wasserstein,
    wasserstein_normed,
};
pub use ks::{KS_EXACT_MAX, KS_EXACT_MAX_WORK, KsMode, ks_2samp};
pub use special::{chi2_sf, kolmogorov_sf, normal_sf};

use serde::{Deserialize, Serialize};

/// Result of a statistical test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    /// The test statistic (`D` for Kolmogorov–Smirnov, `z` for the Z-test).
    pub statistic: f64,
    /// Probability, under the hypothesis that both samples come from one
    /// distribution, of a statistic at least this extreme.
    pub p_value: f64,
}

impl TestResult {
    /// Both fields NaN: the test is undefined for its input.
    fn undefined() -> TestResult {
        TestResult {
            statistic: f64::NAN,
            p_value: f64::NAN,
        }
    }
}

/// A drift statistic a monitor can use for a column. Serialised in
/// lowercase (`"psi"`, `"ks"`, `"chisquare"`, `"z"`, `"jensenshannon"`,
/// `"wasserstein"`, `"hellinger"`, `"linf"`), Evidently's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Population stability index over bins, [`psi`].
    Psi,
    /// Two-sample Kolmogorov–Smirnov test, [`ks_2samp`] (a p-value).
    Ks,
    /// Chi-square test of homogeneity, [`chi2_contingency`] (a p-value).
    ChiSquare,
    /// Two-proportion Z-test, [`z_test_proportions`] (a p-value).
    Z,
    /// Jensen–Shannon distance, [`jensen_shannon`].
    JensenShannon,
    /// Wasserstein distance normed by the reference's std, [`wasserstein_normed`].
    Wasserstein,
    /// Hellinger distance, [`hellinger`].
    Hellinger,
    /// L∞ distance between frequencies, [`linf`].
    Linf,
}

impl Method {
    /// Every method, in declaration order.
    pub const ALL: [Method; 8] = [
        Method::Psi,
        Method::Ks,
        Method::ChiSquare,
        Method::Z,
        Method::JensenShannon,
        Method::Wasserstein,
        Method::Hellinger,
        Method::Linf,
    ];

    /// The serialised name, e.g. `"chisquare"`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Psi => "psi",
            Method::Ks => "ks",
            Method::ChiSquare => "chisquare",
            Method::Z => "z",
            Method::JensenShannon => "jensenshannon",
            Method::Wasserstein => "wasserstein",
            Method::Hellinger => "hellinger",
            Method::Linf => "linf",
        }
    }

    /// The method whose [`name`](Method::name) is exactly `s`.
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Whether the method is a test whose value is a p-value (KS,
    /// chi-square, Z); the others are distances.
    pub fn is_test(self) -> bool {
        matches!(self, Method::Ks | Method::ChiSquare | Method::Z)
    }

    /// Evidently's default threshold: 0.05 for a p-value, 0.1 for a
    /// distance, PSI included (Evidently's PSI default; the PSI literature
    /// reads 0.1 as "some shift" and 0.2 as "significant", so a monitor that
    /// wants the latter sets it per column).
    pub fn default_threshold(self) -> f64 {
        if self.is_test() { 0.05 } else { 0.1 }
    }

    /// Whether `value` means drift at `threshold`: a p-value at or below it
    /// (Evidently's convention), a distance at or above it. NaN (an
    /// undefined statistic) never drifts.
    pub fn drifted(self, value: f64, threshold: f64) -> bool {
        if self.is_test() {
            value <= threshold
        } else {
            value >= threshold
        }
    }
}

/// How a column's values are compared: as numbers or as categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    /// Numbers: ordered, with a distance between values.
    Numeric,
    /// Labels (strings, booleans): only equality matters.
    Categorical,
}

/// Reference sizes above this use distances instead of tests: with many rows
/// a test flags shifts too small to matter.
pub const AUTO_LARGE_REFERENCE: u64 = 1000;

/// Distinct values above which a numeric column is treated as continuous.
pub const AUTO_CONTINUOUS_DISTINCT: u64 = 5;

/// The method for a column, Evidently's `get_default_stattest` rule decided
/// from the reference alone, so a streaming monitor's method never changes
/// between windows. `reference_rows` counts the reference's non-missing
/// values and `distinct` its distinct values.
///
/// - `reference_rows <= 1000`: a numeric column with more than 5 distinct
///   values gets [`Method::Ks`]; any other (categorical, or numeric with at
///   most 5 values) gets [`Method::ChiSquare`] if it has more than 2 distinct
///   values, else [`Method::Z`].
/// - `reference_rows > 1000`: a numeric column with more than 5 distinct
///   values gets [`Method::Wasserstein`], any other [`Method::JensenShannon`].
pub fn auto_method(kind: ColumnKind, reference_rows: u64, distinct: u64) -> Method {
    let continuous = kind == ColumnKind::Numeric && distinct > AUTO_CONTINUOUS_DISTINCT;
    match (reference_rows > AUTO_LARGE_REFERENCE, continuous) {
        (false, true) => Method::Ks,
        (false, false) if distinct > 2 => Method::ChiSquare,
        (false, false) => Method::Z,
        (true, true) => Method::Wasserstein,
        (true, false) => Method::JensenShannon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip_through_parse_and_serde() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.name()), Some(m));
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
            assert_eq!(serde_json::from_str::<Method>(&json).unwrap(), m);
        }
        assert_eq!(Method::ChiSquare.name(), "chisquare");
        assert_eq!(Method::JensenShannon.name(), "jensenshannon");
        assert_eq!(Method::parse("KS"), None);
        assert_eq!(Method::parse("chi_square"), None);
    }

    #[test]
    fn thresholds_and_verdicts() {
        assert_eq!(Method::Ks.default_threshold(), 0.05);
        assert_eq!(Method::Psi.default_threshold(), 0.1);
        assert!(Method::Ks.drifted(0.05, 0.05));
        assert!(!Method::Z.drifted(0.051, 0.05));
        assert!(Method::Wasserstein.drifted(0.1, 0.1));
        assert!(!Method::Linf.drifted(0.099, 0.1));
        assert!(!Method::Ks.drifted(f64::NAN, 0.05));
        assert!(!Method::Psi.drifted(f64::NAN, 0.1));
    }

    #[test]
    fn auto_method_follows_evidently_on_the_reference() {
        use ColumnKind::{Categorical, Numeric};
        assert_eq!(auto_method(Numeric, 1000, 6), Method::Ks);
        assert_eq!(auto_method(Numeric, 1000, 5), Method::ChiSquare);
        assert_eq!(auto_method(Numeric, 1000, 2), Method::Z);
        assert_eq!(auto_method(Categorical, 10, 50), Method::ChiSquare);
        assert_eq!(auto_method(Categorical, 10, 3), Method::ChiSquare);
        assert_eq!(auto_method(Categorical, 10, 2), Method::Z);
        assert_eq!(auto_method(Categorical, 0, 0), Method::Z);
        assert_eq!(auto_method(Numeric, 1001, 6), Method::Wasserstein);
        assert_eq!(auto_method(Numeric, 1001, 5), Method::JensenShannon);
        assert_eq!(
            auto_method(Categorical, 1_000_000, 2),
            Method::JensenShannon
        );
    }

    #[test]
    fn one_value_all_ties_and_empty_samples() {
        for mode in [KsMode::Auto, KsMode::Exact, KsMode::Asymptotic] {
            let empty = ks_2samp(&[], &[1.0], mode);
            assert!(empty.statistic.is_nan() && empty.p_value.is_nan());
            let one = ks_2samp(&[1.0], &[2.0], mode);
            assert_eq!(one.statistic, 1.0);
            let ties = ks_2samp(&[4.0; 30], &[4.0; 20], mode);
            assert_eq!((ties.statistic, ties.p_value), (0.0, 1.0));
            let apart = ks_2samp(&[1.0; 30], &[2.0; 20], mode);
            assert_eq!(apart.statistic, 1.0);
            assert!(apart.p_value < 1e-6, "{mode:?}: {apart:?}");
        }
        // Exact with one value each: D = 1 happens for every pair of distinct values.
        assert_eq!(ks_2samp(&[1.0], &[2.0], KsMode::Exact).p_value, 1.0);
        assert_eq!(wasserstein(&[4.0; 30], &[4.0; 20]), 0.0);
        assert_eq!(wasserstein(&[1.0; 30], &[2.0; 20]), 1.0);
    }
}
