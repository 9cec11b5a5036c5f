//! Direct loss estimation (NannyML's DLE) for regression: how wrong is the
//! model now, before the truth is known?
//!
//! On the labelled reference, a gradient-boosted tree model learns each row's
//! loss — |e|, e² and |e| / |truth| for `e = prediction − truth` — from the
//! row's features and the prediction itself. On new rows it predicts their
//! losses (clipped at 0), and a chunk's estimate is their mean: `mae` and
//! `mape` directly, `rmse` as the square root of the mean squared loss.
//! Sampling errors are NannyML's: `std(|e|) / √n` for MAE (and the same with
//! percentage errors for MAPE) and `√(std(e²)² / (4 n mean(e²)))` for RMSE,
//! with the standard deviations of the reference.
//!
//! The loss models are `forust-ml` gradient boosters (an XGBoost-style
//! booster in plain Rust, stable toolchain, no C++ to link) with settings
//! close to the LightGBM defaults NannyML uses: 100 rounds, learning rate
//! 0.1, depth 5 (≈ LightGBM's 31 leaves), at least 20 rows per leaf. The
//! trees differ from LightGBM's, so estimates agree with NannyML's in size
//! and direction, not to the digit (see the test against its golden values).
//! Built with the `dle` feature: the plugins, compiled to wasm, leave it out.

use super::Metrics;
use super::cbpe::{Estimate, as_reference, finish_named, input_error, reference_error};
use super::chunk::by_size;
use super::regression::{self, RegressionData};
use super::thresholds::{self, Bounds, STD_MULTIPLIER};
use crate::{AlgoError, Result};
use forust_ml::Matrix;
use forust_ml::gradientbooster::GradientBooster;
use forust_ml::objective::ObjectiveType;
use std::ops::Range;

/// The metrics DLE estimates, in report order.
pub const DLE_ESTIMATED: [&str; 3] = ["mae", "rmse", "mape"];

/// The loss models and the reference's sampling-error components.
pub struct Dle {
    absolute: GradientBooster,
    squared: GradientBooster,
    percentage: GradientBooster,
    /// Features per row the models were fitted with (the prediction not counted).
    features: usize,
    /// std(|e|), std(e²), mean(e²), std(|e| / |truth|) on the reference.
    components: [f64; 4],
    /// Bounds of each estimated metric, from the reference's chunks.
    pub bounds: Bounds,
}

impl std::fmt::Debug for Dle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dle")
            .field("features", &self.features)
            .field("components", &self.components)
            .field("bounds", &self.bounds)
            .finish_non_exhaustive()
    }
}

impl Dle {
    /// Fits the loss models on the labelled rows of `reference`, whose
    /// `features` are columns row-aligned with it (NaN = missing), with
    /// bounds from its chunks of `chunk_size` rows.
    pub fn fit(reference: &RegressionData, features: &[&[f64]], chunk_size: usize) -> Result<Dle> {
        reference.check().map_err(as_reference)?;
        check_features(features, reference.rows()).map_err(as_reference)?;
        let rows: Vec<usize> = (0..reference.rows())
            .filter(|&i| reference.labels[i].is_some())
            .collect();
        if rows.len() < 2 {
            return Err(reference_error(
                "DLE needs at least 2 labelled reference rows",
            ));
        }
        let matrix = columns(features, reference.predictions, &rows);
        let x = Matrix::new(&matrix, rows.len(), features.len() + 1);
        let losses = Losses::of(reference, &rows);
        let chunks: Vec<Metrics> = by_size(reference.rows(), chunk_size)?
            .iter()
            .map(|c| regression::realized(reference, c.range()).metrics)
            .collect();
        Ok(Dle {
            absolute: booster(&x, &losses.absolute)?,
            squared: booster(&x, &losses.squared)?,
            percentage: booster(&x, &losses.percentage)?,
            features: features.len(),
            components: losses.components(),
            bounds: thresholds::from_reference(&chunks, &DLE_ESTIMATED, STD_MULTIPLIER),
        })
    }

