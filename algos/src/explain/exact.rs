//! Exact Shapley values: every coalition, weighed by `|S|! (M − |S| − 1)! / M!`.

use super::{Explanation, Link, Method, values};
use crate::AlgoError;

/// The mask of coalition `s` (bit `i` set = feature `i` kept from the row).
fn mask(s: usize, features: usize) -> Vec<bool> {
    (0..features).map(|i| s >> i & 1 == 1).collect()
}

/// `w[k] = k! (M − k − 1)! / M!` for `k = 0 … M − 1`.
fn weights(features: usize) -> Vec<f64> {
    let m = features as f64;
    // w[0] = 1/M; w[k+1] = w[k] · (k + 1) / (M − k − 1).
    let mut w = Vec::with_capacity(features);
    w.push(1.0 / m);
    for k in 0..features.saturating_sub(1) {
        w.push(w[k] * (k as f64 + 1.0) / (m - k as f64 - 1.0));
    }
    w
}

pub(super) fn explain<E: From<AlgoError>>(
    features: usize,
    background: usize,
    link: Link,
    evaluate: impl FnOnce(&[Vec<bool>]) -> Result<Vec<f64>, E>,
) -> Result<Explanation, E> {
    let count = 1usize << features;
    let masks: Vec<Vec<bool>> = (0..count).map(|s| mask(s, features)).collect();
    let outputs = evaluate(&masks)?;
    let v = values(&outputs, count, background, link)?;
    let w = weights(features);
    let mut shap = vec![0.0; features];
    for (s, vs) in v.iter().enumerate() {
        let size = s.count_ones() as usize;
        for (i, phi) in shap.iter_mut().enumerate() {
            if s >> i & 1 == 0 {
                *phi += w[size] * (v[s | 1 << i] - vs);
            }
        }
    }
    let full = &outputs[(count - 1) * background..];
    Ok(Explanation {
        method: Method::Exact,
        base_value: v[0],
        prediction: full.iter().sum::<f64>() / background as f64,
        shap,
        coalitions: count,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_the_shapley_weights() {
        // M = 4: 1/4, 1/12, 1/12, 1/4.
        let w = weights(4);
        let want = [0.25, 1.0 / 12.0, 1.0 / 12.0, 0.25];
        for (g, e) in w.iter().zip(want) {
            assert!((g - e).abs() < 1e-15, "{w:?}");
        }
        assert_eq!(weights(1), vec![1.0]);
    }
}
