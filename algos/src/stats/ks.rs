//! Two-sample Kolmogorov–Smirnov test, two-sided, with scipy's exact
//! lattice-path p-value for small samples and Kolmogorov's limiting
//! distribution for large ones.

use super::TestResult;
use super::special::kolmogorov_sf;

/// Largest sample size for which [`KsMode::Auto`] computes the exact p-value
/// (scipy's `MAX_AUTO_N`).
pub const KS_EXACT_MAX: usize = 10_000;

/// Cell updates the unequal-size exact recursion may take before
/// [`KsMode::Exact`] gives up and uses the asymptotic distribution (a few
/// seconds natively). [`KsMode::Auto`] never comes near it: at
/// `max(n1, n2) <= 10_000` the recursion costs at most 10⁸.
pub const KS_EXACT_MAX_WORK: u128 = 2_000_000_000;

/// How [`ks_2samp`] computes the p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KsMode {
    /// Exact when `max(n1, n2) <= 10_000` ([`KS_EXACT_MAX`], scipy's rule),
    /// asymptotic otherwise.
    #[default]
    Auto,
    /// The exact distribution of `D` under the null hypothesis (see
    /// [`ks_2samp`]); falls back to [`KsMode::Asymptotic`] when it cannot be
    /// computed.
    Exact,
    /// Kolmogorov's limiting distribution.
    Asymptotic,
}

/// Two-sample Kolmogorov–Smirnov test, two-sided.
///
/// `a` and `b` must be sorted ascending (use [`super::sort_values`]) and hold
/// finite values only; this is checked in debug builds only.
///
/// **Statistic**: `D = max_x |F_a(x) - F_b(x)|`, the largest distance between
/// the two empirical CDFs (right-continuous, so ties count on both sides as
/// `scipy.stats.ks_2samp` does). It is found by one merge of the sorted
/// inputs in integer arithmetic, as `D = max |i·n2 - j·n1| / (n1·n2)`.
///
/// **Exact p-value** `P(D_{n1,n2} >= d)` under the null hypothesis, scipy's
/// method: with `g = gcd(n1, n2)` and `h = d·lcm(n1, n2)` (an integer here),
/// it is the share of the monotone lattice paths from `(0, 0)` to
/// `(n1, n2)` that touch `|i·n2 - j·n1| >= h·g`. Equal sizes use the closed
/// alternating sum, evaluated Horner-style so nothing cancels; unequal sizes
/// use Hodges' "inside" recursion rewritten (Viehmann 2021) to carry the
/// probability of having touched the boundary, so every intermediate is in
/// `[0, 1]` and neither overflows nor cancels. The statistic returned is then
/// `h / lcm`, as scipy's. It falls back to the asymptotic p-value when
/// `lcm(n1, n2) > i32::MAX` (scipy's rule) or when the recursion would take
/// more than [`KS_EXACT_MAX_WORK`] steps, and when a result is not a
/// probability. A result a rounding error above 1 is taken as 1, where
/// scipy falls back to its asymptotic distribution instead.
///
/// **Asymptotic p-value**: `kolmogorov_sf(√en · d)` with
/// `en = n1·n2 / (n1 + n2)`, i.e. `scipy.stats.kstwobign.sf(sqrt(en) * d)`.
/// Modern scipy's `method='asymp'` instead evaluates `kstwo.sf(d, round(en))`,
/// which differs by `O(1/√n)`; the golden values of this branch are therefore
/// `kstwobign.sf(sqrt(en) * d)` with `d` from `scipy.stats.ks_2samp`.
///
/// **Edge cases**: an empty sample makes the test undefined: both fields are
/// NaN. With one value in each sample `D` is 0 or 1 and the p-value is 1.
pub fn ks_2samp(a: &[f64], b: &[f64], mode: KsMode) -> TestResult {
    debug_assert!(a.is_sorted(), "ks_2samp: `a` must be sorted ascending");
    debug_assert!(b.is_sorted(), "ks_2samp: `b` must be sorted ascending");
    if a.is_empty() || b.is_empty() {
        return TestResult::undefined();
    }
    let (n1, n2) = (a.len() as u128, b.len() as u128);
    let max_diff = max_cdf_gap(a, b);
    let exact = match mode {
        KsMode::Auto => a.len().max(b.len()) <= KS_EXACT_MAX,
        KsMode::Exact => true,
        KsMode::Asymptotic => false,
    };
    if exact {
        let g = gcd(n1, n2);
        let lcm = n1 / g * n2;
        // max_diff = max |i·n2 - j·n1| is a multiple of g; h = D · lcm.
        let h = max_diff / g;
        if h == 0 {
            return TestResult {
                statistic: 0.0,
                p_value: 1.0,
            };
        }
        if lcm <= i32::MAX as u128
            && let Some(p) = exact_sf(n1, n2, g, h)
        {
            return TestResult {
                statistic: h as f64 / lcm as f64,
                p_value: p.clamp(0.0, 1.0),
            };
        }
    }
    let d = max_diff as f64 / (n1 * n2) as f64;
    let en = (n1 * n2) as f64 / (n1 + n2) as f64;
    TestResult {
        statistic: d,
        p_value: kolmogorov_sf(en.sqrt() * d).clamp(0.0, 1.0),
    }
}

