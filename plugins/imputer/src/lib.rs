//! `imputer` plugin: fills nulls with values fitted from the reference
//! (mean, median, most frequent) or a constant.

use keel_algos::imputer::{Imputer, ImputerConfig};
use keel_algos::{AlgoError, ErrorKind};
use keel_sdk::{Batch, Config, Error, Info, Result, Transform};

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "imputer config",
  "type": "object",
  "properties": {
    "strategy": {
      "description": "How fill values are chosen: mean and median (numeric columns), most_frequent (ties: smallest value) and constant (any column).",
      "enum": ["mean", "median", "most_frequent", "constant"]
    },
    "columns": {
      "description": "Columns whose nulls are filled.",
      "type": "array",
      "items": {"type": "string", "minLength": 1},
      "minItems": 1,
      "uniqueItems": true
    },
    "fill_value": {
      "description": "The fill value of strategy `constant`: a number for numeric columns, a string for string columns, a boolean for bool columns.",
      "type": ["number", "string", "boolean"]
    }
  },
  "required": ["strategy", "columns"],
  "additionalProperties": false,
  "if": {"properties": {"strategy": {"const": "constant"}}},
  "then": {"required": ["fill_value"]},
  "else": {"not": {"required": ["fill_value"]}}
}"#;

struct Plugin(Imputer);

impl Transform for Plugin {
    fn info() -> Info {
        Info::new("imputer", env!("CARGO_PKG_VERSION"), DESCRIPTION).schema(SCHEMA)
    }

    fn create(config: Config, reference: Option<Batch>) -> Result<Self> {
        Imputer::new(config.parse::<ImputerConfig>()?, reference.as_ref())
            .map(Plugin)
            .map_err(sdk_error)
    }

    fn process(&mut self, input: Batch) -> Result<Batch> {
        self.0.apply(input).map_err(sdk_error)
    }
}

const DESCRIPTION: &str = "Fills nulls (and NaN) per column with the mean, median or most frequent value of the reference (nulls ignored), or with a constant; numeric columns come out as f64.";

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
        assert_eq!(Plugin::info().name, "imputer");
    }

    #[test]
    fn fitting_needs_a_reference() {
        let err = Plugin::create(
            Config(r#"{"strategy":"median","columns":["x"]}"#.into()),
            None,
        )
        .err()
        .unwrap();
        assert_eq!(err.code, keel_sdk::ErrorCode::InvalidReference);
    }
}
