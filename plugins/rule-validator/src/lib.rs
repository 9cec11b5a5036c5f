//! `rule-validator` plugin: checks columns against type, range, not-null and
//! allowed-value rules, one finding per violation.

use keel_algos::rules::{self, RuleValidator, RulesConfig};
use keel_sdk::{Batch, Config, Error, Finding, FindingExt, Info, Result, Severity, Validate};

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "rule-validator config",
  "type": "object",
  "properties": {
    "columns": {
      "description": "Rules per column. A column listed with no rule must merely be present.",
      "type": "object",
      "additionalProperties": {
        "type": "object",
        "properties": {
          "type": {
            "description": "Required column type; `numeric` accepts f64, f32 and s64.",
            "enum": ["f64", "float", "float64", "double", "f32", "float32", "s64", "i64", "int", "int64", "integer", "bool", "boolean", "string", "str", "category", "text", "numeric"]
          },
          "min": {
            "description": "Smallest allowed value (numeric columns); NaN and infinities are reported as not-finite.",
            "type": "number"
          },
          "max": {
            "description": "Largest allowed value (numeric columns); NaN and infinities are reported as not-finite.",
            "type": "number"
          },
          "not_null": {"description": "Report null values.", "type": "boolean", "default": false},
          "allowed": {
            "description": "The allowed values (string columns).",
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1
          }
        },
        "additionalProperties": false
      }
    },
    "severity": {
      "description": "Severity of every finding. Default: warning for not-null, error for the other rules.",
      "enum": ["info", "warning", "error"]
    }
  },
  "required": ["columns"],
  "additionalProperties": false
}"#;

struct Plugin(RuleValidator);

impl Validate for Plugin {
    fn info() -> Info {
        Info::new("rule-validator", env!("CARGO_PKG_VERSION"), DESCRIPTION).schema(SCHEMA)
    }

    fn create(config: Config, _reference: Option<Batch>) -> Result<Self> {
        RuleValidator::new(config.parse::<RulesConfig>()?)
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

const DESCRIPTION: &str = "Checks columns against type, min/max, not-null and allowed-value rules and reports each violation as a finding (rules: missing-column, type, not-null, min, max, not-finite, allowed). not-null findings are warnings and the others errors, unless severity is set.";

keel_sdk::export_validator!(Plugin);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keel_sdk::{Column, ColumnData};

    #[test]
    fn schema_is_a_json_object_schema() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        assert_eq!(schema["type"], "object");
        assert_eq!(Plugin::info().name, "rule-validator");
    }

    #[test]
    fn findings_carry_rule_column_row_and_severity() {
        let config = Config(r#"{"columns":{"x":{"max":1}}}"#.into());
        let mut plugin = Plugin::create(config, None).ok().unwrap();
        let batch =
            Batch::from_columns(vec![Column::new("x", ColumnData::F64(vec![0.0, 2.0]))]).unwrap();
        let findings = plugin.validate(&batch).ok().unwrap();
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(
            (f.rule.as_str(), f.column.as_deref(), f.row),
            ("max", Some("x"), Some(1))
        );
        assert_eq!(f.severity, Severity::Error);
    }
}
