//! `imputer` plugin: fills nulls with values fitted from the reference
//! (mean, median, most frequent) or a constant.

use keel_sdk::{AlgoTransform, PluginDoc};

struct Doc;

impl PluginDoc for Doc {
    const NAME: &'static str = "imputer";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = DESCRIPTION;
    const SCHEMA: &'static str = SCHEMA;
}

keel_sdk::export_transform!(AlgoTransform<keel_algos::imputer::Imputer, Doc>);

const DESCRIPTION: &str = "Fills nulls (and NaN) per column with the mean, median or most frequent value of the reference (nulls ignored), or with a constant; numeric columns come out as f64.";

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
