//! `bias-monitor` plugin: how each group of a sensitive attribute is
//! represented compared with the reference, and how its positive-prediction
//! rate compares with a privileged group's (disparate impact, parity).

use keel_algos::bias::{BiasConfig, BiasMonitor};
use keel_sdk::{Batch, Config, Error, Info, Monitor, Report, Result};

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "bias-monitor config",
  "type": "object",
  "properties": {
    "group": {
      "description": "Column of the sensitive attribute (string, bool or s64). Null values form their own group (share only, no rates).",
      "type": "string",
      "minLength": 1
    },
    "prediction": {
      "description": "Column of the prediction: a bool label (positive when true), a numeric score (positive when >= positive_threshold) or a string label (positive when equal to `positive`). Null and NaN predictions are left out of rates.",
      "type": "string",
      "minLength": 1
    },
    "positive_threshold": {
      "description": "A numeric prediction is positive when >= this. Numeric predictions only.",
      "type": "number",
      "default": 0.5
    },
    "positive": {
      "description": "The label that counts as positive. Required for string predictions, refused for others.",
      "type": "string"
    },
    "privileged": {
      "description": "The group the ratios compare with; must be a group of the reference. Default: the group with the highest positive rate in the observed data (among groups with at least min_group_rows rated rows).",
      "type": ["string", "boolean", "integer"]
    },
    "disparate_impact_min": {
      "description": "A group alerts when its positive rate / the privileged group's is below this (the four-fifths rule).",
      "type": "number",
      "minimum": 0,
      "default": 0.8
    },
    "parity_difference_max": {
      "description": "A group alerts when |its positive rate - the privileged group's| is above this.",
      "type": "number",
      "minimum": 0,
      "maximum": 1,
      "default": 0.1
    },
    "representation_max": {
      "description": "A group alerts when |its share of rows - its share in the reference| is above this. A group unseen in the reference always alerts.",
      "type": "number",
      "minimum": 0,
      "maximum": 1,
      "default": 0.1
    },
    "min_group_rows": {
      "description": "Rated rows a group (and the privileged group) needs before its disparate impact and parity are judged, and rows observed in all before shares are judged. Below it, metrics are reported without a threshold and never alert.",
      "type": "integer",
      "minimum": 0,
      "default": 30
    }
  },
  "required": ["group", "prediction"],
  "additionalProperties": false
}"#;

struct Plugin(BiasMonitor);

impl Monitor for Plugin {
    fn info() -> Info {
        Info::new("bias-monitor", env!("CARGO_PKG_VERSION"), DESCRIPTION).schema(SCHEMA)
    }

    fn create(config: Config, reference: Batch) -> Result<Self> {
        BiasMonitor::new(config.parse::<BiasConfig>()?, &reference)
            .map(Plugin)
            .map_err(Error::from)
    }

    fn observe(&mut self, input: &Batch) -> Result<()> {
        self.0.observe(input).map_err(Error::from)
    }

    fn report(&self) -> Result<Report> {
        Ok(keel_sdk::algo_report(self.0.report()))
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        self.0.snapshot().map_err(Error::from)
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        self.0.restore(state).map_err(Error::from)
    }
}

const DESCRIPTION: &str = "Watches a sensitive attribute for bias: each group's share of rows against the reference, and its positive-prediction rate against a privileged group's (disparate impact, four-fifths rule; statistical parity difference); alerts when any group crosses a threshold.";

keel_sdk::export_monitor!(Plugin);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keel_sdk::{Column, ColumnData, ErrorCode};

    fn batch(groups: &[&str], predictions: &[bool]) -> Batch {
        Batch::from_columns(vec![
            Column::new(
                "g",
                ColumnData::String(groups.iter().map(|s| s.to_string()).collect()),
            ),
            Column::new("p", ColumnData::Bool(predictions.to_vec())),
        ])
        .unwrap()
    }

    #[test]
    fn schema_is_a_json_object_schema_with_the_config_keys() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        assert_eq!(schema["type"], "object");
        assert_eq!(
            schema["required"],
            serde_json::json!(["group", "prediction"])
        );
        // Every key the config accepts is in the schema, and nothing else:
        // a config using all of them parses.
        let keys: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 9);
        let all = r#"{"group":"g","prediction":"p","positive_threshold":0.5,"positive":"y",
            "privileged":"A","disparate_impact_min":0.8,"parity_difference_max":0.1,
            "representation_max":0.1,"min_group_rows":30}"#;
        let parsed: serde_json::Value = serde_json::from_str(all).unwrap();
        let mut given: Vec<&String> = parsed.as_object().unwrap().keys().collect();
        given.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(given, keys);
        assert!(Config(all.into()).parse::<BiasConfig>().is_ok());
        assert_eq!(Plugin::info().name, "bias-monitor");
    }

    #[test]
    fn reports_and_refuses_foreign_state_and_bad_config() {
        let reference = batch(&["A", "B"], &[true, false]);
        let cfg = Config(r#"{"group":"g","prediction":"p","min_group_rows":1}"#.into());
        let mut plugin = Plugin::create(cfg, reference.clone()).ok().unwrap();
        plugin
            .observe(&batch(&["A", "A", "B", "B"], &[true, true, true, false]))
            .ok()
            .unwrap();
        let report = plugin.report().ok().unwrap();
        assert_eq!((report.rows, report.alert), (4, true));
        let di = report
            .metrics
            .iter()
            .find(|m| m.name == "disparate-impact")
            .unwrap();
        assert_eq!((di.column.as_deref(), di.value), (Some("g=B"), 0.5));
        assert_eq!(report.metrics.last().unwrap().name, "groups-alerting");
        assert_eq!(
            plugin.restore(b"{}").err().unwrap().code,
            ErrorCode::InvalidState
        );
        let err = Plugin::create(Config(r#"{"group":"g"}"#.into()), reference.clone())
            .err()
            .unwrap();
        assert_eq!(err.code, ErrorCode::InvalidConfig);
        assert!(err.message.contains("prediction"), "{}", err.message);
        let err = Plugin::create(
            Config(r#"{"group":"g","prediction":"p","privileged":"Z"}"#.into()),
            reference.clone(),
        )
        .err()
        .unwrap();
        assert_eq!(err.code, ErrorCode::InvalidConfig);
        assert!(err.message.contains("`privileged`"), "{}", err.message);
        let err = Plugin::create(
            Config(r#"{"group":"sex","prediction":"p"}"#.into()),
            reference,
        )
        .err()
        .unwrap();
        assert_eq!(err.code, ErrorCode::InvalidReference);
    }
}
