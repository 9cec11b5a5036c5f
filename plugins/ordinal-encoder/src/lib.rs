//! `ordinal-encoder` plugin: replaces categorical columns by integer codes,
//! with categories from the config or the reference.

use keel_sdk::{AlgoTransform, PluginDoc};

struct Doc;

impl PluginDoc for Doc {
    const NAME: &'static str = "ordinal-encoder";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = DESCRIPTION;
    const SCHEMA: &'static str = SCHEMA;
}

keel_sdk::export_transform!(AlgoTransform<keel_algos::encoders::OrdinalEncoder, Doc>);

const DESCRIPTION: &str = "Replaces categorical columns by s64 codes, the position of the value in the category list (the reference's sorted values unless given); nulls stay null and unseen values get unknown_value.";

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
