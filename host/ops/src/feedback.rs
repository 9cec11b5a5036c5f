//! Labels in, joined rows out: which pipeline a batch of labels is about and
//! what its truths must look like (the task its performance monitors name),
//! recording them in the store's label chain, and the join of stored
//! predictions with their newest labels as a [`Batch`] — what `keel
//! performance --pipeline` analyses and what monitors with `feed = "labels"`
//! are fed. Shared by `keel feedback import` and the daemon's feedback endpoint.

use crate::record::{PredictionPlan, Task};
use keel_algos::performance::Metrics;
use keel_algos::performance::monitor::{PerformanceConfig, PerformanceMonitor};
use keel_data::{Batch, Column, ColumnData};
use keel_runtime::spec::PipelineSpec;
use keel_store::{NewLabel, Prediction, Store, StoreError, StoredLabel};
use std::collections::BTreeMap;
use std::path::Path;

/// Why labels could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("unknown pipeline `{0}`: it is not deployed and has no stored predictions")]
    UnknownPipeline(String),
    #[error("pipeline `{name}` has no version {version}")]
    UnknownVersion { name: String, version: String },
    #[error("the deployed spec of {name}@{version} does not parse: {message}")]
    Spec {
        name: String,
        version: String,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The pipeline (and version) labels are about, with what its predictions store.
#[derive(Debug, Clone)]
pub struct Target {
    pub pipeline: String,
    /// Labels match only this version's predictions, if given.
    pub version: Option<String>,
    /// From the named version, else the newest deployed one (default when
    /// the pipeline only ever ran from a spec file).
    pub plan: PredictionPlan,
}

impl Target {
    /// `P` or `P@V`: a deployed pipeline, or one with stored predictions.
    pub fn resolve(store: &Store, reference: &str) -> Result<Target, FeedbackError> {
        let (pipeline, version) = match reference.rsplit_once('@') {
            Some((p, v)) => (p, Some(v.to_owned())),
            None => (reference, None),
        };
        let mut deployed: Vec<_> = store
            .list_pipelines()?
            .into_iter()
            .filter(|r| r.name == pipeline)
            .collect();
        deployed.sort_by(|a, b| keel_store::compare_versions(&a.version, &b.version));
        let record = match &version {
            Some(v) => deployed.into_iter().find(|r| &r.version == v),
            None => deployed.pop(),
        };
        let plan = match &record {
            Some(r) => {
                let spec =
                    PipelineSpec::parse(&r.spec_toml, Path::new("pipeline.toml")).map_err(|e| {
                        FeedbackError::Spec {
                            name: r.name.clone(),
                            version: r.version.clone(),
                            message: e.to_string(),
                        }
                    })?;
                PredictionPlan::of(&spec)
            }
            None if store.has_predictions(pipeline)? => PredictionPlan::of(&default_spec(pipeline)),
            None => return Err(FeedbackError::UnknownPipeline(pipeline.to_owned())),
        };
        if let (None, Some(v)) = (&record, &version)
            && !has_version(store, pipeline, v)?
        {
            return Err(FeedbackError::UnknownVersion {
                name: pipeline.to_owned(),
                version: v.clone(),
            });
        }
        Ok(Target {
            pipeline: pipeline.to_owned(),
            version,
            plan,
        })
    }

    /// Checks a truth against the task and puts it in one form, so the same
    /// label sent as `1`, `1.0` or `"1"` from a CSV is a duplicate, not a
    /// correction: classes that are whole numbers become integers, regression
    /// targets floats. Returns why not, for the caller to name file, line and id.
    pub fn truth(&self, v: &serde_json::Value) -> Result<serde_json::Value, String> {
        use serde_json::Value as J;
        let task = self.plan.task;
        match (task, v) {
            (_, J::Null) => Err("the label is empty".into()),
            (_, J::Array(_) | J::Object(_)) => Err(format!("the label {v} is not a single value")),
            (Some(Task::Regression), J::Number(n)) => n
                .as_f64()
                .and_then(serde_json::Number::from_f64)
                .map(J::Number)
                .ok_or_else(|| format!("the label {v} is not a finite number")),
            (Some(Task::Regression), _) => {
                Err(format!("the label {v} is not a number (task regression)"))
            }
            (_, J::Number(n)) => match n.as_f64() {
                Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => {
                    let i = x as i64;
                    if task == Some(Task::Binary) && i != 0 && i != 1 {
                        return Err(format!(
                            "the label {v} is not a class of a binary task (0 or 1, true or false, or a class name)"
                        ));
                    }
                    Ok(J::from(i))
                }
                _ if task.is_none() => Ok(v.clone()),
                _ => Err(format!(
                    "the label {v} is not a class (task {})",
                    task.map_or("", Task::as_str)
                )),
            },
            (_, J::Bool(_) | J::String(_)) => Ok(v.clone()),
        }
    }

    /// Records labels (already checked with [`Target::truth`]) from `source`.
    pub fn accept(
        &self,
        store: &Store,
        source: &str,
        labels: &[NewLabel],
    ) -> Result<keel_store::LabelReport, FeedbackError> {
        Ok(store.append_labels(&self.pipeline, self.version.as_deref(), source, labels)?)
    }
}

/// A spec with nothing but a name: the plan of a pipeline that only ran from
/// a spec file, which the store does not keep.
fn default_spec(name: &str) -> PipelineSpec {
    PipelineSpec {
        name: name.to_owned(),
        version: String::new(),
        description: String::new(),
        reference: None,
        run: Default::default(),
        stages: Vec::new(),
        validators: Vec::new(),
        monitors: Vec::new(),
    }
}

fn has_version(store: &Store, pipeline: &str, version: &str) -> Result<bool, StoreError> {
    let mut found = false;
    store.for_each_prediction(pipeline, Some(version), |_| {
        found = true;
        Ok(())
    })?;
    Ok(found)
}

/// The row id column of joined rows.
pub const ID_COLUMN: &str = "id";

/// Stored predictions of one version joined to their newest labels.
#[derive(Debug, Clone)]
pub struct Joined {
    /// `id`, `time`, the stored columns, the label column (the truth) and
    /// `observed_at`; one row per prediction (left join) or per labelled one.
    pub batch: Batch,
    /// Predictions of the version.
    pub predictions: usize,
    /// Of those, how many have a label.
    pub labelled: usize,
}

impl Joined {
    /// Labelled predictions over predictions (0 with none).
    pub fn coverage(&self) -> f64 {
        if self.predictions == 0 {
            0.0
        } else {
            self.labelled as f64 / self.predictions as f64
        }
    }
}

/// The predictions of `pipeline@version` joined to their labels, the truth
/// in column `label_column`; with `left`, predictions without a label stay
/// (null truth), which is what label coverage counts.
pub fn joined(
    store: &Store,
    pipeline: &str,
    version: &str,
    label_column: &str,
    left: bool,
) -> Result<Joined, StoreError> {
    let mut rows = Vec::new();
    let (mut predictions, mut labelled) = (0, 0);
    store.for_each_prediction(pipeline, Some(version), |p| {
        predictions += 1;
        let label = store.label(pipeline, &p.id)?;
        labelled += usize::from(label.is_some());
        if left || label.is_some() {
            rows.push((p, label));
        }
        Ok(())
    })?;
    Ok(Joined {
        batch: join_batch(rows, label_column),
        predictions,
        labelled,
    })
}

/// The predictions of `version` with these ids joined to their labels
/// (labelled ones only): the rows newly accepted labels bring.
pub fn joined_ids(
    store: &Store,
    pipeline: &str,
    version: &str,
    ids: &[String],
    label_column: &str,
) -> Result<Batch, StoreError> {
    let mut rows = Vec::new();
    for id in ids {
        if let (Some(p), Some(l)) = (
            store.prediction(pipeline, version, id)?,
            store.label(pipeline, id)?,
        ) {
            rows.push((p, Some(l)));
        }
    }
    Ok(join_batch(rows, label_column))
}

/// Label coverage of every version of `pipeline` with stored predictions.
pub fn coverage(
    store: &Store,
    pipeline: &str,
) -> Result<BTreeMap<String, (usize, usize)>, StoreError> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    store.for_each_prediction(pipeline, None, |p| {
        let labelled = store.label(pipeline, &p.id)?.is_some();
        let e = out.entry(p.version).or_default();
        e.0 += 1;
        e.1 += usize::from(labelled);
        Ok(())
    })?;
    Ok(out)
}

