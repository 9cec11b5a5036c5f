//! `linear-regression` plugin: appends `intercept + Σ coefficient · feature`.

use keel_sdk::{AlgoTransform, PluginDoc};

struct Doc;

impl PluginDoc for Doc {
    const NAME: &'static str = "linear-regression";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = DESCRIPTION;
    const SCHEMA: &'static str = SCHEMA;
}

keel_sdk::export_transform!(AlgoTransform<keel_algos::linear::LinearRegression, Doc>);

const DESCRIPTION: &str = "Appends the prediction of a linear regression model, intercept + sum of coefficient * feature, as an f64 column; null where any feature is null.";

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
