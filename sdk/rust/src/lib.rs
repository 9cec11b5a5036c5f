//! `keel-sdk`: write Keel plugins in Rust without touching generated bindings.
//!
//! A plugin is a type implementing one of [`Transform`], [`Validate`] or
//! [`Monitor`], exported with the matching macro. Data arrives as a
//! [`Batch`] of typed columns (the same type the host uses), so the
//! algorithm can be tested natively with `cargo test`.
//!
//! ```no_run
//! use keel_sdk::{Batch, Column, ColumnData, Config, Info, Result, Transform};
//!
//! #[derive(serde::Deserialize)]
//! struct Cfg { column: String, factor: f64 }
//!
//! struct Scale(Cfg);
//!
//! impl Transform for Scale {
//!     fn info() -> Info {
//!         Info::new("scale", env!("CARGO_PKG_VERSION"), "Multiplies a column by a factor.")
//!     }
//!     fn create(config: Config, _reference: Option<Batch>) -> Result<Self> {
//!         Ok(Scale(config.parse()?))
//!     }
//!     fn process(&mut self, mut input: Batch) -> Result<Batch> {
//!         let col = input.require(&self.0.column)?;
//!         let values = col.numeric()?.iter().map(|x| x * self.0.factor).collect();
//!         let scaled = Column { data: ColumnData::F64(values), ..col.clone() };
//!         input.set(scaled)?;
//!         Ok(input)
//!     }
//! }
//! keel_sdk::export_transform!(Scale);
//! # fn main() {}
//! ```

pub use keel_data::{Batch, Column, ColumnData, DataError, DataType, Value};

mod convert;
pub mod log;

#[doc(hidden)]
pub mod bindings {
    //! Generated bindings, one crate per world; they share `types` and `host`.
    pub use keel_sdk_monitor as monitor;
    pub use keel_sdk_transform as transform;
    pub use keel_sdk_validator as validator;
}

use bindings::transform::keel::plugin::types as wit;
pub use wit::{ErrorCode, Finding, Metric, Report, Severity};

#[doc(hidden)]
pub mod adapters;

/// What a plugin says about itself (the `metadata` interface).
#[derive(Debug, Clone)]
pub struct Info {
    pub name: String,
    pub version: String,
    pub description: String,
    /// JSON Schema of the configuration, as a JSON document.
    pub config_schema: String,
    /// A transform that runs graphs through `wasi:nn` reports kind `model`.
    pub model: bool,
}

impl Info {
    /// Name, version (use `env!("CARGO_PKG_VERSION")`) and description; schema `{}`.
    pub fn new(name: &str, version: &str, description: &str) -> Info {
        Info {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            config_schema: "{}".into(),
            model: false,
        }
    }

    /// Marks a transform as a model plugin (it imports `wasi:nn`; the
    /// `model-plugin` world): it reports kind `model`.
    pub fn model(mut self) -> Info {
        self.model = true;
        self
    }

    /// Sets the JSON Schema of the configuration.
    pub fn schema(mut self, schema: &str) -> Info {
        self.config_schema = schema.into();
        self
    }
}

/// The error a plugin returns: an ordinary outcome the host records, not a crash.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub column: Option<String>,
}

impl Error {
    fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            column: None,
        }
    }
    /// The configuration is wrong.
    pub fn config(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidConfig, message)
    }
    /// The input batch is unusable.
    pub fn input(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidInput, message)
    }
    /// The reference batch is unusable.
    pub fn reference(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidReference, message)
    }
    /// A snapshot cannot be restored.
    pub fn state(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidState, message)
    }
    /// Anything else.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::Internal, message)
    }
    /// Names the column concerned.
    pub fn in_column(mut self, column: impl Into<String>) -> Error {
        self.column = Some(column.into());
        self
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<DataError> for Error {
    fn from(e: DataError) -> Error {
        let column = match &e {
            DataError::Ragged { column, .. }
            | DataError::RaggedValidity { column, .. }
            | DataError::DuplicateColumn { column }
            | DataError::MissingColumn { column }
            | DataError::TypeMismatch { column, .. }
            | DataError::NotNumeric { column, .. } => Some(column.clone()),
        };
        Error {
            code: ErrorCode::InvalidInput,
            message: e.to_string(),
            column,
        }
    }
}

#[cfg(feature = "algos")]
impl From<keel_algos::AlgoError> for Error {
    fn from(e: keel_algos::AlgoError) -> Error {
        use keel_algos::ErrorKind;
        let message = e.to_string();
        let error = match e.kind() {
            ErrorKind::Config => Error::config(message),
            ErrorKind::Input => Error::input(message),
            ErrorKind::Reference => Error::reference(message),
            ErrorKind::State => Error::state(message),
        };
        match e.column() {
            Some(column) => error.in_column(column),
            None => error,
        }
    }
}

/// A monitor's report from [`keel_algos`] as the WIT's: the drift and bias
/// monitors' `report()` are this conversion.
#[cfg(feature = "algos")]
pub fn algo_report(r: keel_algos::report::Report) -> Report {
    Report {
        rows: r.rows,
        alert: r.alert,
        metrics: r
            .metrics
            .into_iter()
            .map(|m| Metric {
                column: m.column,
                name: m.name,
                value: m.value,
                threshold: m.threshold,
                p_value: m.p_value,
                alert: m.alert,
            })
            .collect(),
        summary: r.summary,
    }
}

/// Name, description and config schema of a plugin built from a
/// [`keel_algos::TransformAlgo`] (see [`AlgoTransform`]).
#[cfg(feature = "algos")]
pub trait PluginDoc: 'static {
    const NAME: &'static str;
    /// The plugin crate's version: `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    const DESCRIPTION: &'static str;
    /// JSON Schema of the configuration.
    const SCHEMA: &'static str;
}

