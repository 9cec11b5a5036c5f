//! Keel's pure ML algorithms: scaling, encoding, imputation, linear models,
//! rule validation, drift and performance monitoring over [`keel_data::Batch`]es.
//!
//! This crate has no wasm or host dependency on purpose: the same code is
//! compiled natively (tests, benchmarks) and into the first-party plugins in
//! `plugins/`, so comparing the two measures exactly what the sandbox costs.
//! Plugins are thin: they parse the config into the structs here, call
//! `new`/`apply`/`validate`/`observe`, and map [`AlgoError`] to the SDK error
//! by its [`ErrorKind`].
//!
//! # Modules
//!
//! | module | what it does |
//! | --- | --- |
//! | [`scaler`] | standard scaler, `z = (x - mean) / std` |
//! | [`encoders`] | one-hot and ordinal encoders for categorical columns |
//! | [`imputer`] | fills nulls with a fitted mean, median, most frequent value, or a constant |
//! | [`linear`] | linear and logistic regression scoring |
//! | [`rules`] | per-column rules (type, range, not-null, allowed values) producing findings |
//! | [`drift`] | a drift monitor: PSI for numeric columns, L∞ for categorical ones |
//! | [`bias`] | a bias monitor: group representation, disparate impact and parity of positive predictions |
//! | [`performance`] | realized metrics (scikit-learn's definitions) and CBPE estimates (NannyML's) of a model's performance, per chunk and segment |
//! | [`report`] | what a monitor reports: the one report and metric type of [`drift`] and [`bias`] |
//! | [`explain`] | Shapley values of a black-box model's output over its raw input columns (exact and KernelSHAP, as `shap`) |
//! | [`quality`] | a data-quality validator (type, range, null rate, domain) whose schema is inferred from reference data |
//!
//! # Conventions
//!
//! - **Configs** are `serde` structs with `deny_unknown_fields`, so a typo in
//!   a key is an error, not a silently ignored setting. Checks serde cannot
//!   express (lengths that must agree, `min <= max`, …) happen in each
//!   algorithm's `new` and return [`AlgoError::Config`] naming the key.
//! - **Fitting** happens once, from the reference batch given to `new`
//!   (the pipeline's reference as it arrives at that stage). Nulls are ignored
//!   when fitting. A parameter given in the config is used as is and never
//!   refitted. A fit that needs a reference without one is an
//!   [`AlgoError::Reference`].
//! - **Nulls** are the validity mask (`false` = null), never NaN. Where a
//!   transform keeps a null, the value slot holds `0` (or `""`, `false`), as
//!   the WIT contract says placeholders should. The imputer is the one place
//!   that also treats NaN as missing, as scikit-learn's `SimpleImputer` does.
//! - **Numeric inputs** may be `f64`, `f32` or `s64`; numeric outputs are `f64`.
//! - **Scaler**: population standard deviation (ddof = 0), as scikit-learn's
//!   `StandardScaler`; a standard deviation of 0 becomes 1 so constant columns
//!   map to 0 instead of NaN.
//! - **Imputer**: the median of an even count is the mean of the two middle
//!   values; ties for the most frequent value go to the smallest value (as
//!   scikit-learn).
//! - **Encoders**: categories fitted from the reference are the distinct
//!   non-null values in ascending order (strings by code point, integers
//!   numerically, `false` before `true`). One-hot output columns are named
//!   `<column><prefix_sep><category>`, appended after the other columns;
//!   a null or unseen value encodes as all zeros.
//! - **Logistic regression** uses the numerically stable sigmoid; the label is
//!   `probability >= threshold`.
//! - **Drift**: numeric columns are cut at the reference's `1/bins …
//!   (bins-1)/bins` quantiles (linear interpolation, as `numpy.quantile`'s
//!   default), with equal cut points merged; bins are right-closed, so a value
//!   equal to a cut point falls in the lower bin, and the outer bins are open.
//!   Bin proportions below [`drift::EPSILON`] (1e-4), empty bins in
//!   particular, are raised to it before computing
//!   `PSI = Σ (cur − ref) · ln(cur / ref)`. Categorical (string, bool) columns
//!   use L∞, the largest absolute difference between category frequencies,
//!   over the union of reference and current categories. Nulls, NaN and ±∞ are
//!   left out of both statistics and reported as the column's `null-share`.
//!   A column drifts when its statistic is at or above its threshold; the
//!   dataset drifts when the share of drifted columns is at or above
//!   `drift_share`. These are the definitions `examples/penguins/prepare.py`
//!   uses.
//! - **Errors** never panic: every failure is an [`AlgoError`] whose message
//!   names the column, row or config key at fault.

pub mod bias;
pub mod drift;
pub mod encoders;
mod error;
pub mod explain;
pub mod imputer;
pub mod linear;
pub mod performance;
pub mod quality;
pub mod report;
pub mod rules;
pub mod scaler;
pub mod stats;
mod util;

pub use error::{AlgoError, ErrorKind};

/// A batch-to-batch algorithm built from a config and, when it fits
/// parameters, the reference data: the shape of every transform plugin, so
/// `keel_sdk::AlgoTransform` can export any of them without glue code.
pub trait TransformAlgo: Sized {
    /// The configuration, deserialised from the pipeline spec's JSON.
    type Config: serde::de::DeserializeOwned;
    /// Builds (and fits, where needed) the algorithm.
    fn build(config: Self::Config, reference: Option<&keel_data::Batch>) -> Result<Self>;
    /// Transforms one batch.
    fn transform(&self, batch: keel_data::Batch) -> Result<keel_data::Batch>;
}

macro_rules! fitted {
    ($t:ty, $c:ty) => {
        impl TransformAlgo for $t {
            type Config = $c;
            fn build(config: $c, reference: Option<&keel_data::Batch>) -> Result<Self> {
                <$t>::new(config, reference)
            }
            fn transform(&self, batch: keel_data::Batch) -> Result<keel_data::Batch> {
                self.apply(batch)
            }
        }
    };
}

macro_rules! unfitted {
    ($t:ty, $c:ty) => {
        impl TransformAlgo for $t {
            type Config = $c;
            fn build(config: $c, _reference: Option<&keel_data::Batch>) -> Result<Self> {
                <$t>::new(config)
            }
            fn transform(&self, batch: keel_data::Batch) -> Result<keel_data::Batch> {
                self.apply(batch)
            }
        }
    };
}

fitted!(scaler::StandardScaler, scaler::ScalerConfig);
fitted!(encoders::OneHotEncoder, encoders::OneHotConfig);
fitted!(encoders::OrdinalEncoder, encoders::OrdinalConfig);
fitted!(imputer::Imputer, imputer::ImputerConfig);
unfitted!(linear::LinearRegression, linear::LinearConfig);
unfitted!(linear::LogisticRegression, linear::LogisticConfig);

/// Result of the algorithms in this crate.
pub type Result<T> = core::result::Result<T, AlgoError>;