    /// Estimates of the chunk `rows` of `data` with its `features` (labels
    /// are not used).
    pub fn estimate(
        &self,
        data: &RegressionData,
        features: &[&[f64]],
        rows: Range<usize>,
    ) -> Result<Estimate> {
        if features.len() != self.features {
            return Err(input_error(
                "features",
                format!(
                    "{} feature columns, the reference had {}",
                    features.len(),
                    self.features
                ),
            ));
        }
        check_features(features, data.rows())?;
        let rows: Vec<usize> = rows.filter(|&i| i < data.rows()).collect();
        let n = rows.len() as f64;
        if rows.is_empty() {
            return Ok(finish_named(&DLE_ESTIMATED, &self.bounds, &[], &[], 0.0));
        }
        let matrix = columns(features, data.predictions, &rows);
        let x = Matrix::new(&matrix, rows.len(), features.len() + 1);
        let mean =
            |b: &GradientBooster| b.predict(&x, false).iter().map(|v| v.max(0.0)).sum::<f64>() / n;
        let [abs_std, sq_std, sq_mean, pct_std] = self.components;
        let values = [
            mean(&self.absolute),
            mean(&self.squared).sqrt(),
            mean(&self.percentage),
        ];
        let sigma = [
            abs_std / n.sqrt(),
            (sq_std.powi(2) / (4.0 * n * sq_mean)).sqrt(),
            pct_std / n.sqrt(),
        ];
        Ok(finish_named(
            &DLE_ESTIMATED,
            &self.bounds,
            &values,
            &sigma,
            n,
        ))
    }
}

/// The observed losses of the labelled reference rows.
struct Losses {
    absolute: Vec<f64>,
    squared: Vec<f64>,
    percentage: Vec<f64>,
}

impl Losses {
    fn of(data: &RegressionData, rows: &[usize]) -> Losses {
        let mut l = Losses {
            absolute: Vec::with_capacity(rows.len()),
            squared: Vec::with_capacity(rows.len()),
            percentage: Vec::with_capacity(rows.len()),
        };
        for &i in rows {
            let truth = data.labels[i].unwrap_or(f64::NAN);
            let e = data.predictions[i] - truth;
            l.absolute.push(e.abs());
            l.squared.push(e * e);
            // scikit-learn's MAPE guards a zero truth with machine epsilon.
            l.percentage.push(e.abs() / truth.abs().max(f64::EPSILON));
        }
        l
    }

    fn components(&self) -> [f64; 4] {
        [
            std(&self.absolute),
            std(&self.squared),
            mean(&self.squared),
            std(&self.percentage),
        ]
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Population standard deviation (numpy's default, as NannyML uses it).
fn std(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

/// The column-major matrix of `rows`: each feature, then the prediction.
fn columns(features: &[&[f64]], predictions: &[f64], rows: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity((features.len() + 1) * rows.len());
    for column in features.iter().copied().chain([predictions]) {
        out.extend(rows.iter().map(|&i| column[i]));
    }
    out
}

fn check_features(features: &[&[f64]], rows: usize) -> Result<()> {
    match features.iter().position(|c| c.len() != rows) {
        None => Ok(()),
        Some(at) => Err(input_error(
            "features",
            format!(
                "feature column {at} has {} rows, the data {rows}",
                features[at].len()
            ),
        )),
    }
}

/// A loss model: squared loss, NannyML-like LightGBM defaults, one thread
/// (the caller already runs chunks and files in parallel where it wants to).
fn booster(x: &Matrix<f64>, y: &[f64]) -> Result<GradientBooster> {
    let mut b = GradientBooster::default()
        .set_objective_type(ObjectiveType::SquaredLoss)
        .set_iterations(100)
        .set_learning_rate(0.1)
        .set_max_depth(5)
        .set_min_leaf_weight(20.0)
        .set_parallel(false)
        .set_seed(0);
    let weights = vec![1.0; y.len()];
    b.fit(x, y, &weights, None)
        .map_err(|e| AlgoError::Reference {
            column: None,
            message: format!("fitting the DLE loss model: {e}"),
        })?;
    Ok(b)
}
