//! Model performance: realized metrics once labels are known, and CBPE
//! estimates of classification metrics before they are, per chunk, per
//! segment and overall, with thresholds from a labelled reference.
//!
//! Inputs are columns, row-aligned: labels as `&[Option<_>]` (`None` = no
//! label yet; such rows count in `rows` but not in `labelled`), predictions
//! and scores as plain slices. Realized metrics use only labelled rows;
//! estimates use every row.
//!
//! | module | what it does |
//! | --- | --- |
//! | [`binary`] | realized binary metrics (scikit-learn's definitions) and the confusion matrix |
//! | [`multiclass`] | realized multiclass metrics (macro and weighted averages, one-vs-rest ROC AUC) |
//! | [`regression`] | realized regression metrics |
//! | [`chunk`] | chunking by size in order, grouping by segment value |
//! | [`calibration`] | isotonic regression (pool adjacent violators) and NannyML's "does calibration help" test |
//! | [`cbpe`] | confidence-based performance estimation (NannyML's CBPE) with sampling error |
//! | `dle` | direct loss estimation for regression (NannyML's DLE), `dle` feature |
//! | [`thresholds`] | bounds from the realized metric on reference chunks |
//! | [`report`] | the serialisable report and [`analyse`], which puts it all together |
//! | [`monitor`] | the `performance-monitor` plugin's algorithm: windows of batches judged as chunks |
//!
//! # Metric names
//!
//! - binary: [`BINARY_METRICS`], `accuracy precision recall f1 specificity
//!   roc_auc average_precision log_loss brier` (precision, recall, F1 and
//!   specificity of the positive class, `true`);
//! - multiclass: [`MULTICLASS_METRICS`], `accuracy`, `precision`, `recall`,
//!   `f1` (macro averages, as NannyML reports them), `precision_weighted`,
//!   `recall_weighted`, `f1_weighted`, `roc_auc` (one-vs-rest, macro) and
//!   `log_loss`;
//! - regression: [`REGRESSION_METRICS`], `mae rmse mape r2 mean_error
//!   max_error`.
//!
//! A metric that is undefined for its rows (ROC AUC with one class present,
//! any metric of a chunk with no labelled row) is `None` (JSON `null`),
//! never NaN and never a made-up value. Where scikit-learn answers a zero
//! division with 0 and a warning (`zero_division="warn"`, its default), so
//! does this module.

pub mod binary;
pub mod calibration;
pub mod cbpe;
pub mod chunk;
#[cfg(feature = "dle")]
pub mod dle;
pub mod monitor;
pub mod multiclass;
mod ranking;
pub mod regression;
pub mod report;
pub mod thresholds;

pub use binary::BinaryData;
pub use cbpe::{BinaryCbpe, CbpeOptions, Estimate, MulticlassCbpe};
pub use chunk::{ChunkSpan, by_size, segments};
pub use monitor::{PerformanceConfig, PerformanceMonitor};
pub use multiclass::MulticlassData;
pub use regression::RegressionData;
pub use report::{
    ChunkReport, Data, Fitted, Judged, Owned, PerformanceOptions, PerformanceReport, Realized,
    SegmentReport, Summary, analyse, judged,
};
pub use thresholds::Bounds;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Metric values by name; `None` where the metric is undefined for the rows.
pub type Metrics = BTreeMap<String, Option<f64>>;

/// The binary classification metrics, in report order.
pub const BINARY_METRICS: [&str; 9] = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "specificity",
    "roc_auc",
    "average_precision",
    "log_loss",
    "brier",
];

/// The multiclass classification metrics, in report order.
pub const MULTICLASS_METRICS: [&str; 9] = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "roc_auc",
    "log_loss",
];

/// The regression metrics, in report order.
pub const REGRESSION_METRICS: [&str; 6] = ["mae", "rmse", "mape", "r2", "mean_error", "max_error"];

/// What the model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Two classes; a score is the probability of the positive class.
    Binary,
    /// Three or more classes (two work too); one probability column per class.
    Multiclass,
    /// A numeric target.
    Regression,
}

impl Task {
    /// The metric names of this task, in report order.
    pub fn metrics(self) -> &'static [&'static str] {
        match self {
            Task::Binary => &BINARY_METRICS,
            Task::Multiclass => &MULTICLASS_METRICS,
            Task::Regression => &REGRESSION_METRICS,
        }
    }
}

/// The range a metric's values lie in, which bounds and confidence bands are
/// clipped to: `[0, 1]` for rates and areas, `[0, ∞)` for losses and
/// errors, `(-∞, 1]` for R², unbounded for the mean error.
pub fn metric_range(name: &str) -> (f64, f64) {
    match name {
        "log_loss" | "mae" | "rmse" | "mape" | "max_error" => (0.0, f64::INFINITY),
        "r2" => (f64::NEG_INFINITY, 1.0),
        "mean_error" => (f64::NEG_INFINITY, f64::INFINITY),
        _ => (0.0, 1.0),
    }
}

/// `a / b`, or 0 when `b` is 0: scikit-learn's `zero_division="warn"`.
pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

/// Puts `(name, value)` pairs into a [`Metrics`] map, NaN becoming `None`.
pub(crate) fn metrics_of(pairs: &[(&str, Option<f64>)]) -> Metrics {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.filter(|x| !x.is_nan())))
        .collect()
}
