//! `standard-scaler` plugin: standardises numeric columns to z-scores with the
//! reference's mean and population standard deviation, or ones given in the config.

use keel_algos::scaler::{ScalerConfig, StandardScaler};
use keel_algos::{AlgoError, ErrorKind};
use keel_sdk::{Batch, Config, Error, Info, Result, Transform};

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "standard-scaler config",
  "type": "object",
  "properties": {
    "columns": {
      "description": "Numeric columns to standardise; each is replaced by an f64 column of the same name (nulls stay null).",
      "type": "array",
      "items": {"type": "string", "minLength": 1},
      "minItems": 1,
      "uniqueItems": true
    },
    "mean": {
      "description": "Means, one per column, in `columns` order; fitted from the reference when absent.",
      "type": "array",
      "items": {"type": "number"}
    },
    "std": {
      "description": "Standard deviations, one per column, in `columns` order; fitted from the reference (population std, 0 becomes 1) when absent.",
      "type": "array",
      "items": {"type": "number", "exclusiveMinimum": 0}
    }
  },
  "required": ["columns"],
  "additionalProperties": false
}"#;

struct Plugin(StandardScaler);

impl Transform for Plugin {
    fn info() -> Info {
        Info::new("standard-scaler", env!("CARGO_PKG_VERSION"), DESCRIPTION).schema(SCHEMA)
    }

    fn create(config: Config, reference: Option<Batch>) -> Result<Self> {
        StandardScaler::new(config.parse::<ScalerConfig>()?, reference.as_ref())
            .map(Plugin)
            .map_err(sdk_error)
    }

    fn process(&mut self, input: Batch) -> Result<Batch> {
        self.0.apply(input).map_err(sdk_error)
    }
}

const DESCRIPTION: &str = "Standardises numeric columns to z = (x - mean) / std, using the mean and population standard deviation (ddof 0) of the reference unless the config gives them.";

/// Maps the algorithm's error onto the contract's error codes.
fn sdk_error(e: AlgoError) -> Error {
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

keel_sdk::export_transform!(Plugin);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_a_json_object_schema() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        assert_eq!(schema["type"], "object");
        assert_eq!(Plugin::info().name, "standard-scaler");
    }

    #[test]
    fn fitting_needs_a_reference() {
        let err = Plugin::create(Config(r#"{"columns":["x"]}"#.into()), None)
            .err()
            .unwrap();
        assert_eq!(err.code, keel_sdk::ErrorCode::InvalidReference);
    }
}
