//! Drift statistics: two-sample tests with p-values and distances between
//! distributions, plus the automatic choice of method per column.
//! Pure functions over cleaned inputs (finite values only); checked
//! against scipy in `tests/golden.rs`.

use serde::{Deserialize, Serialize};

/// A test's statistic and two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    pub statistic: f64,
    pub p_value: f64,
}

/// How [`ks_2samp`] computes its p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KsMode {
    /// Exact when `max(n1, n2) <= 10_000` (scipy's rule), else asymptotic.
    Auto,
    Exact,
    Asymptotic,
}

/// Largest sample for which [`KsMode::Auto`] computes the exact p-value.
pub const KS_EXACT_MAX: usize = 10_000;

/// Two-sample Kolmogorov–Smirnov test, two-sided. `a` and `b` sorted ascending.
///
/// `D = sup |F_a(x) − F_b(x)|`. Exact p-value: the share of lattice paths
/// from (0, 0) to (n1, n2) that reach `|i·n2 − j·n1| >= h·g` where
/// `h = round(D · lcm(n1, n2))` and `g = gcd(n1, n2)` (scipy's method, as a
/// probability recursion that needs no subtraction). Asymptotic: Kolmogorov's
/// limit, `p = kolmogorov_sf(sqrt(n1·n2 / (n1 + n2)) · D)`; scipy's
/// `method="asymp"` uses `kstwo.sf(D, round(en))` instead, which differs by
/// O(1/sqrt(n)). Empty inputs give `D = 0, p = 1`.
pub fn ks_2samp(a: &[f64], b: &[f64], mode: KsMode) -> TestResult {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return TestResult {
            statistic: 0.0,
            p_value: 1.0,
        };
    }
    debug_assert!(a.windows(2).all(|w| w[0] <= w[1]));
    debug_assert!(b.windows(2).all(|w| w[0] <= w[1]));
    // Walk both samples; D is measured after each distinct value.
    let (mut i, mut j) = (0usize, 0usize);
    let mut d_num: u128 = 0; // max |i·n2 − j·n1|
    while i < n1 && j < n2 {
        let x = if a[i] <= b[j] { a[i] } else { b[j] };
        while i < n1 && a[i] == x {
            i += 1;
        }
        while j < n2 && b[j] == x {
            j += 1;
        }
        let diff = (i as i128 * n2 as i128 - j as i128 * n1 as i128).unsigned_abs();
        d_num = d_num.max(diff);
    }
    let (nn1, nn2) = (n1 as u128, n2 as u128);
    let d = d_num as f64 / (nn1 * nn2) as f64;
    let exact = match mode {
        KsMode::Exact => true,
        KsMode::Asymptotic => false,
        KsMode::Auto => n1.max(n2) <= KS_EXACT_MAX,
    };
    if exact && let Some(p) = ks_exact_p(n1, n2, d_num) {
        return TestResult {
            statistic: d,
            p_value: p,
        };
    }
    let en = (n1 as f64 * n2 as f64) / (n1 as f64 + n2 as f64);
    TestResult {
        statistic: d,
        p_value: kolmogorov_sf(en.sqrt() * d).clamp(0.0, 1.0),
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `P(D >= d)` for samples of `n1` and `n2`, with `d_num = d · n1 · n2`.
/// `None` if the recursion under- or overflows.
fn ks_exact_p(n1: usize, n2: usize, d_num: u128) -> Option<f64> {
    if d_num == 0 {
        return Some(1.0);
    }
    let (m, n) = (n1.max(n2), n1.min(n2));
    let (mm, nn) = (m as u128, n as u128);
    // Paths step one sample at a time; a point (i, j) (i of the larger
    // sample, j of the smaller) is "out" when |i·n − j·m| >= d_num.
    let out = |i: usize, j: usize| -> bool {
        (i as i128 * nn as i128 - j as i128 * mm as i128).unsigned_abs() >= d_num
    };
    // q[j]: probability that a uniformly random path to (i, j) has been out.
    let mut q = vec![0.0f64; n + 1];
    for j in 1..=n {
        q[j] = if out(0, j) { 1.0 } else { q[j - 1] };
    }
    for i in 1..=m {
        q[0] = if out(i, 0) { 1.0 } else { q[0] };
        for j in 1..=n {
            q[j] = if out(i, j) {
                1.0
            } else {
                // Of the paths to (i, j), i/(i+j) come from (i-1, j), j/(i+j) from (i, j-1).
                let t = (i + j) as f64;
                q[j] * (i as f64 / t) + q[j - 1] * (j as f64 / t)
            };
        }
    }
    let _ = gcd;
    let p = q[n];
    (p.is_finite() && (0.0..=1.0 + 1e-12).contains(&p)).then_some(p.min(1.0))
}

/// Kolmogorov's limiting survival function `P(K > z) = 2 Σ (−1)^(k−1) e^(−2k²z²)`.
pub fn kolmogorov_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    if z <= 0.0 {
        return 1.0;
    }
    if z < 1.18 {
        // The alternating series converges slowly here; use the Jacobi form
        // of the CDF: sqrt(2π)/z Σ exp(−(2k−1)²π²/(8z²)).
        let w = std::f64::consts::PI.powi(2) / (8.0 * z * z);
        let mut cdf = 0.0;
        for k in 1..=20 {
            let t = (2 * k - 1) as f64;
            cdf += (-t * t * w).exp();
        }
        let cdf = cdf * (2.0 * std::f64::consts::PI).sqrt() / z;
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let kf = k as f64;
        let term = (-2.0 * kf * kf * z * z).exp();
        sum += if k % 2 == 1 { term } else { -term };
        if term < 1e-300 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Chi-square test of homogeneity of a 2×k table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChiSquare {
    pub statistic: f64,
    pub p_value: f64,
    pub dof: usize,
}

/// `scipy.stats.chi2_contingency([reference, current])` with its defaults:
/// categories with 0 in both rows are dropped, expected counts come from the
/// margins, Yates' correction applies when `dof == 1`. Fewer than two
/// categories left (or an empty row) gives statistic 0, p-value 1, dof 0.
pub fn chi2_contingency(reference: &[u64], current: &[u64]) -> ChiSquare {
    let cells: Vec<(f64, f64)> = reference
        .iter()
        .zip(current)
        .filter(|(r, c)| **r + **c > 0)
        .map(|(r, c)| (*r as f64, *c as f64))
        .collect();
    let nr: f64 = cells.iter().map(|c| c.0).sum();
    let nc: f64 = cells.iter().map(|c| c.1).sum();
    let total = nr + nc;
    if cells.len() < 2 || nr == 0.0 || nc == 0.0 {
        return ChiSquare {
            statistic: 0.0,
            p_value: 1.0,
            dof: 0,
        };
    }
    let dof = cells.len() - 1;
    let mut stat = 0.0;
    for (r, c) in &cells {
        let col = r + c;
        for (obs, row) in [(*r, nr), (*c, nc)] {
            let exp = row * col / total;
            let mut diff = obs - exp;
            if dof == 1 {
                // Yates: move each observed count 0.5 toward its expectation.
                diff = diff.signum() * (diff.abs() - 0.5).max(0.0);
            }
            stat += diff * diff / exp;
        }
    }
    ChiSquare {
        statistic: stat,
        p_value: chi2_sf(stat, dof as f64),
        dof,
    }
}

/// Pooled two-proportion Z-test, two-sided: `z = (p_ref − p_cur) / sqrt(p(1−p)(1/n_ref + 1/n_cur))`.
/// An empty sample or a pooled share of 0 or 1 gives `z = 0, p = 1`.
pub fn z_test_proportions(x_ref: u64, n_ref: u64, x_cur: u64, n_cur: u64) -> TestResult {
    if n_ref == 0 || n_cur == 0 {
        return TestResult {
            statistic: 0.0,
            p_value: 1.0,
        };
    }
    let (n1, n2) = (n_ref as f64, n_cur as f64);
    let p = (x_ref + x_cur) as f64 / (n1 + n2);
    let se = (p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 || !se.is_finite() {
        return TestResult {
            statistic: 0.0,
            p_value: 1.0,
        };
    }
    let z = (x_ref as f64 / n1 - x_cur as f64 / n2) / se;
    TestResult {
        statistic: z,
        p_value: (2.0 * normal_sf(z.abs())).min(1.0),
    }
}

fn normalised(p: &[f64]) -> Vec<f64> {
    let s: f64 = p.iter().sum();
    if s > 0.0 {
        p.iter().map(|x| x / s).collect()
    } else {
        p.to_vec()
    }
}

/// `scipy.spatial.distance.jensenshannon(p, q, base)`: the square root of
/// the Jensen–Shannon divergence; inputs normalised to sum 1.
pub fn jensen_shannon(p: &[f64], q: &[f64], base: f64) -> f64 {
    let (p, q) = (normalised(p), normalised(q));
    let mut js = 0.0;
    for (a, b) in p.iter().zip(&q) {
        let m = (a + b) / 2.0;
        if *a > 0.0 {
            js += a * (a / m).ln();
        }
        if *b > 0.0 {
            js += b * (b / m).ln();
        }
    }
    (js / 2.0 / base.ln()).max(0.0).sqrt()
}

/// Hellinger distance `sqrt(Σ (sqrt p − sqrt q)²) / sqrt 2`, in [0, 1]; inputs normalised.
pub fn hellinger(p: &[f64], q: &[f64]) -> f64 {
    let (p, q) = (normalised(p), normalised(q));
    let s: f64 = p
        .iter()
        .zip(&q)
        .map(|(a, b)| (a.sqrt() - b.sqrt()).powi(2))
        .sum();
    (s / 2.0).sqrt()
}

/// `max |p_i − q_i|` over normalised frequencies.
pub fn linf(p: &[f64], q: &[f64]) -> f64 {
    let (p, q) = (normalised(p), normalised(q));
    p.iter()
        .zip(&q)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

/// Population stability index `Σ (q − p) ln(q / p)` (p reference, q current),
/// each proportion raised to at least `epsilon`.
pub fn psi(p: &[f64], q: &[f64], epsilon: f64) -> f64 {
    let (p, q) = (normalised(p), normalised(q));
    p.iter()
        .zip(&q)
        .map(|(r, c)| {
            let (r, c) = (r.max(epsilon), c.max(epsilon));
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// `scipy.stats.wasserstein_distance(a, b)`: the area between the two
/// empirical CDFs. Inputs sorted; an empty input gives NaN.
pub fn wasserstein(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut x = a[0].min(b[0]);
    let mut area = 0.0;
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(u), Some(v)) => u.min(*v),
            (Some(u), None) => *u,
            (None, Some(v)) => *v,
            (None, None) => break,
        };
        area += (i as f64 / na - j as f64 / nb).abs() * (next - x);
        x = next;
        while i < a.len() && a[i] == x {
            i += 1;
        }
        while j < b.len() && b[j] == x {
            j += 1;
        }
    }
    area
}

/// Wasserstein distance divided by the reference's population standard
/// deviation (Evidently's "normed" variant); a constant reference gives the
/// raw distance.
pub fn wasserstein_normed(reference: &[f64], current: &[f64]) -> f64 {
    let w = wasserstein(reference, current);
    let n = reference.len() as f64;
    if n == 0.0 {
        return f64::NAN;
    }
    let mean = reference.iter().sum::<f64>() / n;
    let var = reference.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let sd = var.sqrt();
    if sd > 0.0 { w / sd } else { w }
}

/// Standard normal survival function `P(Z > z)`.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Chi-square survival function `P(X > x)` with `dof` degrees of freedom.
pub fn chi2_sf(x: f64, dof: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    gamma_q(dof / 2.0, x / 2.0)
}

/// Complementary error function (W. J. Cody's rational approximations via
/// the regularised incomplete gamma: erfc(x) = Q(1/2, x²) for x >= 0).
fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    gamma_q(0.5, x * x)
}

/// `ln Γ(x)` for x > 0 (Lanczos, g = 7, n = 9; ~1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised upper incomplete gamma `Q(a, x)` (series below `a + 1`,
/// Lentz's continued fraction above; Numerical Recipes §6.2).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < a + 1.0 {
        let mut sum = 1.0 / a;
        let mut term = sum;
        let mut ap = a;
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        let p = sum * (-x + a * x.ln() - ln_gamma(a)).exp();
        (1.0 - p).clamp(0.0, 1.0)
    } else {
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        ((-x + a * x.ln() - ln_gamma(a)).exp() * h).clamp(0.0, 1.0)
    }
}

/// Sorts finite values ascending.
pub fn sort_values(v: &mut [f64]) {
    v.sort_unstable_by(f64::total_cmp);
}

/// A drift method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "psi")]
    Psi,
    #[serde(rename = "ks")]
    Ks,
    #[serde(rename = "chisquare")]
    ChiSquare,
    #[serde(rename = "z")]
    Z,
    #[serde(rename = "jensenshannon")]
    JensenShannon,
    #[serde(rename = "wasserstein")]
    Wasserstein,
    #[serde(rename = "hellinger")]
    Hellinger,
    #[serde(rename = "linf")]
    Linf,
}

