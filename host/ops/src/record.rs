//! Audit records of runs: how the runtime's results (outcome, stage times
//! and peaks, findings, monitor verdicts) become the store's record, for a
//! whole `keel run` and for one daemon request alike; and the predictions
//! stored with a record ([`PredictionPlan`]), by row id, for labels to join.

use crate::monitor_state::metrics_json;
use keel_runtime::Outcome as RunOutcome;
use keel_runtime::pipeline::{
    LocatedFinding, MonitorResult, Pipeline, PluginUse, Processed, RunSummary, severity_name,
};
use keel_runtime::spec::{Feed, PipelineSpec};
use keel_store::{
    AuditRecord, Digest, FindingEntry, MonitorVerdict, NewPrediction, Outcome, PipelineRef,
    Severity, StageEntry, StageRole,
};

/// The store's name for how a run (or a stage) ended.
pub fn outcome(o: RunOutcome) -> Outcome {
    match o {
        RunOutcome::Ok => Outcome::Ok,
        RunOutcome::Error => Outcome::Error,
        RunOutcome::Trap => Outcome::Trap,
        RunOutcome::Timeout => Outcome::Timeout,
        RunOutcome::Rejected => Outcome::Rejected,
    }
}

/// How a run ended, for its record.
pub struct Ending {
    pub outcome: RunOutcome,
    pub error: Option<String>,
    /// The stage that failed, if one did.
    pub failed_stage: Option<String>,
}

/// Builds the audit record of one `keel run`.
pub fn record(
    pipeline: &Pipeline,
    spec_text: &str,
    summary: &RunSummary,
    input_digest: Digest,
    output_digest: Option<Digest>,
    ending: &Ending,
) -> AuditRecord {
    let mut r = template(pipeline, spec_text);
    r.input_digest = input_digest;
    r.output_digest = output_digest;
    r.rows_in = summary.rows_in;
    r.rows_out = summary.rows_out;
    set_run_measures(&mut r, summary);
    set_ending(&mut r, ending);
    r.findings
        .extend(summary.examples.iter().map(|(f, _line)| finding_entry(f)));
    for m in &summary.monitors {
        add_monitor_verdicts(&mut r, m);
    }
    r
}

/// The parts of every record of `pipeline` that do not depend on the run:
/// the pipeline's digest and each validator, stage and monitor with its
/// plugin, config and models (no times, no peaks, all `ok`). The daemon
/// computes it once per version and fills in each request.
pub fn template(pipeline: &Pipeline, spec_text: &str) -> AuditRecord {
    let uses = pipeline.plugins();
    let roles: Vec<(String, Digest)> = uses
        .iter()
        .map(|u| (format!("{}:{}", u.role, u.name), digest_of(&u.digest)))
        .collect();
    let spec = pipeline.spec();
    let mut r = AuditRecord::new(
        PipelineRef {
            name: spec.name.clone(),
            version: spec.version.clone(),
            digest: keel_store::digest_pipeline(spec_text, &roles),
        },
        Digest::of(b""),
    );
    r.outcome = Outcome::Ok;
    r.stages = uses.iter().map(stage_entry).collect();
    r
}

/// A digest as the runtime spells it, or the digest of the text when it is
/// not one.
fn digest_of(s: &str) -> Digest {
    s.parse::<Digest>()
        .unwrap_or_else(|_| Digest::of(s.as_bytes()))
}

fn stage_entry(u: &PluginUse) -> StageEntry {
    StageEntry {
        name: u.name.clone(),
        role: match u.role {
            "validator" => StageRole::Validator,
            "monitor" => StageRole::Monitor,
            _ => StageRole::Stage,
        },
        plugin: u.plugin.clone(),
        plugin_version: u.version.clone(),
        plugin_digest: digest_of(&u.digest),
        config_digest: digest_of(&u.config_digest),
        duration_us: 0,
        fuel_used: None,
        peak_memory_bytes: None,
        outcome: Outcome::Ok,
        error: None,
        models: u
            .models
            .iter()
            .map(|m| keel_store::ModelEntry {
                name: m.name.clone(),
                version: m.version.clone(),
                digest: digest_of(&m.digest),
            })
            .collect(),
    }
}

