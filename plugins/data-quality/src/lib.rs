//! `data-quality` plugin: checks every batch against a schema of per-column
//! expectations (type, range, null rate, category domain), either given as
//! the config (what `keel profile` prints) or inferred from the reference.

use keel_algos::quality::{DataQuality, Schema};
use keel_algos::rules;
use keel_sdk::{Batch, Config, Error, Finding, FindingExt, Info, Result, Severity, Validate};

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "data-quality config",
  "description": "A schema as `keel profile DATA` prints it. An empty config infers the schema from the pipeline's reference data as it arrives at this validator.",
  "type": "object",
  "properties": {
    "columns": {
      "description": "Expectations per column, checked in this order.",
      "type": "array",
      "minItems": 1,
      "items": {
        "type": "object",
        "properties": {
          "name": {"description": "The column's name.", "type": "string", "minLength": 1},
          "type": {
            "description": "The column's type; another type is a wrong-type error.",
            "enum": ["f64", "float", "float64", "double", "f32", "float32", "s64", "i64", "int", "int64", "integer", "bool", "boolean", "string", "str", "category", "text"]
          },
          "required": {"description": "A missing column is a missing-column error.", "type": "boolean", "default": true},
          "null_rate": {"description": "Share of nulls in the reference.", "type": "number", "minimum": 0, "maximum": 1, "default": 0},
          "max_null_rate": {
            "description": "Largest share of nulls the data may have: a batch significantly above it (one-sided binomial test, p < 0.01) is a null-rate warning; 0 makes every null an unexpected-null error. Default: 0 when null_rate is 0, else null_rate + 0.05.",
            "type": "number", "minimum": 0, "maximum": 1
          },
          "min": {"description": "Smallest value in the reference (numeric columns).", "type": "number"},
          "max": {"description": "Largest value in the reference (numeric columns).", "type": "number"},
          "range_slack": {
            "description": "Widens [min, max] by this share of max - min on each side. A value outside is an out-of-range warning, an error when more than max - min beyond or not finite.",
            "type": "number", "minimum": 0, "default": 0
          },
          "domain": {
            "description": "The values seen (string, bool and s64 columns, as text); another value is an unseen-category warning.",
            "type": "array", "items": {"type": "string"}, "minItems": 1
          },
          "min_domain_share": {
            "description": "Share of non-null values that must be in the domain: a batch significantly below it is a domain-share warning (with 1, any value outside).",
            "type": "number", "minimum": 0, "maximum": 1, "default": 1
          }
        },
        "required": ["name", "type"],
        "additionalProperties": false
      }
    }
  },
  "additionalProperties": false
}"#;

const DESCRIPTION: &str = "Checks batches against a schema inferred from reference data, as TensorFlow Data Validation does: type, observed range, null rate and category domain per column. Rules: missing-column, wrong-type (errors), null-rate, domain-share (batch warnings), unexpected-null (row error), out-of-range (row warning, error when far out or not finite), unseen-category (row warning). Config: the schema `keel profile` prints, or empty to infer it from the reference.";

struct Plugin(DataQuality);

impl Validate for Plugin {
    fn info() -> Info {
        Info::new("data-quality", env!("CARGO_PKG_VERSION"), DESCRIPTION).schema(SCHEMA)
    }

    fn create(config: Config, reference: Option<Batch>) -> Result<Self> {
        let value: serde_json::Value = config.parse()?;
        let schema = if value.as_object().is_some_and(|m| m.is_empty()) {
            None
        } else {
            Some(config.parse::<Schema>()?)
        };
        DataQuality::new(schema, reference.as_ref())
            .map(Plugin)
            .map_err(Error::from)
    }

    fn validate(&mut self, input: &Batch) -> Result<Vec<Finding>> {
        Ok(self.0.validate(input).into_iter().map(to_sdk).collect())
    }
}

fn to_sdk(f: rules::Finding) -> Finding {
    let severity = match f.severity {
        rules::Severity::Info => Severity::Info,
        rules::Severity::Warning => Severity::Warning,
        rules::Severity::Error => Severity::Error,
    };
    let mut out = keel_sdk::finding(f.rule, severity, f.message);
    if let Some(column) = &f.column {
        out = out.column(column);
    }
    if let Some(row) = f.row {
        out = out.row(row);
    }
    out
}

keel_sdk::export_validator!(Plugin);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keel_sdk::{Column, ColumnData, ErrorCode};

    fn reference() -> Batch {
        Batch::from_columns(vec![
            Column::new("x", ColumnData::F64(vec![1.0, 2.0, 3.0])),
            Column::new(
                "c",
                ColumnData::String(vec!["a".into(), "b".into(), "a".into()]),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn schema_is_a_json_object_schema() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        assert_eq!(schema["type"], "object");
        assert_eq!(Plugin::info().name, "data-quality");
    }

    #[test]
    fn empty_config_infers_from_the_reference() {
        let mut plugin = Plugin::create(Config("{}".into()), Some(reference()))
            .ok()
            .unwrap();
        let batch = Batch::from_columns(vec![
            Column::new("x", ColumnData::F64(vec![2.0, 3.5, 9.0])),
            Column::new(
                "c",
                ColumnData::String(vec!["a".into(), "z".into(), "b".into()]),
            ),
        ])
        .unwrap();
        let findings = plugin.validate(&batch).ok().unwrap();
        let got: Vec<_> = findings
            .iter()
            .map(|f| (f.rule.as_str(), f.column.as_deref(), f.row, f.severity))
            .collect();
        assert_eq!(
            got,
            [
                ("domain-share", Some("c"), None, Severity::Warning),
                ("out-of-range", Some("x"), Some(1), Severity::Warning),
                ("unseen-category", Some("c"), Some(1), Severity::Warning),
                ("out-of-range", Some("x"), Some(2), Severity::Error),
            ]
        );
        // Without a schema there is nothing to infer from.
        let err = Plugin::create(Config(String::new()), None).err().unwrap();
        assert_eq!(err.code, ErrorCode::InvalidReference);
    }

    #[test]
    fn a_given_schema_wins_and_bad_ones_name_the_key() {
        let config = Config(r#"{"columns":[{"name":"x","type":"f64","min":0,"max":1}]}"#.into());
        let mut plugin = Plugin::create(config, Some(reference())).ok().unwrap();
        let findings = plugin.validate(&reference()).ok().unwrap();
        assert_eq!(findings.len(), 2, "2 and 3 are above 1, 3 far above");
        assert_eq!(findings[1].severity, Severity::Error);
        let config = Config(r#"{"columns":[{"name":"x","type":"f64","min":2,"max":1}]}"#.into());
        let err = Plugin::create(config, None).err().unwrap();
        assert_eq!(err.code, ErrorCode::InvalidConfig);
        assert!(err.message.contains("`columns.x.min`"), "{}", err.message);
        let config = Config(r#"{"columns":[{"name":"x","type":"f64","maximum":1}]}"#.into());
        let err = Plugin::create(config, None).err().unwrap();
        assert_eq!(err.code, ErrorCode::InvalidConfig);
        assert!(
            err.message.contains("unknown field `maximum`"),
            "{}",
            err.message
        );
    }
}