const METHODS: [Method; 8] = [
    Method::Psi,
    Method::Ks,
    Method::ChiSquare,
    Method::Z,
    Method::JensenShannon,
    Method::Wasserstein,
    Method::Hellinger,
    Method::Linf,
];

impl Method {
    /// The name in configs, reports and metrics.
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

    /// The method called `s`.
    pub fn parse(s: &str) -> Option<Method> {
        METHODS.into_iter().find(|m| m.name() == s)
    }

    /// Whether it is a test (its verdict compares a p-value).
    pub fn is_test(self) -> bool {
        matches!(self, Method::Ks | Method::ChiSquare | Method::Z)
    }

    /// 0.05 for tests (a p-value), 0.1 for distances (Evidently's defaults).
    pub fn default_threshold(self) -> f64 {
        if self.is_test() { 0.05 } else { 0.1 }
    }

    /// Drift: a test's p-value `<=` the threshold (Evidently's convention),
    /// a distance `>=` the threshold.
    pub fn drifted(self, value: f64, threshold: f64) -> bool {
        if self.is_test() {
            value <= threshold
        } else {
            value >= threshold
        }
    }
}

/// What a column holds, for the automatic choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Numeric,
    Categorical,
}

/// Evidently's default test per column, decided from the reference alone
/// (`reference_rows` non-missing values, `distinct` of them): up to 1000
/// rows, KS for numeric columns with more than 5 distinct values, else
/// chi-square with more than 2 values and Z with 2 or fewer; above 1000
/// rows, normalised Wasserstein for numeric columns with more than 5
/// distinct values, else Jensen–Shannon.
pub fn auto_method(kind: ColumnKind, reference_rows: u64, distinct: u64) -> Method {
    let continuous = kind == ColumnKind::Numeric && distinct > 5;
    if reference_rows <= 1000 {
        if continuous {
            Method::Ks
        } else if distinct > 2 {
            Method::ChiSquare
        } else {
            Method::Z
        }
    } else if continuous {
        Method::Wasserstein
    } else {
        Method::JensenShannon
    }
}