/// Time and peak memory of each entry over a whole run, found by name.
fn set_run_measures(r: &mut AuditRecord, summary: &RunSummary) {
    for s in &mut r.stages {
        let at = summary
            .stage_time
            .iter()
            .position(|(name, _, _)| *name == s.name);
        s.duration_us = at.map_or(0, |i| summary.stage_time[i].2.as_micros() as u64);
        s.peak_memory_bytes = match s.role {
            StageRole::Stage => at
                .and_then(|i| summary.stage_peak.get(i))
                .filter(|p| **p > 0)
                .map(|p| *p as u64),
            StageRole::Validator => summary
                .validator_peak
                .iter()
                .find(|(name, _)| *name == s.name)
                .map(|(_, p)| *p as u64)
                .filter(|p| *p > 0),
            StageRole::Monitor => summary
                .monitors
                .iter()
                .find(|m| m.name == s.name)
                .and_then(|m| m.peak_memory_bytes),
        };
    }
}

/// How the run ended, on the record and on the stage that failed.
pub fn set_ending(r: &mut AuditRecord, ending: &Ending) {
    let o = outcome(ending.outcome);
    r.outcome = o;
    r.error = ending.error.clone();
    for s in &mut r.stages {
        if ending.failed_stage.as_deref() == Some(s.name.as_str()) {
            s.outcome = o;
            s.error = ending.error.clone();
        }
    }
}

/// A validator's finding as the record keeps it.
pub fn finding_entry(f: &LocatedFinding) -> FindingEntry {
    FindingEntry {
        validator: f.validator.clone(),
        rule: f.finding.rule.clone(),
        column: f.finding.column.clone(),
        row: f.input_row,
        severity: match severity_name(f.finding.severity) {
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            _ => Severity::Error,
        },
        message: f.finding.message.clone(),
    }
}

/// What one batch (a daemon request) came to, on a copy of [`template`]:
/// stage times and peaks (in stage order), validator peaks (in spec order),
/// findings, rows out and the output's digest.
pub fn set_processed(r: &mut AuditRecord, p: &Processed, output_digest: Digest) {
    // Validators are recorded in spec order, as they are kept.
    for (entry, peak) in r
        .stages
        .iter_mut()
        .filter(|s| s.role == StageRole::Validator)
        .zip(&p.validator_peak)
    {
        entry.peak_memory_bytes = (*peak > 0).then_some(*peak as u64);
    }
    for ((entry, t), peak) in r
        .stages
        .iter_mut()
        .filter(|s| s.role == StageRole::Stage)
        .zip(&p.stage_time)
        .zip(&p.stage_peak)
    {
        entry.duration_us = t.as_micros() as u64;
        entry.peak_memory_bytes = (*peak > 0).then_some(*peak as u64);
    }
    r.findings = p.findings.iter().map(finding_entry).collect();
    r.output_digest = Some(output_digest);
    r.rows_out = p.output.rows() as u64;
}

/// A monitor's verdicts: one per window closed during the run, then the
/// open window's (or, unwindowed, the whole run's); and its alerts.
fn add_monitor_verdicts(r: &mut AuditRecord, m: &MonitorResult) {
    for w in &m.windows {
        r.monitor_verdicts.push(MonitorVerdict {
            monitor: m.name.clone(),
            alert: w.report.alert,
            summary: w.report.summary.clone(),
            metrics: metrics_json(&w.report),
            window: serde_json::to_value(&w.window).ok(),
        });
    }
    r.alerts
        .extend(m.alerts.iter().filter_map(|a| serde_json::to_value(a).ok()));
    // An open window with no rows yet has nothing to say.
    if m.error.is_none() && m.window.as_ref().is_some_and(|w| w.partial && w.rows == 0) {
        return;
    }
    let (alert, text, metrics) = match (&m.report, &m.error) {
        (Some(rep), _) => (rep.alert, rep.summary.clone(), metrics_json(rep)),
        (None, e) => (
            false,
            format!("monitor failed: {}", e.clone().unwrap_or_default()),
            serde_json::Value::Null,
        ),
    };
    r.monitor_verdicts.push(MonitorVerdict {
        monitor: m.name.clone(),
        alert,
        summary: text,
        metrics,
        window: m
            .window
            .as_ref()
            .filter(|w| w.partial)
            .and_then(|w| serde_json::to_value(w).ok()),
    });
}

/// What a pipeline is asked to predict, as its performance monitors say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Binary,
    Multiclass,
    Regression,
}

