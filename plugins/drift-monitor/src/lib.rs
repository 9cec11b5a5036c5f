//! `drift-monitor` plugin: PSI (numeric columns) and L∞ (categorical columns)
//! drift of the observed stream against the reference.

use keel_algos::drift::{self, DriftConfig, DriftMonitor};
use keel_sdk::{Batch, Config, Error, Info, Metric, Monitor, Report, Result};

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "drift-monitor config",
  "type": "object",
  "properties": {
    "columns": {
      "description": "Columns to watch. Default: every column of the reference.",
      "type": "array",
      "items": {"type": "string", "minLength": 1},
      "minItems": 1,
      "uniqueItems": true
    },
    "psi_threshold": {
      "description": "PSI at or above which a numeric column drifts.",
      "type": "number",
      "minimum": 0,
      "default": 0.2
    },
    "linf_threshold": {
      "description": "L-infinity distance at or above which a categorical column drifts.",
      "type": "number",
      "minimum": 0,
      "default": 0.1
    },
    "drift_share": {
      "description": "Share of drifted columns at or above which the dataset drifts.",
      "type": "number",
      "minimum": 0,
      "maximum": 1,
      "default": 0.5
    },
    "bins": {
      "description": "Number of quantile bins of numeric columns.",
      "type": "integer",
      "minimum": 2,
      "maximum": 1000,
      "default": 10
    }
  },
  "required": [],
  "additionalProperties": false
}"#;

struct Plugin(DriftMonitor);

impl Monitor for Plugin {
    fn info() -> Info {
        Info::new("drift-monitor", env!("CARGO_PKG_VERSION"), DESCRIPTION).schema(SCHEMA)
    }

    fn create(config: Config, reference: Batch) -> Result<Self> {
        DriftMonitor::new(config.parse::<DriftConfig>()?, &reference)
            .map(Plugin)
            .map_err(Error::from)
    }

    fn observe(&mut self, input: &Batch) -> Result<()> {
        self.0.observe(input).map_err(Error::from)
    }

    fn report(&self) -> Result<Report> {
        let drift::Report {
            rows,
            alert,
            metrics,
            summary,
        } = self.0.report();
        let metrics = metrics
            .into_iter()
            .map(|m| Metric {
                column: m.column,
                name: m.name,
                value: m.value,
                threshold: m.threshold,
                p_value: m.p_value,
                alert: m.alert,
            })
            .collect();
        Ok(Report {
            rows,
            alert,
            metrics,
            summary,
        })
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        self.0.snapshot().map_err(Error::from)
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        self.0.restore(state).map_err(Error::from)
    }
}

const DESCRIPTION: &str = "Watches columns for drift against the reference: PSI over the reference's quantile bins for numeric columns, L-infinity distance of category frequencies for string and bool columns; alerts when the share of drifted columns reaches drift_share.";

keel_sdk::export_monitor!(Plugin);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keel_sdk::{Column, ColumnData, ErrorCode};

    #[test]
    fn schema_is_a_json_object_schema() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        assert_eq!(schema["type"], "object");
        assert_eq!(Plugin::info().name, "drift-monitor");
    }

    #[test]
    fn reports_and_refuses_foreign_state() {
        let reference =
            Batch::from_columns(vec![Column::new("x", ColumnData::F64(vec![1.0, 2.0]))]).unwrap();
        let mut plugin = Plugin::create(Config(String::new()), reference.clone())
            .ok()
            .unwrap();
        plugin.observe(&reference).ok().unwrap();
        let report = plugin.report().ok().unwrap();
        assert_eq!((report.rows, report.alert), (2, false));
        assert_eq!(report.metrics.last().unwrap().name, "share-drifted");
        assert_eq!(
            plugin.restore(b"{}").err().unwrap().code,
            ErrorCode::InvalidState
        );
        let empty = Batch::from_columns(vec![Column::new("x", ColumnData::F64(vec![]))]).unwrap();
        let err = Plugin::create(Config(String::new()), empty).err().unwrap();
        assert_eq!(err.code, ErrorCode::InvalidReference);
    }
}
