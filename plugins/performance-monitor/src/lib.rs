//! `performance-monitor` plugin: is the model still right? Realized metrics
//! over the labelled rows of each window, CBPE estimates over all of them
//! before labels come, each judged against bounds from a labelled reference
//! (`keel_algos::performance::monitor` has the algorithm and the report's
//! layout).

use keel_algos::performance::{PerformanceConfig, PerformanceMonitor};
use keel_sdk::{Batch, Config, Error, Info, Monitor, Report, Result};

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "performance-monitor config",
  "type": "object",
  "properties": {
    "task": {
      "description": "What the model does.",
      "enum": ["binary", "multiclass", "regression"]
    },
    "label_column": {
      "description": "Column of the truth. The reference must carry it; a batch that carries it (predictions joined with their labels) is judged on realized metrics over its labelled rows, a batch without it (predictions alone) on estimates.",
      "type": "string",
      "minLength": 1
    },
    "score_column": {
      "description": "Binary: column of the probability of the positive class (CBPE needs it).",
      "type": "string",
      "minLength": 1
    },
    "score_columns": {
      "description": "Multiclass: the probability column of each class, {class: column}.",
      "type": "object",
      "additionalProperties": {"type": "string", "minLength": 1},
      "minProperties": 2
    },
    "prediction_column": {
      "description": "Column of the model's prediction. Default: score >= 0.5 (binary), the most probable class (multiclass); required for regression.",
      "type": "string",
      "minLength": 1
    },
    "positive_label": {
      "description": "Binary: the label that is positive (compared as text: 1, 1.0 and \"1\" are the same). Default: true, else 1.",
      "type": ["string", "number", "boolean"]
    },
    "segment_columns": {
      "description": "Columns whose values are segments (e.g. region), each with realized metrics of its own.",
      "type": "array",
      "items": {"type": "string", "minLength": 1},
      "uniqueItems": true
    },
    "min_segment_labelled": {
      "description": "Labelled rows a segment needs in a window before its metrics are reported.",
      "type": "integer",
      "minimum": 0,
      "default": 30
    },
    "metrics": {
      "description": "The metrics reported. Default: all of the task's: accuracy precision recall f1 specificity roc_auc average_precision log_loss brier (binary); accuracy precision recall f1 precision_weighted recall_weighted f1_weighted roc_auc log_loss (multiclass); mae rmse mape r2 mean_error max_error (regression).",
      "type": "array",
      "items": {"type": "string"},
      "minItems": 1
    },
    "thresholds": {
      "description": "Fixed alert bounds per metric, {metric: [low, high]}, instead of the reference's mean ± 3 standard deviations.",
      "type": "object",
      "additionalProperties": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    },
    "reference_chunk_rows": {
      "description": "Rows per reference chunk for the bounds and the sampling error's scale: set it to the window's rows. Default: a tenth of the reference.",
      "type": "integer",
      "minimum": 1
    },
    "min_coverage": {
      "description": "Share of labelled rows from which a window is judged on its realized metrics rather than its estimates.",
      "type": "number",
      "minimum": 0,
      "maximum": 1,
      "default": 0.5
    }
  },
  "required": ["task", "label_column"],
  "additionalProperties": false
}"#;

struct Plugin(PerformanceMonitor);

impl Monitor for Plugin {
    fn info() -> Info {
        Info::new(
            "performance-monitor",
            env!("CARGO_PKG_VERSION"),
            DESCRIPTION,
        )
        .schema(SCHEMA)
    }

    fn create(config: Config, reference: Batch) -> Result<Self> {
        PerformanceMonitor::new(config.parse::<PerformanceConfig>()?, &reference)
            .map(Plugin)
            .map_err(Error::from)
    }

    fn observe(&mut self, input: &Batch) -> Result<()> {
        self.0.observe(input).map_err(Error::from)
    }

    fn report(&self) -> Result<Report> {
        self.0
            .report()
            .map(keel_sdk::algo_report)
            .map_err(Error::from)
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        self.0.snapshot().map_err(Error::from)
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        self.0.restore(state).map_err(Error::from)
    }
}

const DESCRIPTION: &str = "Watches a model's performance: realized metrics (as scikit-learn) over the labelled rows of each window, CBPE estimates (as NannyML) before labels come, each against bounds from a labelled reference (mean ± 3σ over its chunks, or fixed); alerts when the judged value leaves its bounds.";

keel_sdk::export_monitor!(Plugin);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keel_sdk::{Column, ColumnData, ErrorCode};

    fn batch(scores: &[f64], labels: Option<&[i64]>) -> Batch {
        let mut columns = vec![Column::new("score", ColumnData::F64(scores.to_vec()))];
        if let Some(l) = labels {
            columns.push(Column::new("y", ColumnData::S64(l.to_vec())));
        }
        Batch::from_columns(columns).unwrap()
    }

    #[test]
    fn schema_lists_every_config_key() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        assert_eq!(schema["type"], "object");
        let mut keys: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        keys.sort();
        let all = r#"{"task":"binary","label_column":"y","score_column":"s","score_columns":{},
            "prediction_column":"p","positive_label":1,"segment_columns":["r"],
            "min_segment_labelled":30,"metrics":["f1"],"thresholds":{"f1":[0.1,0.9]},
            "reference_chunk_rows":10,"min_coverage":0.5}"#;
        let parsed: serde_json::Value = serde_json::from_str(all).unwrap();
        let mut given: Vec<&String> = parsed.as_object().unwrap().keys().collect();
        given.sort();
        assert_eq!(given, keys);
        assert!(Config(all.into()).parse::<PerformanceConfig>().is_ok());
        assert_eq!(Plugin::info().name, "performance-monitor");
    }

    #[test]
    fn reference_without_labels_and_bad_config_are_clear_errors() {
        let cfg = Config(r#"{"task":"binary","label_column":"y","score_column":"score"}"#.into());
        let err = Plugin::create(cfg, batch(&[0.2, 0.8], None)).err().unwrap();
        assert_eq!(err.code, ErrorCode::InvalidReference);
        assert!(err.message.contains("label column `y`"), "{}", err.message);
        let cfg = Config(r#"{"task":"regression","label_column":"y"}"#.into());
        let err = Plugin::create(cfg, batch(&[0.2], Some(&[1])))
            .err()
            .unwrap();
        assert_eq!(err.code, ErrorCode::InvalidConfig);
        assert!(err.message.contains("prediction_column"), "{}", err.message);
        let cfg = Config(
            r#"{"task":"binary","label_column":"y","score_column":"score","metrics":["mae"]}"#
                .into(),
        );
        let err = Plugin::create(cfg, batch(&[0.2], Some(&[1])))
            .err()
            .unwrap();
        assert!(
            err.message.contains("`mae` is not a Binary metric"),
            "{}",
            err.message
        );
    }
}
