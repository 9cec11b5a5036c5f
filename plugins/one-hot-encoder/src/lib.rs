//! `one-hot-encoder` plugin: replaces categorical columns by one 0/1 column
//! per category, with categories from the config or the reference.

use keel_sdk::{AlgoTransform, PluginDoc};

struct Doc;

impl PluginDoc for Doc {
    const NAME: &'static str = "one-hot-encoder";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = DESCRIPTION;
    const SCHEMA: &'static str = SCHEMA;
}

keel_sdk::export_transform!(AlgoTransform<keel_algos::encoders::OneHotEncoder, Doc>);

const DESCRIPTION: &str = "Encodes categorical columns as one f64 0/1 column per category, named <column>_<category> and appended at the end; categories are the reference's sorted values unless given. Null or unseen values encode as all zeros.";

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
