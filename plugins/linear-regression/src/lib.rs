//! `linear-regression` plugin: appends `intercept + Σ coefficient · feature`.

use keel_algos::linear::{LinearConfig, LinearRegression};
use keel_algos::{AlgoError, ErrorKind};
use keel_sdk::{Batch, Config, Error, Info, Result, Transform};

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "linear-regression config",
  "type": "object",
  "properties": {
    "features": {
      "description": "Numeric feature columns, in coefficient order.",
      "type": "array",
      "items": {"type": "string", "minLength": 1},
      "minItems": 1,
      "uniqueItems": true
    },
    "coefficients": {
      "description": "One coefficient per feature.",
      "type": "array",
      "items": {"type": "number"},
      "minItems": 1
    },
    "intercept": {"description": "The intercept.", "type": "number"},
    "output": {
      "description": "Name of the appended f64 prediction column.",
      "type": "string",
      "minLength": 1
    }
  },
  "required": ["features", "coefficients", "intercept", "output"],
  "additionalProperties": false
}"#;

struct Plugin(LinearRegression);

impl Transform for Plugin {
    fn info() -> Info {
        Info::new("linear-regression", env!("CARGO_PKG_VERSION"), DESCRIPTION).schema(SCHEMA)
    }

    fn create(config: Config, _reference: Option<Batch>) -> Result<Self> {
        LinearRegression::new(config.parse::<LinearConfig>()?)
            .map(Plugin)
            .map_err(sdk_error)
    }

    fn process(&mut self, input: Batch) -> Result<Batch> {
        self.0.apply(input).map_err(sdk_error)
    }
}

const DESCRIPTION: &str = "Appends the prediction of a linear regression model, intercept + sum of coefficient * feature, as an f64 column; null where any feature is null.";

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
        assert_eq!(Plugin::info().name, "linear-regression");
    }
}
