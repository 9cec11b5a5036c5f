//! Timings of the drift statistics at the sizes a monitor meets, for the
//! README. Ignored by default (timings are not assertions); run with
//! `cargo test --release -p keel-algos --test all stats_timing:: -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::best;
use keel_algos::stats::{self, KsMode};

/// Deterministic normal samples (xorshift64* and Box–Muller): no RNG crate needed.
fn normal(n: usize, seed: u64, shift: f64) -> Vec<f64> {
    let mut s = seed | 1;
    let mut uniform = || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        ((s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            shift + (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        })
        .collect()
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    stats::sort_values(&mut v);
    v
}

#[test]
#[ignore = "timing run; see the module doc"]
fn timings() {
    let a10k = sorted(normal(10_000, 1, 0.0));
    let b10k = sorted(normal(10_000, 2, 0.03));
    let (t, r) = best(5, || stats::ks_2samp(&a10k, &b10k, KsMode::Auto));
    println!(
        "ks_2samp exact, 10,000 vs 10,000:       {t:>10.2?}  D = {:.5}, p = {:.4e}",
        r.statistic, r.p_value
    );
    let b9999 = sorted(normal(9_999, 3, 0.03));
    let (t, r) = best(3, || stats::ks_2samp(&a10k, &b9999, KsMode::Auto));
    println!(
        "ks_2samp exact, 10,000 vs 9,999:        {t:>10.2?}  D = {:.5}, p = {:.4e}",
        r.statistic, r.p_value
    );

    let a1m = normal(1_000_000, 4, 0.0);
    let (t, _) = best(5, || {
        let mut v = a1m.clone();
        stats::sort_values(&mut v);
        v
    });
    let (t_copy, _) = best(5, || a1m.clone());
    println!(
        "sort_values, 1M values:                 {:>10.2?}  (clone alone {t_copy:.2?})",
        t
    );
    let (t, _) = best(5, || {
        let mut v = a1m.clone();
        v.sort_unstable_by(f64::total_cmp);
        v
    });
    println!("  vs sort_unstable_by(total_cmp), 1M:   {t:>10.2?}");

    let a1m = sorted(a1m);
    let b1m = sorted(normal(1_000_000, 5, 0.002));
    let (t, r) = best(5, || stats::ks_2samp(&a1m, &b1m, KsMode::Auto));
    println!(
        "ks_2samp asymptotic, 1M vs 1M (sorted): {t:>10.2?}  D = {:.5}, p = {:.4e}",
        r.statistic, r.p_value
    );
    let (t, w) = best(5, || stats::wasserstein(&a1m, &b1m));
    println!("wasserstein, 1M vs 1M (sorted):         {t:>10.2?}  W = {w:.6}");
    let (t, w) = best(5, || stats::wasserstein_normed(&a1m, &b1m));
    println!("wasserstein_normed, 1M vs 1M (sorted):  {t:>10.2?}  W/std = {w:.6}");
}