/// A prediction and its newest label, if any.
type Row = (Prediction, Option<StoredLabel>);

/// The rows as a batch, in the order they were predicted (record, then row).
fn join_batch(mut rows: Vec<Row>, label_column: &str) -> Batch {
    rows.sort_by_key(|(p, _)| (p.seq, p.row));
    let mut names: Vec<String> = Vec::new();
    for (p, _) in &rows {
        for k in p.values.keys() {
            if !names.contains(k) && k != label_column {
                names.push(k.clone());
            }
        }
    }
    let text = |f: &dyn Fn(&Row) -> Option<String>| {
        rows.iter()
            .map(|r| f(r).map(serde_json::Value::from).unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let mut columns = vec![
        json_column(ID_COLUMN, &text(&|(p, _)| Some(p.id.clone()))),
        json_column("time", &text(&|(p, _)| Some(p.time.clone()))),
    ];
    for n in &names {
        let values: Vec<serde_json::Value> = rows
            .iter()
            .map(|(p, _)| p.values.get(n).cloned().unwrap_or_default())
            .collect();
        columns.push(json_column(n, &values));
    }
    let truths: Vec<serde_json::Value> = rows
        .iter()
        .map(|(_, l)| l.as_ref().map(|l| l.truth.clone()).unwrap_or_default())
        .collect();
    columns.push(json_column(label_column, &truths));
    columns.push(json_column(
        "observed_at",
        &text(&|(_, l)| l.as_ref().and_then(|l| l.observed_at.clone())),
    ));
    // Equal lengths and unique names by construction.
    Batch::new(rows.len(), columns).unwrap_or_default()
}

/// A column of JSON scalars, typed by what they hold: all booleans → bool,
/// all integers → s64, all numbers → f64, else strings; nulls stay null.
fn json_column(name: &str, values: &[serde_json::Value]) -> Column {
    use serde_json::Value as J;
    let present = || values.iter().filter(|v| !v.is_null());
    let validity: Vec<bool> = values.iter().map(|v| !v.is_null()).collect();
    let data = if present().all(J::is_boolean) && present().next().is_some() {
        ColumnData::Bool(
            values
                .iter()
                .map(|v| v.as_bool().unwrap_or(false))
                .collect(),
        )
    } else if present().all(|v| v.is_i64()) && present().next().is_some() {
        ColumnData::S64(values.iter().map(|v| v.as_i64().unwrap_or(0)).collect())
    } else if present().all(J::is_number) && present().next().is_some() {
        ColumnData::F64(values.iter().map(|v| v.as_f64().unwrap_or(0.0)).collect())
    } else {
        ColumnData::String(
            values
                .iter()
                .map(|v| match v {
                    J::Null => String::new(),
                    J::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        )
    };
    Column::with_validity(name, data, validity)
}

/// How a pipeline's output does on the labels known so far: the rows of
/// `output` (rows of record `record_id`) whose id has a label, with the
/// truth joined as `config.label_column`. What `keel replay --with` compares
/// a candidate and the recorded version on.
pub fn labelled_rows(
    store: &Store,
    pipeline: &str,
    plan: &PredictionPlan,
    record_id: &str,
    output: &Batch,
    label_column: &str,
) -> Result<Batch, StoreError> {
    let mut keep = Vec::with_capacity(output.rows());
    let mut truths = Vec::new();
    for p in plan.rows(record_id, 0, output) {
        let label = store.label(pipeline, &p.id)?;
        keep.push(label.is_some());
        truths.extend(label.map(|l| l.truth));
    }
    let mut batch = output.filter(&keep);
    // The output may carry the truth already (a reference passed through).
    batch.remove(label_column);
    let truth = json_column(label_column, &truths);
    if batch.set(truth).is_err() {
        return Ok(output.slice(0, 0));
    }
    Ok(batch)
}

/// The realized metrics of labelled rows (from [`labelled_rows`]) under a
/// performance monitor's config; `None` without a labelled row.
pub fn realized(
    config: &PerformanceConfig,
    labelled: &Batch,
) -> Result<Option<Metrics>, keel_algos::AlgoError> {
    if labelled.rows() == 0 {
        return Ok(None);
    }
    let mut config = config.clone();
    config.reference_chunk_rows = Some(labelled.rows());
    config.thresholds.clear();
    let mut monitor = PerformanceMonitor::new(config, labelled)?;
    monitor.observe(labelled)?;
    Ok(monitor.chunk()?.map(|c| c.realized))
}

/// The config of the spec's first performance monitor (a monitor config
/// that reads as the `performance-monitor` plugin's), if any.
pub fn performance_config(spec: &PipelineSpec) -> Option<PerformanceConfig> {
    spec.monitors.iter().find_map(|m| {
        let json = serde_json::to_value(&m.config).ok()?;
        serde_json::from_value(json).ok()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(task: Option<Task>) -> Target {
        Target {
            pipeline: "p".into(),
            version: None,
            plan: PredictionPlan {
                task,
                ..PredictionPlan::default()
            },
        }
    }

    #[test]
    fn truths_are_checked_against_the_task_and_put_in_one_form() {
        let binary = target(Some(Task::Binary));
        assert_eq!(binary.truth(&json!(1.0)).unwrap(), json!(1));
        assert_eq!(binary.truth(&json!(true)).unwrap(), json!(true));
        assert_eq!(binary.truth(&json!("yes")).unwrap(), json!("yes"));
        assert!(binary.truth(&json!(2)).unwrap_err().contains("binary"));
        assert!(
            binary
                .truth(&json!(0.5))
                .unwrap_err()
                .contains("not a class")
        );
        let regression = target(Some(Task::Regression));
        assert_eq!(regression.truth(&json!(3)).unwrap(), json!(3.0));
        assert!(
            regression
                .truth(&json!("3"))
                .unwrap_err()
                .contains("not a number")
        );
        assert!(regression.truth(&json!(true)).is_err());
        let multiclass = target(Some(Task::Multiclass));
        assert_eq!(multiclass.truth(&json!(7.0)).unwrap(), json!(7));
        assert_eq!(multiclass.truth(&json!("cat")).unwrap(), json!("cat"));
        let unknown = target(None);
        assert_eq!(unknown.truth(&json!(0.25)).unwrap(), json!(0.25));
        for t in [&binary, &regression, &unknown] {
            assert!(t.truth(&json!(null)).unwrap_err().contains("empty"));
            assert!(t.truth(&json!([1])).unwrap_err().contains("single value"));
        }
    }

    #[test]
    fn the_plan_takes_the_performance_monitors_columns() {
        let spec = PipelineSpec::parse(
            r#"
name = "loans"
reference = "reference.csv"
[run]
id_column = "loan_id"
[[monitors]]
name = "perf"
plugin = "performance-monitor"
[monitors.config]
task = "multiclass"
label_column = "truth"
prediction_column = "pred"
score_columns = { a = "p_a", b = "p_b" }
segment_columns = ["region"]
[[monitors]]
name = "drift"
plugin = "drift-monitor"
[monitors.config]
columns = ["x"]
"#,
            Path::new("p.toml"),
        )
        .unwrap();
        let plan = PredictionPlan::of(&spec);
        assert_eq!(plan.id_column.as_deref(), Some("loan_id"));
        assert_eq!(plan.task, Some(Task::Multiclass));
        assert_eq!(plan.label_column, "truth");
        assert_eq!(plan.columns, ["pred", "p_a", "p_b", "region"]);
        assert!(!plan.label_monitors);
        let out = Batch::from_columns(vec![
            Column::from_opt_str("loan_id", &[Some("L1"), None]),
            Column::from_opt_f64("p_a", &[Some(0.25), Some(0.5)]),
        ])
        .unwrap();
        let rows = plan.rows("rec", 10, &out);
        assert_eq!(rows[0].id, "L1");
        assert_eq!(
            rows[1].id, "rec:11",
            "a null id falls back to record and row"
        );
        assert_eq!(rows[1].values["p_a"], json!(0.5));
        assert!(
            !rows[1].values.contains_key("pred"),
            "absent columns are not stored"
        );
    }
}
