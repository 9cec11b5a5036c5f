//! KernelSHAP as `shap.KernelExplainer` computes it (shap's
//! `_kernel.py`): the Shapley kernel's weight per subset size, subset sizes
//! enumerated whole (each coalition with its complement) from the smallest
//! while the budget covers their expected share, the remaining budget drawn
//! at random — size by the remaining weights, members by a random
//! permutation, each draw with its complement, repeats adding weight instead
//! of a row — and the weighted least squares with the last feature
//! eliminated so the values add up to `link(prediction) − base_value`.
//! The generator is seeded, so the same seed gives the same values; it is
//! not numpy's, so sampled runs differ from shap's draw for draw (runs that
//! enumerate every coalition agree with shap exactly).

use super::rng::Rng;
use super::{Explanation, Method, Options, values};
use crate::AlgoError;
use std::collections::HashMap;

/// shap's default budget: `2M + 2048`, capped at the `2^M − 2` coalitions
/// there are (neither empty nor full).
fn budget(features: usize, nsamples: Option<usize>) -> usize {
    let wanted = nsamples.unwrap_or(2 * features + 2048);
    if features < 31 {
        wanted.min((1usize << features) - 2)
    } else {
        wanted
    }
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// The coalitions to evaluate with their kernel weights.
#[derive(Default)]
struct Samples {
    masks: Vec<Vec<bool>>,
    weights: Vec<f64>,
}

impl Samples {
    fn add(&mut self, mask: Vec<bool>, weight: f64) {
        self.masks.push(mask);
        self.weights.push(weight);
    }
}

/// Every `k`-subset of `0..n`, in lexicographic order (as `itertools.combinations`).
fn combinations(n: usize, k: usize, mut each: impl FnMut(&[usize])) {
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        each(&idx);
        let Some(i) = (0..k).rev().find(|&i| idx[i] != i + n - k) else {
            return;
        };
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// shap's coalition choice: whole subset sizes first, then sampling.
fn sample(m: usize, nsamples: usize, rng: &mut Rng) -> Samples {
    let num_subset_sizes = (m - 1).div_ceil(2);
    let num_paired = (m - 1) / 2;
    let mut weight: Vec<f64> = (1..=num_subset_sizes)
        .map(|i| (m as f64 - 1.0) / (i as f64 * (m - i) as f64))
        .collect();
    for w in weight.iter_mut().take(num_paired) {
        *w *= 2.0;
    }
    let total: f64 = weight.iter().sum();
    weight.iter_mut().for_each(|w| *w /= total);

    let mut out = Samples::default();
    let mut left = nsamples as f64;
    let mut remaining = weight.clone();
    let mut full_sizes = 0;
    for size in 1..=num_subset_sizes {
        let paired = size <= num_paired;
        let subsets = binomial(m, size) * if paired { 2.0 } else { 1.0 };
        if left * remaining[size - 1] / subsets < 1.0 - 1e-8 {
            break;
        }
        full_sizes += 1;
        left -= subsets;
        if remaining[size - 1] < 1.0 {
            let r = 1.0 - remaining[size - 1];
            remaining.iter_mut().for_each(|w| *w /= r);
        }
        let w = weight[size - 1] / binomial(m, size) / if paired { 2.0 } else { 1.0 };
        combinations(m, size, |inds| {
            let mut mask = vec![false; m];
            inds.iter().for_each(|&i| mask[i] = true);
            let complement: Vec<bool> = mask.iter().map(|b| !b).collect();
            out.add(mask, w);
            if paired {
                out.add(complement, w);
            }
        });
    }
    if full_sizes == num_subset_sizes {
        return out;
    }
    let fixed = out.masks.len();
    let mut samples_left = nsamples - fixed;
    let mut p = weight.clone();
    for w in p.iter_mut().take(num_paired) {
        *w /= 2.0;
    }
    let p = p[full_sizes..].to_vec();
    let sum: f64 = p.iter().sum();
    let p: Vec<f64> = p.iter().map(|w| w / sum).collect();
    let mut seen: HashMap<Vec<bool>, usize> = HashMap::new();
    let mut draws = 4 * samples_left;
    while samples_left > 0 && draws > 0 {
        draws -= 1;
        let size = rng.choose(&p) + full_sizes + 1;
        let mut order: Vec<usize> = (0..m).collect();
        for i in 0..size {
            let j = i + rng.below(m - i);
            order.swap(i, j);
        }
        let mut mask = vec![false; m];
        order[..size].iter().for_each(|&i| mask[i] = true);
        let at = seen.get(&mask).copied();
        match at {
            Some(k) => {
                if let Some(w) = out.weights.get_mut(k) {
                    *w += 1.0;
                }
            }
            None => {
                seen.insert(mask.clone(), out.masks.len());
                samples_left -= 1;
                out.add(mask.clone(), 1.0);
            }
        }
        if samples_left > 0 && size <= num_paired {
            let complement: Vec<bool> = mask.iter().map(|b| !b).collect();
            match at {
                Some(k) => {
                    if let Some(w) = out.weights.get_mut(k + 1) {
                        *w += 1.0;
                    }
                }
                None => {
                    samples_left -= 1;
                    out.add(complement, 1.0);
                }
            }
        }
    }
    let weight_left: f64 = weight[full_sizes..].iter().sum();
    let drawn: f64 = out.weights[fixed..].iter().sum();
    out.weights[fixed..]
        .iter_mut()
        .for_each(|w| *w *= weight_left / drawn);
    out
}

/// Solves `a x = b` (`a` square, row-major) by Gaussian elimination with
/// partial pivoting; `None` when `a` is singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let (upper, lower) = a.split_at_mut(row);
            let (pivot_row, target) = (&upper[col], &mut lower[0]);
            let f = target[col] / pivot_row[col];
            if f == 0.0 {
                continue;
            }
            for (t, p) in target[col..].iter_mut().zip(&pivot_row[col..]) {
                *t -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

/// The constrained weighted least squares: the last feature's value is
/// `total − Σ` the others, so it is eliminated and the rest fitted.
fn fit(samples: &Samples, v: &[f64], base: f64, total: f64, m: usize) -> Option<Vec<f64>> {
    let last = m - 1;
    let mut a = vec![vec![0.0; last]; last];
    let mut b = vec![0.0; last];
    let mut x = vec![0.0; last];
    for ((mask, w), vs) in samples.masks.iter().zip(&samples.weights).zip(v) {
        let z_last = f64::from(u8::from(mask[last]));
        for (xi, zi) in x.iter_mut().zip(mask) {
            *xi = f64::from(u8::from(*zi)) - z_last;
        }
        let y = vs - base - z_last * total;
        for i in 0..last {
            let wx = w * x[i];
            if wx == 0.0 {
                continue;
            }
            for j in 0..last {
                a[i][j] += wx * x[j];
            }
            b[i] += wx * y;
        }
    }
    let mut phi = solve(a, b)?;
    let rest = total - phi.iter().sum::<f64>();
    phi.push(rest);
    Some(phi)
}

pub(super) fn explain<E: From<AlgoError>>(
    features: usize,
    background: usize,
    options: &Options,
    evaluate: impl FnOnce(&[Vec<bool>]) -> Result<Vec<f64>, E>,
) -> Result<Explanation, E> {
    let m = features;
    let nsamples = budget(m, options.nsamples);
    let samples = if m > 1 {
        sample(m, nsamples, &mut Rng(options.seed))
    } else {
        Samples::default()
    };
    // The empty and the full coalition first: base value and prediction.
    let mut masks = vec![vec![false; m], vec![true; m]];
    masks.extend(samples.masks.iter().cloned());
    let outputs = evaluate(&masks)?;
    let v = values(&outputs, masks.len(), background, options.link)?;
    let (base, full) = (v[0], v[1]);
    let shap = if m == 1 {
        vec![full - base]
    } else {
        fit(&samples, &v[2..], base, full - base, m).ok_or_else(|| {
            AlgoError::config(
                "nsamples",
                format!(
                    "{} coalitions do not determine the values of {m} features; raise nsamples",
                    samples.masks.len()
                ),
            )
        })?
    };
    let prediction = outputs[background..2 * background].iter().sum::<f64>() / background as f64;
    Ok(Explanation {
        method: Method::Kernel,
        base_value: base,
        prediction,
        shap,
        coalitions: masks.len(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn small_budgets_enumerate_whole_sizes_with_complements() {
        // M = 4, all 14 coalitions: sizes 1 (paired with 3) and 2 (not paired).
        let s = sample(4, 14, &mut Rng(1));
        assert_eq!(s.masks.len(), 14);
        assert_eq!(s.masks[0], vec![true, false, false, false]);
        assert_eq!(s.masks[1], vec![false, true, true, true]);
        let total: f64 = s.weights.iter().sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
    }

    #[test]
    fn sampling_is_reproducible_and_weights_sum_to_one() {
        let a = sample(12, 300, &mut Rng(7));
        let b = sample(12, 300, &mut Rng(7));
        assert_eq!(a.masks, b.masks);
        assert_eq!(a.masks.len(), 300);
        let total: f64 = a.weights.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        let c = sample(12, 300, &mut Rng(8));
        assert_ne!(a.masks, c.masks);
    }
}