/// A [`Transform`] made of any [`keel_algos::TransformAlgo`]; first-party
/// transform plugins are `export_transform!(AlgoTransform<Algorithm, Doc>)`.
#[cfg(feature = "algos")]
pub struct AlgoTransform<A, D>(A, core::marker::PhantomData<D>);

#[cfg(feature = "algos")]
impl<A: keel_algos::TransformAlgo + 'static, D: PluginDoc> Transform for AlgoTransform<A, D> {
    fn info() -> Info {
        Info::new(D::NAME, D::VERSION, D::DESCRIPTION).schema(D::SCHEMA)
    }
    fn create(config: Config, reference: Option<Batch>) -> Result<Self> {
        let algo = A::build(config.parse()?, reference.as_ref())?;
        Ok(AlgoTransform(algo, core::marker::PhantomData))
    }
    fn process(&mut self, input: Batch) -> Result<Batch> {
        Ok(self.0.transform(input)?)
    }
}

/// Result of plugin calls.
pub type Result<T> = core::result::Result<T, Error>;

/// A plugin's configuration: the JSON document from the pipeline spec.
#[derive(Debug, Clone)]
pub struct Config(pub String);

impl Config {
    /// Deserialises the configuration; a failure becomes an `invalid-config`
    /// error quoting serde's message (which names the key).
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let text = if self.0.trim().is_empty() {
            "{}"
        } else {
            &self.0
        };
        serde_json::from_str(text).map_err(|e| Error::config(format!("invalid config: {e}")))
    }

    /// The raw JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A batch-to-batch step: preprocessing or a pure-wasm model.
pub trait Transform: Sized + 'static {
    /// Self-description.
    fn info() -> Info;
    /// Builds the step; fit parameters from `reference` when the step learns any.
    fn create(config: Config, reference: Option<Batch>) -> Result<Self>;
    /// Transforms one batch.
    fn process(&mut self, input: Batch) -> Result<Batch>;
}

/// A batch checker producing findings.
pub trait Validate: Sized + 'static {
    /// Self-description.
    fn info() -> Info;
    /// Builds the checker; rules may be inferred from `reference`.
    fn create(config: Config, reference: Option<Batch>) -> Result<Self>;
    /// Checks one batch; an empty list means clean.
    fn validate(&mut self, input: &Batch) -> Result<Vec<Finding>>;
}

/// A stateful observer comparing a stream with a reference.
pub trait Monitor: Sized + 'static {
    /// Self-description.
    fn info() -> Info;
    /// Builds the monitor against `reference`.
    fn create(config: Config, reference: Batch) -> Result<Self>;
    /// Accumulates one batch.
    fn observe(&mut self, input: &Batch) -> Result<()>;
    /// Reports on everything observed.
    fn report(&self) -> Result<Report>;
    /// Serialises the accumulated state.
    fn snapshot(&self) -> Result<Vec<u8>>;
    /// Restores state from [`Monitor::snapshot`].
    fn restore(&mut self, state: &[u8]) -> Result<()>;
}

/// A finding helper: `finding("range", Severity::Error, "x is 7, above 5").column("x").row(3)`.
pub fn finding(rule: &str, severity: Severity, message: impl Into<String>) -> Finding {
    Finding {
        rule: rule.into(),
        column: None,
        row: None,
        severity,
        message: message.into(),
    }
}

/// Builder-style setters for findings.
pub trait FindingExt {
    /// Names the column.
    fn column(self, column: &str) -> Finding;
    /// Names the row within the batch.
    fn row(self, row: usize) -> Finding;
}

impl FindingExt for Finding {
    fn column(mut self, column: &str) -> Finding {
        self.column = Some(column.into());
        self
    }
    fn row(mut self, row: usize) -> Finding {
        self.row = Some(u32::try_from(row).unwrap_or(u32::MAX));
        self
    }
}

/// Exports a [`Transform`] implementation as the component's `transform` world.
#[macro_export]
macro_rules! export_transform {
    ($t:ty) => {
        type __KeelComponent = $crate::adapters::TransformComponent<$t>;
        $crate::bindings::transform::export_world!(__KeelComponent with_types_in $crate::bindings::transform);
    };
}

/// Exports a [`Validate`] implementation as the component's `validator` world.
#[macro_export]
macro_rules! export_validator {
    ($t:ty) => {
        type __KeelComponent = $crate::adapters::ValidatorComponent<$t>;
        $crate::bindings::validator::export_world!(__KeelComponent with_types_in $crate::bindings::validator);
    };
}

/// Exports a [`Monitor`] implementation as the component's `monitor` world.
#[macro_export]
macro_rules! export_monitor {
    ($t:ty) => {
        type __KeelComponent = $crate::adapters::MonitorComponent<$t>;
        $crate::bindings::monitor::export_world!(__KeelComponent with_types_in $crate::bindings::monitor);
    };
}
