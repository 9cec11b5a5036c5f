//! `drift-monitor` plugin: per-column drift of the observed stream against the
//! reference (KS, chi-square, Z, PSI, Jensen–Shannon, Wasserstein, Hellinger,
//! L∞; chosen automatically or by config) and the dataset verdict.

use keel_algos::drift::{DriftConfig, DriftMonitor};
use keel_sdk::{Batch, Config, Error, Info, Monitor, Report, Result};

const SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "drift-monitor config",
  "type": "object",
  "$defs": {
    "method": {
      "enum": ["auto", "psi", "ks", "chisquare", "z", "jensenshannon", "wasserstein", "hellinger", "linf"]
    }
  },
  "properties": {
    "columns": {
      "description": "Columns to watch. Default: every column of the reference.",
      "type": "array",
      "items": {"type": "string", "minLength": 1},
      "minItems": 1,
      "uniqueItems": true
    },
    "method": {
      "description": "Method for every column. auto: KS (numeric) / chi-square or Z (categorical) for references up to 1000 rows, normalised Wasserstein (numeric) / Jensen-Shannon otherwise.",
      "$ref": "#/$defs/method",
      "default": "auto"
    },
    "threshold": {
      "description": "Threshold for every column: a p-value (tests drift when p <= threshold) or a distance (drifts when >= threshold). Default: 0.05 for tests, 0.1 for distances.",
      "type": "number",
      "minimum": 0
    },
    "column": {
      "description": "Per-column overrides of method and threshold.",
      "type": "object",
      "additionalProperties": {
        "type": "object",
        "properties": {
          "method": {"$ref": "#/$defs/method"},
          "threshold": {"type": "number", "minimum": 0}
        },
        "additionalProperties": false
      }
    },
    "drift_share": {
      "description": "Share of drifted columns at or above which the dataset drifts.",
      "type": "number",
      "minimum": 0,
      "maximum": 1,
      "default": 0.5
    },
    "bins": {
      "description": "Quantile bins of continuous numeric columns for binned methods (psi, chisquare, jensenshannon, hellinger, linf).",
      "type": "integer",
      "minimum": 2,
      "maximum": 1000,
      "default": 10
    },
    "js_base": {
      "description": "Logarithm base of the Jensen-Shannon distance (2 keeps it in 0-1).",
      "type": "number",
      "exclusiveMinimum": 1,
      "default": 2
    },
    "psi_epsilon": {
      "description": "Smallest bin proportion in PSI, so empty bins give a large but finite term.",
      "type": "number",
      "exclusiveMinimum": 0,
      "exclusiveMaximum": 1,
      "default": 0.0001
    },
    "histogram_bins": {
      "description": "Equal-width bins of numeric histograms in reports.",
      "type": "integer",
      "minimum": 2,
      "maximum": 1000,
      "default": 20
    }
  },
  "required": [],
  "additionalProperties": false
}"##;

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
        Ok(keel_sdk::algo_report(self.0.report()))
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        self.0.snapshot().map_err(Error::from)
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        self.0.restore(state).map_err(Error::from)
    }
}

const DESCRIPTION: &str = "Watches columns for drift against the reference with a statistic per column (KS, chi-square, Z, PSI, Jensen-Shannon, normalised Wasserstein, Hellinger, L-infinity), chosen automatically from the column type, distinct values and reference size, or by config; alerts when the share of drifted columns reaches drift_share.";

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