/// `max |i·n2 - j·n1|` over the points where either empirical CDF steps,
/// `i` and `j` being the counts of `a` and `b` at or below the point.
fn max_cdf_gap(a: &[f64], b: &[f64]) -> u128 {
    let (n1, n2) = (a.len() as u128, b.len() as u128);
    let (mut i, mut j) = (0usize, 0usize);
    let mut best = 0u128;
    // Once one sample is used up the gap only shrinks, so the loop can stop there.
    while i < a.len() && j < b.len() {
        let v = a[i].min(b[j]);
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        best = best.max((i as u128 * n2).abs_diff(j as u128 * n1));
    }
    best
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `P(D >= h / lcm)`, or `None` when the computation is out of reach or
/// does not produce a probability.
fn exact_sf(n1: u128, n2: u128, g: u128, h: u128) -> Option<f64> {
    let p = if n1 == n2 {
        outside_square(n1 as u64, h as u64)
    } else {
        let (m, n) = if n1 >= n2 { (n1, n2) } else { (n2, n1) };
        // Each of the m columns updates a window of about 2h/(m/g) + 1 cells.
        let work = m * (2 * h / (m / g) + 2);
        if work > KS_EXACT_MAX_WORK {
            return None;
        }
        outside_band(m as i64, n as i64, g as i64, h as i64)
    };
    // Rounding can leave the sum an ulp or two above 1 (n1 = n2 = 7, h = 1
    // gives 1 + 2.2e-16); scipy then abandons the exact value for its
    // asymptotic one, but 1 is the right answer, so clamp instead.
    (0.0..=1.0 + 1e-9).contains(&p).then_some(p.min(1.0))
}

/// Equal sizes `n`: `P(D >= h/n) = 2 Σ_{k≥1} (-1)^{k-1} C(2n, n-kh) / C(2n, n)`,
/// evaluated as `2·A₁(1 - A₂(1 - A₃(…)))` where `A_k` is the ratio of
/// consecutive terms, a product of `h` factors below 1.
fn outside_square(n: u64, h: u64) -> f64 {
    let mut p = 0.0;
    for k in (0..=n / h).rev() {
        let mut ratio = 1.0;
        for j in 0..h {
            // n - k·h - j may reach 0 or below for the last k: that term is 0.
            let num = n as f64 - (k * h + j) as f64;
            ratio = num * ratio / (n + k * h + j + 1) as f64;
        }
        p = ratio * (1.0 - p);
    }
    2.0 * p
}

/// Unequal sizes `m > n`: the probability that a uniformly random monotone
/// path from `(0, 0)` to `(m, n)` touches `|i·ng - j·mg| >= h` (with
/// `mg = m/g`, `ng = n/g`). `u[j]` holds, for the current column `i`, the
/// probability that a random path to `(i, j)` has touched the boundary;
/// points on or past it have probability 1, and a point inside averages its
/// two predecessors weighted by how many paths come from each:
/// `u(i, j) = (i·u(i-1, j) + j·u(i, j-1)) / (i + j)`.
fn outside_band(m: i64, n: i64, g: i64, h: i64) -> f64 {
    let mg = m / g;
    let ng = n / g;
    // Column i's points strictly inside the band are j in [lo, hi).
    let window = |i: i64| {
        let lo = ((ng * i - h).div_euclid(mg) + 1).clamp(0, n);
        let hi = (ng * i + h + mg - 1).div_euclid(mg).min(n + 1);
        (lo, hi)
    };
    let (mut lo, mut hi) = (0, (h + mg - 1).div_euclid(mg).min(n + 1));
    // u is indexed relative to lo; cells beyond the window hold 1 (outside).
    let mut u = vec![1.0f64; n as usize + 2];
    for cell in u.iter_mut().take((hi - lo) as usize) {
        *cell = 0.0;
    }
    for i in 1..=m {
        let (last_lo, last_len) = (lo, hi - lo);
        (lo, hi) = window(i);
        if hi <= lo {
            return 1.0;
        }
        let shift = (lo - last_lo) as usize;
        // u(i, lo - 1) is outside the band (or absent when lo = 0, where its
        // weight j = 0 anyway).
        let mut below = if lo == 0 { 0.0 } else { 1.0 };
        let fi = i as f64;
        for jj in 0..(hi - lo) as usize {
            let j = (jj as i64 + lo) as f64;
            below = (u[jj + shift] * fi + below * j) / (fi + j);
            u[jj] = below;
        }
        let len = hi - lo;
        if last_len > len {
            // Cells the previous column used beyond this one's window are
            // above the band for the next column: outside.
            for cell in &mut u[len as usize..last_len as usize] {
                *cell = 1.0;
            }
        }
    }
    u[(hi - lo - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force over all C(m+n, n) paths for tiny sizes.
    fn brute_force(m: u32, n: u32, h_times_g: u64) -> f64 {
        let total = m + n;
        let (mut hit, mut all) = (0u64, 0u64);
        for mask in 0u32..(1 << total) {
            if mask.count_ones() != n {
                continue;
            }
            all += 1;
            let (mut i, mut j) = (0u64, 0u64);
            let mut touched = false;
            for step in 0..total {
                if mask & (1 << step) != 0 {
                    j += 1;
                } else {
                    i += 1;
                }
                if (i * u64::from(n)).abs_diff(j * u64::from(m)) >= h_times_g {
                    touched = true;
                }
            }
            hit += u64::from(touched);
        }
        hit as f64 / all as f64
    }

    #[test]
    fn exact_matches_brute_force_path_counts() {
        for (m, n) in [(3u32, 2u32), (5, 3), (6, 4), (4, 4), (7, 7), (8, 6), (9, 3)] {
            let g = gcd(u128::from(m), u128::from(n));
            let lcm = u128::from(m) * u128::from(n) / g;
            for h in 1..=lcm {
                let want = brute_force(m, n, (h * g) as u64);
                let got = exact_sf(u128::from(m), u128::from(n), g, h)
                    .unwrap_or_else(|| panic!("m={m} n={n} h={h}: no exact value"));
                assert!(
                    (got - want).abs() < 1e-12,
                    "m={m} n={n} h={h}: got {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn statistic_is_the_largest_cdf_gap_with_ties() {
        let a = [1.0, 2.0, 2.0, 3.0];
        let b = [2.0, 2.0, 4.0];
        // After 2: F_a = 3/4, F_b = 2/3; after 1: 1/4 vs 0; after 3: 1 vs 2/3.
        let r = ks_2samp(&a, &b, KsMode::Asymptotic);
        assert!((r.statistic - 1.0 / 3.0).abs() < 1e-15, "{r:?}");
    }
}
