//! Distances between two distributions: over frequency vectors
//! (Jensen–Shannon, Hellinger, L∞, PSI) and between samples (Wasserstein-1),
//! plus the sort the sample-based statistics need.

/// Both frequency vectors normalised to sum 1, padded with zeros to the same
/// length; `None` when either has no mass.
fn normalised(p: &[f64], q: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    debug_assert!(
        p.iter().chain(q).all(|v| *v >= 0.0),
        "frequencies must be non-negative"
    );
    let len = p.len().max(q.len());
    let scale = |v: &[f64]| {
        let total: f64 = v.iter().sum();
        (total > 0.0 && total.is_finite()).then(|| {
            let mut out: Vec<f64> = v.iter().map(|x| x / total).collect();
            out.resize(len, 0.0);
            out
        })
    };
    Some((scale(p)?, scale(q)?))
}

/// Jensen–Shannon distance, `scipy.spatial.distance.jensenshannon(p, q, base)`:
/// with `p`, `q` normalised to sum 1 and `m = (p + q) / 2`,
/// `√((KL(p‖m) + KL(q‖m)) / (2 ln base))`, where `KL(x‖y) = Σ x ln(x/y)`
/// over `x > 0`. In `[0, 1]` for base 2, `[0, √ln 2]` for base e.
///
/// `p` and `q` are non-negative frequencies (counts or proportions) aligned
/// by category; the shorter is padded with zeros. NaN when either has no
/// mass (empty or all zero). Rounding can make the sum a hair below 0 for
/// identical inputs; it is clamped to 0 rather than returning NaN.
pub fn jensen_shannon(p: &[f64], q: &[f64], base: f64) -> f64 {
    let Some((p, q)) = normalised(p, q) else {
        return f64::NAN;
    };
    let rel_entr = |x: f64, y: f64| if x > 0.0 { x * (x / y).ln() } else { 0.0 };
    let mut left = 0.0;
    let mut right = 0.0;
    for (x, y) in p.iter().zip(&q) {
        let m = (x + y) / 2.0;
        left += rel_entr(*x, m);
        right += rel_entr(*y, m);
    }
    ((left + right) / base.ln() / 2.0).max(0.0).sqrt()
}

/// Hellinger distance, `√(Σ (√p_i - √q_i)²) / √2` over `p`, `q` normalised to
/// sum 1; in `[0, 1]`. Inputs, padding and NaN as [`jensen_shannon`].
pub fn hellinger(p: &[f64], q: &[f64]) -> f64 {
    let Some((p, q)) = normalised(p, q) else {
        return f64::NAN;
    };
    let sum: f64 = p
        .iter()
        .zip(&q)
        .map(|(x, y)| (x.sqrt() - y.sqrt()).powi(2))
        .sum();
    (sum / 2.0).sqrt()
}

