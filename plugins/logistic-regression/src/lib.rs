//! `logistic-regression` plugin: appends the probability of a logistic
//! regression model and, optionally, its thresholded label.

use keel_algos::linear::{LogisticConfig, LogisticRegression};
use keel_algos::{AlgoError, ErrorKind};
use keel_sdk::{Batch, Config, Error, Info, Result, Transform};

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "logistic-regression config",
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
      "description": "Name of the appended f64 probability column.",
      "type": "string",
      "minLength": 1
    },
    "label_output": {
      "description": "Name of an appended bool column, probability >= threshold.",
      "type": "string",
      "minLength": 1
    },
    "threshold": {
      "description": "Decision threshold of the label.",
      "type": "number",
      "minimum": 0,
      "maximum": 1,
      "default": 0.5
    }
  },
  "required": ["features", "coefficients", "intercept", "output"],
  "additionalProperties": false
}"#;

struct Plugin(LogisticRegression);

impl Transform for Plugin {
    fn info() -> Info {
        Info::new(
            "logistic-regression",
            env!("CARGO_PKG_VERSION"),
            DESCRIPTION,
        )
        .schema(SCHEMA)
    }

    fn create(config: Config, _reference: Option<Batch>) -> Result<Self> {
        LogisticRegression::new(config.parse::<LogisticConfig>()?)
            .map(Plugin)
            .map_err(sdk_error)
    }

    fn process(&mut self, input: Batch) -> Result<Batch> {
        self.0.apply(input).map_err(sdk_error)
    }
}

const DESCRIPTION: &str = "Appends the probability 1 / (1 + exp(-(intercept + sum of coefficient * feature))) as an f64 column and, optionally, the label probability >= threshold as a bool column; both null where any feature is null.";

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
        assert_eq!(Plugin::info().name, "logistic-regression");
    }
}
