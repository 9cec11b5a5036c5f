//! `logistic-regression` plugin: appends the probability of a logistic
//! regression model and, optionally, its thresholded label.

use keel_sdk::{AlgoTransform, PluginDoc};

struct Doc;

impl PluginDoc for Doc {
    const NAME: &'static str = "logistic-regression";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = DESCRIPTION;
    const SCHEMA: &'static str = SCHEMA;
}

keel_sdk::export_transform!(AlgoTransform<keel_algos::linear::LogisticRegression, Doc>);

const DESCRIPTION: &str = "Appends the probability 1 / (1 + exp(-(intercept + sum of coefficient * feature))) as an f64 column and, optionally, the label probability >= threshold as a bool column; both null where any feature is null.";

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
