//! Survival functions of the normal, chi-square and Kolmogorov distributions,
//! written out here (rather than taken from a crate) so that their accuracy
//! is ours to test and they compile unchanged for wasm.
//!
//! All three rest on the regularised upper incomplete gamma function `Q(a, x)`
//! (series for `x < a + 1`, Lentz's continued fraction otherwise, as in
//! Numerical Recipes, 3rd ed., §6.2) and a Lanczos `ln Γ`. `erfc(x) = Q(½, x²)`
//! keeps the normal tail accurate to about 1e-13 relative far out in the
//! tail, where `1 - cdf` would be 0.

/// Relative precision at which the series and continued fraction stop.
const EPS: f64 = 1e-16;
/// Stands in for zero in Lentz's method, whose denominators may vanish.
const FPMIN: f64 = 1e-300;
/// Iteration cap: both expansions converge in `O(√a)` steps, so this is
/// reached only for `a` beyond 10¹⁰ (a chi-square with that many degrees of
/// freedom), where the last partial sum is still a close answer.
const MAX_ITER: usize = 200_000;

/// Lanczos coefficients for `g = 7`, `n = 9` (relative error below 2e-15 for `x >= 0.5`).
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
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

/// `ln Γ(x)` for `x > 0`.
pub(crate) fn ln_gamma(x: f64) -> f64 {
    if x < 0.5 {
        // Γ(x) = Γ(x + 1) / x keeps the Lanczos sum in its accurate range.
        return ln_gamma(x + 1.0) - x.ln();
    }
    let x = x - 1.0;
    let t = x + LANCZOS_G + 0.5;
    let mut sum = LANCZOS[0];
    for (i, c) in LANCZOS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    0.5 * (2.0 * core::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// `e^{-x} x^a / Γ(a)`, the factor both expansions of the incomplete gamma share.
fn gamma_prefactor(a: f64, x: f64) -> f64 {
    (-x + a * x.ln() - ln_gamma(a)).exp()
}

/// Regularised upper incomplete gamma `Q(a, x) = Γ(a, x) / Γ(a)` for
/// `a > 0`, `x >= 0`; NaN outside that domain.
pub(crate) fn gamma_q(a: f64, x: f64) -> f64 {
    if a.is_nan() || x.is_nan() || a <= 0.0 || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    if x < a + 1.0 {
        // Series for P; here P < ~0.92 (its largest at a = ½), so 1 - P loses
        // at most a digit.
        let mut ap = a;
        let mut del = 1.0 / a;
        let mut sum = del;
        for _ in 0..MAX_ITER {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * EPS {
                break;
            }
        }
        1.0 - sum * gamma_prefactor(a, x)
    } else {
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / FPMIN;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..MAX_ITER {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < FPMIN {
                d = FPMIN;
            }
            c = b + an / c;
            if c.abs() < FPMIN {
                c = FPMIN;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < EPS {
                break;
            }
        }
        gamma_prefactor(a, x) * h
    }
}

/// Survival function of the standard normal distribution, `P(Z > z)`
/// (`scipy.stats.norm.sf`). NaN for NaN; 1 at `-∞`, 0 at `+∞`.
pub fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    // erfc(t) = Q(½, t²) with t = |z| / √2.
    let tail = 0.5 * gamma_q(0.5, 0.5 * z * z);
    if z >= 0.0 { tail } else { 1.0 - tail }
}

/// Survival function of the chi-square distribution with `dof` degrees of
/// freedom, `P(X > x) = Q(dof/2, x/2)` (`scipy.stats.chi2.sf`). 1 for
/// `x <= 0`; NaN when `dof <= 0` or either argument is NaN.
pub fn chi2_sf(x: f64, dof: f64) -> f64 {
    if x.is_nan() || dof.is_nan() || dof <= 0.0 {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    gamma_q(0.5 * dof, 0.5 * x)
}

/// Below this argument the theta-function series of the CDF converges faster
/// than the alternating series of the survival function (scipy's cut-over).
const KOLMOGOROV_CUTOVER: f64 = 0.82;

/// Survival function of Kolmogorov's limiting distribution,
/// `P(K > z) = 2 Σ_{k≥1} (-1)^{k-1} e^{-2k²z²}` (`scipy.stats.kstwobign.sf`,
/// `scipy.special.kolmogorov`). 1 for `z <= 0`; NaN for NaN.
///
/// For `z < 0.82` it is computed as `1 - cdf` with the equivalent
/// `cdf = √(2π)/z Σ_{k≥1} e^{-(2k-1)²π²/(8z²)}`, whose terms fall off fast
/// there (and the survival function is above ½, so nothing cancels).
pub fn kolmogorov_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    if z <= 0.0 {
        return 1.0;
    }
    if z < KOLMOGOROV_CUTOVER {
        let w = core::f64::consts::PI * core::f64::consts::PI / (8.0 * z * z);
        let mut cdf = 0.0;
        for k in 1..=20u32 {
            let odd = f64::from(2 * k - 1);
            let term = (-odd * odd * w).exp();
            cdf += term;
            if term <= cdf * EPS {
                break;
            }
        }
        cdf *= (2.0 * core::f64::consts::PI).sqrt() / z;
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=100u32 {
        let kf = f64::from(k);
        let term = (-2.0 * kf * kf * z * z).exp();
        sum += sign * term;
        if term <= sum.abs() * EPS {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, rel: f64) {
        assert!(
            (got - want).abs() <= rel * want.abs(),
            "got {got:e}, want {want:e} (rel {:e})",
            ((got - want) / want).abs()
        );
    }

    #[test]
    fn ln_gamma_of_integers_and_halves() {
        // Γ(n) = (n-1)!, Γ(½) = √π
        close(ln_gamma(1.0).exp(), 1.0, 1e-14);
        close(ln_gamma(5.0).exp(), 24.0, 1e-14);
        close(ln_gamma(0.5), core::f64::consts::PI.sqrt().ln(), 1e-14);
        close(ln_gamma(0.1).exp(), 9.513_507_698_668_732, 1e-13);
        close(ln_gamma(171.0), 706.573_062_245_787_4, 1e-14);
    }

    #[test]
    fn domains_and_limits() {
        assert!(normal_sf(f64::NAN).is_nan());
        assert_eq!(normal_sf(f64::INFINITY), 0.0);
        assert_eq!(normal_sf(f64::NEG_INFINITY), 1.0);
        assert_eq!(normal_sf(0.0), 0.5);
        assert!(chi2_sf(1.0, 0.0).is_nan());
        assert!(chi2_sf(1.0, -1.0).is_nan());
        assert_eq!(chi2_sf(0.0, 3.0), 1.0);
        assert_eq!(chi2_sf(-2.0, 3.0), 1.0);
        assert_eq!(chi2_sf(f64::INFINITY, 3.0), 0.0);
        assert_eq!(kolmogorov_sf(0.0), 1.0);
        assert_eq!(kolmogorov_sf(-1.0), 1.0);
        assert!(kolmogorov_sf(f64::NAN).is_nan());
        assert_eq!(kolmogorov_sf(40.0), 0.0);
    }

    #[test]
    fn kolmogorov_branches_agree_at_the_cutover() {
        let below = kolmogorov_sf(KOLMOGOROV_CUTOVER - 1e-12);
        let above = kolmogorov_sf(KOLMOGOROV_CUTOVER);
        close(below, above, 1e-10);
    }
}