/// L∞ distance, `max_i |p_i - q_i|` over `p`, `q` normalised to sum 1; in
/// `[0, 1]`. Inputs, padding and NaN as [`jensen_shannon`].
pub fn linf(p: &[f64], q: &[f64]) -> f64 {
    let Some((p, q)) = normalised(p, q) else {
        return f64::NAN;
    };
    p.iter()
        .zip(&q)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Population stability index of `q` (current) against `p` (reference):
/// `Σ (q_i - p_i) ln(q_i / p_i)` over `p`, `q` normalised to sum 1 and then
/// each proportion raised to at least `epsilon`, so an empty bin gives a
/// large but finite term (the drift monitor uses `epsilon = 1e-4`). It is
/// `>= 0` and 0 only for equal proportions. `epsilon` must be positive for
/// the result to be finite. Inputs, padding and NaN as [`jensen_shannon`].
pub fn psi(p: &[f64], q: &[f64], epsilon: f64) -> f64 {
    let Some((p, q)) = normalised(p, q) else {
        return f64::NAN;
    };
    p.iter()
        .zip(&q)
        .map(|(x, y)| {
            let (x, y) = (x.max(epsilon), y.max(epsilon));
            (y - x) * (y / x).ln()
        })
        .sum()
}

/// Wasserstein-1 (earth mover's) distance between the empirical
/// distributions of two samples, `scipy.stats.wasserstein_distance(a, b)`:
/// `∫ |F_a(x) - F_b(x)| dx`, computed exactly as a sum over the gaps between
/// consecutive values of the merged samples, in one pass.
///
/// `a` and `b` must be sorted ascending (use [`sort_values`]) and finite;
/// checked in debug builds only. NaN when either is empty.
pub fn wasserstein(a: &[f64], b: &[f64]) -> f64 {
    debug_assert!(a.is_sorted(), "wasserstein: `a` must be sorted ascending");
    debug_assert!(b.is_sorted(), "wasserstein: `b` must be sorted ascending");
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    // Σ |i·n2 - j·n1| · gap, divided by n1·n2 once at the end so the CDF
    // difference itself carries no rounding. The products fit in u64 for any
    // sample below 2^32 values, and u64 → f64 is a single instruction where
    // u128 → f64 is a library call (a third of the time on 1M values).
    if u64::try_from(a.len().max(b.len())).is_ok_and(|n| n < 1 << 31) {
        area_between::<u64>(a, b)
    } else {
        area_between::<u128>(a, b)
    }
}

/// The integer type [`wasserstein`] counts CDF steps in.
trait Steps: Copy {
    fn of(n: usize) -> Self;
    fn gap(i: usize, n2: Self, j: usize, n1: Self) -> f64;
    fn product(a: Self, b: Self) -> f64;
}

impl Steps for u64 {
    fn of(n: usize) -> u64 {
        n as u64
    }
    fn gap(i: usize, n2: u64, j: usize, n1: u64) -> f64 {
        (i as u64 * n2).abs_diff(j as u64 * n1) as f64
    }
    fn product(a: u64, b: u64) -> f64 {
        (a as f64) * (b as f64)
    }
}

impl Steps for u128 {
    fn of(n: usize) -> u128 {
        n as u128
    }
    fn gap(i: usize, n2: u128, j: usize, n1: u128) -> f64 {
        (i as u128 * n2).abs_diff(j as u128 * n1) as f64
    }
    fn product(a: u128, b: u128) -> f64 {
        (a * b) as f64
    }
}

fn area_between<T: Steps>(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (T::of(a.len()), T::of(b.len()));
    let (mut i, mut j) = (0usize, 0usize);
    let mut area = 0.0;
    let mut x = a[0].min(b[0]);
    loop {
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        let next = match (a.get(i), b.get(j)) {
            (Some(u), Some(v)) => u.min(*v),
            (Some(u), None) => *u,
            (None, Some(v)) => *v,
            (None, None) => break,
        };
        area += T::gap(i, n2, j, n1) * (next - x);
        x = next;
    }
    area / T::product(n1, n2)
}

/// Smallest reference standard deviation [`wasserstein_normed`] divides by
/// (Evidently's floor).
pub const WASSERSTEIN_MIN_STD: f64 = 0.001;

/// Wasserstein distance in units of the reference's spread, Evidently's
/// "Wasserstein distance (normed)": `wasserstein(reference, current) /
/// max(std(reference), 0.001)`, with the population standard deviation
/// (ddof = 0, `numpy.std`). The floor [`WASSERSTEIN_MIN_STD`] is Evidently's
/// too: a constant reference gives `1000 ×` the raw distance, so any move of
/// its values reads as drift, while an unchanged column still gives 0.
///
/// Inputs as [`wasserstein`]; NaN when either is empty.
pub fn wasserstein_normed(reference: &[f64], current: &[f64]) -> f64 {
    if reference.is_empty() {
        return f64::NAN;
    }
    let n = reference.len() as f64;
    let mean = reference.iter().sum::<f64>() / n;
    let var = reference.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    wasserstein(reference, current) / var.sqrt().max(WASSERSTEIN_MIN_STD)
}

/// Sorts finite values ascending, in place: an LSD radix sort (`radsort`),
/// linear in the length, several times faster than a comparison sort on
/// million-value columns. `-0.0` sorts before `0.0`; NaN must not occur
/// (the callers drop them first).
pub fn sort_values(v: &mut [f64]) {
    radsort::sort(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequency_distances_of_empty_or_massless_inputs_are_nan() {
        for (p, q) in [(&[][..], &[1.0][..]), (&[0.0, 0.0][..], &[1.0, 2.0][..])] {
            assert!(jensen_shannon(p, q, 2.0).is_nan());
            assert!(hellinger(q, p).is_nan());
            assert!(linf(p, q).is_nan());
            assert!(psi(p, q, 1e-4).is_nan());
        }
    }

    #[test]
    fn frequency_distances_normalise_and_pad() {
        // Counts and proportions give the same; a missing category is a zero.
        assert_eq!(linf(&[2.0, 2.0], &[1.0, 1.0, 2.0]), 0.5);
        assert_eq!(linf(&[2.0, 2.0], &[0.25, 0.25, 0.5]), 0.5);
        assert_eq!(hellinger(&[1.0, 0.0], &[0.0, 3.0]), 1.0);
        assert_eq!(jensen_shannon(&[1.0, 0.0], &[0.0, 3.0], 2.0), 1.0);
        assert_eq!(jensen_shannon(&[3.0, 1.0], &[6.0, 2.0], 2.0), 0.0);
        assert_eq!(psi(&[5.0, 5.0], &[1.0, 1.0], 1e-4), 0.0);
        // An empty current bin: (1e-4 - 0.5) ln(1e-4 / 0.5) + (1 - 0.5) ln(1 / 0.5)
        let want = (1e-4 - 0.5) * (1e-4f64 / 0.5).ln() + 0.5 * 2f64.ln();
        assert!((psi(&[1.0, 1.0], &[0.0, 4.0], 1e-4) - want).abs() < 1e-15);
    }

    #[test]
    fn wasserstein_edges() {
        assert!(wasserstein(&[], &[1.0]).is_nan());
        assert!(wasserstein_normed(&[], &[1.0]).is_nan());
        assert!(wasserstein_normed(&[1.0], &[]).is_nan());
        assert_eq!(wasserstein(&[3.0], &[3.0]), 0.0);
        assert_eq!(wasserstein(&[0.0], &[2.5]), 2.5);
        assert_eq!(wasserstein(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]), 5.0);
        // A constant reference divides by the 0.001 floor, not by 0.
        assert_eq!(wasserstein_normed(&[2.0; 4], &[2.0; 3]), 0.0);
        assert!((wasserstein_normed(&[2.0; 4], &[2.5; 3]) - 500.0).abs() < 1e-9);
    }

    #[test]
    fn sort_values_orders_like_total_cmp() {
        let mut v = vec![
            3.5,
            -1.0,
            0.0,
            1e300,
            -1e-300,
            2.0,
            -7.25,
            0.0,
            f64::MIN_POSITIVE,
        ];
        let mut want = v.clone();
        want.sort_by(f64::total_cmp);
        sort_values(&mut v);
        assert_eq!(v, want);
    }
}
