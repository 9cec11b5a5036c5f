//! `one-hot-encoder` plugin: replaces categorical columns by one 0/1 column
//! per category, with categories from the config or the reference.

use keel_algos::encoders::{OneHotConfig, OneHotEncoder};
use keel_algos::{AlgoError, ErrorKind};
use keel_sdk::{Batch, Config, Error, Info, Result, Transform};

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "one-hot-encoder config",
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
      "description": "Categories per column, in output order. Columns not listed get the distinct non-null values of the reference, sorted.",
      "type": "object",
      "additionalProperties": {
        "type": "array",
        "items": {"type": "string"},
        "minItems": 1,
        "uniqueItems": true
      }
    },
    "drop_original": {
      "description": "Whether the encoded columns are removed from the output.",
      "type": "boolean",
      "default": true
    },
    "prefix_sep": {
      "description": "Separator between column name and category in output column names.",
      "type": "string",
      "default": "_"
    }
  },
  "required": ["columns"],
  "additionalProperties": false
}"#;

struct Plugin(OneHotEncoder);

impl Transform for Plugin {
    fn info() -> Info {
        Info::new("one-hot-encoder", env!("CARGO_PKG_VERSION"), DESCRIPTION).schema(SCHEMA)
    }

    fn create(config: Config, reference: Option<Batch>) -> Result<Self> {
        OneHotEncoder::new(config.parse::<OneHotConfig>()?, reference.as_ref())
            .map(Plugin)
            .map_err(sdk_error)
    }

    fn process(&mut self, input: Batch) -> Result<Batch> {
        self.0.apply(input).map_err(sdk_error)
    }
}

const DESCRIPTION: &str = "Encodes categorical columns as one f64 0/1 column per category, named <column>_<category> and appended at the end; categories are the reference's sorted values unless given. Null or unseen values encode as all zeros.";

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
        assert_eq!(Plugin::info().name, "one-hot-encoder");
    }

    #[test]
    fn fitting_needs_a_reference() {
        let err = Plugin::create(Config(r#"{"columns":["x"]}"#.into()), None)
            .err()
            .unwrap();
        assert_eq!(err.code, keel_sdk::ErrorCode::InvalidReference);
    }
}