impl Task {
    fn parse(s: &str) -> Option<Task> {
        match s {
            "binary" => Some(Task::Binary),
            "multiclass" => Some(Task::Multiclass),
            "regression" => Some(Task::Regression),
            _ => None,
        }
    }

    /// The name configs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Multiclass => "multiclass",
            Task::Regression => "regression",
        }
    }
}

/// Default name of the truth column in joined rows when no performance
/// monitor names one (`label_column`).
pub const DEFAULT_LABEL_COLUMN: &str = "label";

/// What is stored of each prediction of a pipeline: its row id and the
/// columns its performance monitors name. A monitor is a performance monitor
/// when it is fed labels (`feed = "labels"`) or its config names a
/// `label_column` (the `performance-monitor` plugin's keys: `task`,
/// `label_column`, `score_column`, `score_columns`, `prediction_column`,
/// `segment_columns`, `positive_label`). Without one, only the id, time and
/// record are stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PredictionPlan {
    /// `[run] id_column`.
    pub id_column: Option<String>,
    /// Prediction, score and segment columns, in first-named order.
    pub columns: Vec<String>,
    /// The task the first performance monitor names, if any.
    pub task: Option<Task>,
    /// The truth column of joined rows.
    pub label_column: String,
    /// Whether any monitor is fed labels.
    pub label_monitors: bool,
}

impl PredictionPlan {
    /// The plan of `spec`.
    pub fn of(spec: &PipelineSpec) -> PredictionPlan {
        let mut plan = PredictionPlan {
            id_column: spec.run.id_column.clone(),
            label_column: DEFAULT_LABEL_COLUMN.into(),
            ..PredictionPlan::default()
        };
        let mut label_column = None;
        for m in &spec.monitors {
            let c = &m.config;
            let fed_labels = m.feed == Feed::Labels;
            plan.label_monitors |= fed_labels;
            if !fed_labels && !c.contains_key("label_column") {
                continue;
            }
            let text = |k: &str| c.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            if label_column.is_none() {
                label_column = text("label_column");
            }
            if plan.task.is_none() {
                plan.task = text("task").as_deref().and_then(Task::parse);
            }
            let mut named: Vec<String> = ["prediction_column", "score_column"]
                .iter()
                .filter_map(|k| text(k))
                .collect();
            if let Some(t) = c.get("score_columns").and_then(|v| v.as_table()) {
                named.extend(t.values().filter_map(|v| v.as_str().map(str::to_owned)));
            }
            if let Some(a) = c.get("segment_columns").and_then(|v| v.as_array()) {
                named.extend(a.iter().filter_map(|v| v.as_str().map(str::to_owned)));
            }
            for n in named {
                if !plan.columns.contains(&n) {
                    plan.columns.push(n);
                }
            }
        }
        if let Some(l) = label_column {
            plan.label_column = l;
        }
        plan
    }

    /// The predictions of one output batch of record `record_id`, whose
    /// first row is row `first_row` of the record. A row's id is its value
    /// of the id column, or `<record-id>:<row>` when there is no id column
    /// (or the row's value is null).
    pub fn rows(
        &self,
        record_id: &str,
        first_row: usize,
        output: &keel_data::Batch,
    ) -> Vec<NewPrediction> {
        let ids = self.id_column.as_deref().and_then(|c| output.column(c));
        let columns: Vec<(&str, &keel_data::Column)> = self
            .columns
            .iter()
            .filter_map(|n| output.column(n).map(|c| (n.as_str(), c)))
            .collect();
        (0..output.rows())
            .map(|i| {
                let row = first_row + i;
                let id = match ids.map(|c| c.value(i)) {
                    Some(keel_data::Value::Null) | None => format!("{record_id}:{row}"),
                    Some(v) => v.to_string(),
                };
                let values = columns
                    .iter()
                    .map(|(n, c)| ((*n).to_owned(), json_value(c.value(i))))
                    .collect();
                NewPrediction {
                    id,
                    row: u32::try_from(row).unwrap_or(u32::MAX),
                    values,
                }
            })
            .collect()
    }
}

/// A cell as JSON (a non-finite number becomes null).
pub fn json_value(v: keel_data::Value<'_>) -> serde_json::Value {
    match v {
        keel_data::Value::Null => serde_json::Value::Null,
        keel_data::Value::F64(x) => {
            serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into)
        }
        keel_data::Value::S64(x) => x.into(),
        keel_data::Value::Bool(b) => b.into(),
        keel_data::Value::Str(s) => s.into(),
    }
}
