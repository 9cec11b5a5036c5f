//! `standard-scaler` plugin: standardises numeric columns to z-scores with the
//! reference's mean and population standard deviation, or ones given in the config.

use keel_sdk::{AlgoTransform, PluginDoc};

struct Doc;

impl PluginDoc for Doc {
    const NAME: &'static str = "standard-scaler";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = DESCRIPTION;
    const SCHEMA: &'static str = SCHEMA;
}

keel_sdk::export_transform!(AlgoTransform<keel_algos::scaler::StandardScaler, Doc>);

const DESCRIPTION: &str = "Standardises numeric columns to z = (x - mean) / std, using the mean and population standard deviation (ddof 0) of the reference unless the config gives them.";

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
