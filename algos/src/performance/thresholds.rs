//! Alert bounds from a labelled reference, as NannyML's
//! `StandardDeviationThreshold`: the realized metric on each reference
//! chunk, `mean ± multiplier · std` (population std, chunks where the metric
//! is undefined left out, as `nanmean`/`nanstd`), a bound at or beyond the
//! metric's range ([`super::metric_range`]) replaced by the range's end.
//! A value alerts when it is strictly below the lower or above the upper
//! bound.

use super::{Metrics, metric_range};
use std::collections::BTreeMap;

/// `[low, high]` per metric name; a metric without any defined reference
/// value has no entry.
pub type Bounds = BTreeMap<String, [f64; 2]>;

/// The default multiplier of the standard deviation (NannyML's 3).
pub const STD_MULTIPLIER: f64 = 3.0;

/// Bounds of every metric in `names` from its values on reference chunks.
pub fn from_reference(chunks: &[Metrics], names: &[&str], multiplier: f64) -> Bounds {
    let mut bounds = Bounds::new();
    for &name in names {
        let values: Vec<f64> = chunks
            .iter()
            .filter_map(|m| m.get(name).copied().flatten())
            .collect();
        if values.is_empty() {
            continue;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let (min, max) = metric_range(name);
        let low = mean - multiplier * std;
        let high = mean + multiplier * std;
        bounds.insert(
            name.to_owned(),
            [
                if low <= min { min } else { low },
                if high >= max { max } else { high },
            ],
        );
    }
    bounds
}

/// Whether `value` leaves `bounds`.
pub fn outside(bounds: [f64; 2], value: f64) -> bool {
    value < bounds[0] || value > bounds[1]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::performance::metrics_of;

    #[test]
    fn mean_plus_minus_three_std_clipped() {
        let chunks = [
            metrics_of(&[("f1", Some(0.9)), ("mae", Some(1.0))]),
            metrics_of(&[("f1", Some(1.0)), ("mae", Some(3.0))]),
            metrics_of(&[("f1", None), ("mae", None)]),
        ];
        let b = from_reference(&chunks, &["f1", "mae", "r2"], 3.0);
        let f1 = b["f1"];
        assert!((f1[0] - 0.8).abs() < 1e-12 && f1[1] == 1.0);
        assert_eq!(b["mae"], [0.0, 5.0]);
        assert!(!b.contains_key("r2"));
        assert!(outside(f1, 0.79) && !outside(f1, 1.0));
    }
}
