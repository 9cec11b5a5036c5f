//! `ordinal-encoder` plugin: replaces categorical columns by integer codes,
//! with categories from the config or the reference.

use keel_algos::encoders::{OrdinalConfig, OrdinalEncoder};
use keel_algos::{AlgoError, ErrorKind};
use keel_sdk::{Batch, Config, Error, Info, Result, Transform};

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "ordinal-encoder config",
  "type": "object",
  "properties": {
    "columns": {
      "description": "Categorical columns (string, bool or s64) to encode.",
      "type": "array",
      "items": {"type": "string", "minLength": 1},
      "minItems": 1,
      "uniqueItems": true
    },
    "categories": {
      "description": "Categories per column; a category's code is its position. Columns not listed get the distinct non-null values of the reference, sorted.",
      "type": "object",
      "additionalProperties": {
        "type": "array",
        "items": {"type": "string"},
        "minItems": 1,
        "uniqueItems": true
      }
    },
    "unknown_value": {
      "description": "Code of values that are not a known category; must not be the code of a category.",
      "type": "integer",
      "default": -1
    }
  },
  "required": ["columns"],
  "additionalProperties": false
}"#;

struct Plugin(OrdinalEncoder);

impl Transform for Plugin {
    fn info() -> Info {
        Info::new("ordinal-encoder", env!("CARGO_PKG_VERSION"), DESCRIPTION).schema(SCHEMA)
    }

    fn create(config: Config, reference: Option<Batch>) -> Result<Self> {
        OrdinalEncoder::new(config.parse::<OrdinalConfig>()?, reference.as_ref())
            .map(Plugin)
            .map_err(sdk_error)
    }

    fn process(&mut self, input: Batch) -> Result<Batch> {
        self.0.apply(input).map_err(sdk_error)
    }
}

const DESCRIPTION: &str = "Replaces categorical columns by s64 codes, the position of the value in the category list (the reference's sorted values unless given); nulls stay null and unseen values get unknown_value.";

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
        assert_eq!(Plugin::info().name, "ordinal-encoder");
    }

    #[test]
    fn fitting_needs_a_reference() {
        let err = Plugin::create(Config(r#"{"columns":["x"]}"#.into()), None)
            .err()
            .unwrap();
        assert_eq!(err.code, keel_sdk::ErrorCode::InvalidReference);
    }
}
