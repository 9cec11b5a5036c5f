//! The `performance-monitor` plugin's algorithm: a model's performance over
//! the rows of one window, judged against bounds from a labelled reference,
//! exactly as [`super::analyse`] judges one chunk.
//!
//! - **create** reads the reference as it arrives at the monitor's point in
//!   the pipeline; it must carry `label_column`. From it come the binary
//!   positive class (unless `positive_label` says it), the bounds of every
//!   metric ([`Fitted::fit`] on chunks of `reference_chunk_rows` rows, mean ±
//!   3σ clipped to the metric's range; `thresholds` replaces them per
//!   metric) and, for classifiers with scores, CBPE's calibration.
//! - **observe** keeps each row of the open window: its prediction, scores,
//!   label (from `label_column` when the batch has it, a join of predictions
//!   and labels; none when it does not, predictions alone) and segment
//!   values. Realized metrics (ROC AUC, average precision) and CBPE's ROC AUC
//!   estimate need every score, so the state is the rows themselves, not
//!   counts: in memory 16 bytes for the label, 8 for the prediction, 8 per
//!   score column and 4 per segment column per row (a binary model with one
//!   segment: 36 bytes a row, 36 MB for a window of a million rows); the
//!   snapshot is JSON with the numbers as the hex of their bits (exact), 16
//!   characters per number: about 50 bytes a row for the same model.
//! - **report** is the chunk report of the window's rows: realized metrics
//!   of its labelled rows, CBPE estimates of all its rows (binary and
//!   multiclass; regression gets realized metrics only: DLE is not there
//!   yet), bounds and a verdict per metric, then realized metrics per
//!   segment value.
//!
//! # The report's metrics
//!
//! Each performance metric `m` (the `metrics` configured, by default all of
//! the task's) appears under several columns, so that the host's alert
//! machinery, `keel monitor history` and `/metrics` read them like any
//! monitor's:
//!
//! | column | name | value | threshold / alert |
//! | --- | --- | --- | --- |
//! | `realized` | `m` | over the labelled rows | when judged (see below) |
//! | `estimated` | `m` | CBPE estimate over all rows | when judged |
//! | `sampling-error` | `m` | σ of the estimate | — |
//! | `confidence-low`, `confidence-high` | `m` | estimate ∓ 3σ, clipped | — |
//! | `estimate-error` | `m` | estimate − realized, when both exist | — |
//! | `bound-low`, `bound-high` | `m` | the alert bounds (finite ends only) | — |
//! | `<segment column>=<value>` | `labelled`, `m` | realized, from `min_segment_labelled` labelled rows | — |
//! | none | `rows`, `labelled`, `coverage` | the window's label coverage | — |
//! | none | `metrics-alerting` | metrics out of their bounds | 1, alerts at ≥ 1 |
//!
//! A metric is judged on one value ([`judged`]): the realized one once
//! labels cover `min_coverage` of the window, the estimate before that. That
//! value carries the threshold (the bound it crossed, or else the nearer
//! one) and the alert; the other is informational. Alert keys are thus
//! `realized/m` or `estimated/m`, each with its own hysteresis and cooldown.

use super::Task;
use super::chunk::{self, ChunkSpan};
use super::report::{ChunkReport, Fitted, Judged, Owned, PerformanceOptions, judged};
use super::thresholds::Bounds;
use crate::report::{Metric, Report};
use crate::util::check_names;
use crate::{AlgoError, Result};
use keel_data::{Batch, Column, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version written into snapshots; `restore` refuses any other.
pub const SNAPSHOT_VERSION: u32 = 1;

/// The plugin's config (its JSON Schema is in the plugin's metadata).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceConfig {
    /// binary, multiclass or regression.
    pub task: Task,
    /// The truth: in the reference always; in a batch when labels are known.
    pub label_column: String,
    /// Binary: the probability of the positive class.
    #[serde(default)]
    pub score_column: Option<String>,
    /// Multiclass: the probability column of each class.
    #[serde(default)]
    pub score_columns: BTreeMap<String, String>,
    /// The model's prediction; default `score >= 0.5` (binary) or the most
    /// probable class (multiclass); required for regression.
    #[serde(default)]
    pub prediction_column: Option<String>,
    /// Binary: the positive label (default `true`, else `1`).
    #[serde(default, deserialize_with = "label_text")]
    pub positive_label: Option<String>,
    /// Columns whose values are segments with realized metrics of their own.
    #[serde(default)]
    pub segment_columns: Vec<String>,
    /// Labelled rows a segment needs before its metrics are reported.
    #[serde(default = "default_min_segment_labelled")]
    pub min_segment_labelled: usize,
    /// The metrics reported (default: all of the task's).
    #[serde(default)]
    pub metrics: Option<Vec<String>>,
    /// Fixed `[low, high]` bounds per metric instead of the reference's.
    #[serde(default)]
    pub thresholds: BTreeMap<String, [f64; 2]>,
    /// Rows per reference chunk for the bounds (default: a tenth of the
    /// reference); set it to the window's rows.
    #[serde(default)]
    pub reference_chunk_rows: Option<usize>,
    /// Label coverage from which a window is judged on realized values.
    #[serde(default = "default_min_coverage")]
    pub min_coverage: f64,
}

fn default_min_segment_labelled() -> usize {
    30
}

fn default_min_coverage() -> f64 {
    0.5
}

/// A label given as a string, number or bool, kept as its text (`1`, `1.0`
/// and `"1"` are the same label).
fn label_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> core::result::Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
        Some(serde_json::Value::Number(n)) => Some(match n.as_f64() {
            Some(x) => Value::F64(x).to_string(),
            None => n.to_string(),
        }),
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "positive_label must be a string, number or bool, not {other}"
            )));
        }
    })
}

/// How cells become classes or numbers.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Bool cells are themselves; other cells are `positive`, or `negative`
    /// (the reference's other class, when it has one), or a third class.
    Binary {
        positive: String,
        negative: Option<String>,
    },
    Multiclass {
        classes: Vec<String>,
    },
    Regression,
}

/// The open window's rows; classes are encoded as numbers (binary 0/1,
/// multiclass the class index) so one layout serves every task.
/// Numbers are snapshotted as the hex of their bits: exact (JSON decimals
/// may lose the last bit on the way back) and 16 characters each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Rows {
    #[serde(with = "bits::optional")]
    labels: Vec<Option<f64>>,
    #[serde(with = "bits")]
    predictions: Vec<f64>,
    /// One column per score column (binary: 0 or 1, multiclass: a class each).
    #[serde(with = "bits::columns")]
    scores: Vec<Vec<f64>>,
    /// Per segment column, the index of each row's value in `values`.
    segments: Vec<Vec<Option<u32>>>,
    /// Per segment column, its values in order of appearance.
    values: Vec<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    basis: String,
    rows: Rows,
}

/// The monitor: a fitted reference and the open window's rows.
#[derive(Debug, Clone)]
pub struct PerformanceMonitor {
    config: PerformanceConfig,
    kind: Kind,
    metrics: Vec<&'static str>,
    options: PerformanceOptions,
    fitted: Fitted,
    rows: Rows,
}

impl PerformanceMonitor {
    /// Checks the config, reads the labelled reference and fits on it.
    pub fn new(config: PerformanceConfig, reference: &Batch) -> Result<PerformanceMonitor> {
        let metrics = check_config(&config)?;
        if reference.column(&config.label_column).is_none() {
            return Err(AlgoError::reference(
                &config.label_column,
                format!(
                    "has no label column `{}`: the monitor fits its bounds and CBPE's calibration \
                     on a labelled reference",
                    config.label_column
                ),
            ));
        }
        let kind = kind(&config, reference)?;
        let chunk_rows = config
            .reference_chunk_rows
            .unwrap_or(reference.rows() / 10)
            .max(1);
        let mut options = PerformanceOptions::new(chunk_rows);
        options.min_segment_labelled = config.min_segment_labelled;
        options.realized_coverage = config.min_coverage;
        let mut monitor = PerformanceMonitor {
            kind,
            metrics,
            options,
            fitted: Fitted::default(),
            rows: Rows::default(),
            config,
        };
        let mut r = monitor.empty_rows();
        monitor
            .read(&mut r, reference)
            .map_err(|e| AlgoError::Reference {
                column: e.column().map(str::to_owned),
                message: e.to_string(),
            })?;
        if r.labels.iter().all(Option::is_none) {
            return Err(AlgoError::reference(
                &monitor.config.label_column,
                "has no labelled row",
            ));
        }
        let task = monitor.config.task;
        let fitted = {
            let typed = typed(&monitor.kind, &r);
            let columns = typed.columns();
            Fitted::fit(&typed.data(&columns), task, &monitor.options)?
        };
        monitor.fitted = fitted;
        for (metric, b) in &monitor.config.thresholds {
            monitor.fitted.bounds.insert(metric.clone(), *b);
        }
        monitor.rows = monitor.empty_rows();
        Ok(monitor)
    }

    /// Rows in the open window.
    pub fn rows(&self) -> u64 {
        self.rows.predictions.len() as u64
    }

    /// The alert bounds per metric (the reference's, or the fixed ones).
    pub fn bounds(&self) -> &Bounds {
        &self.fitted.bounds
    }

    /// Whether CBPE estimates windows (a classifier with scores).
    pub fn estimates(&self) -> bool {
        self.fitted.estimates()
    }

    /// Adds a batch's rows to the window; a bad cell is an error naming its
    /// column and row, and leaves the window as it was.
    pub fn observe(&mut self, batch: &Batch) -> Result<()> {
        let mut rows = std::mem::take(&mut self.rows);
        let before = rows.predictions.len();
        let result = self.read(&mut rows, batch);
        if result.is_err() {
            truncate(&mut rows, before);
        }
        self.rows = rows;
        result
    }

    /// The window's chunk report, as [`super::analyse`] gives it for a chunk
    /// holding exactly these rows.
    pub fn chunk(&self) -> Result<Option<ChunkReport>> {
        let n = self.rows.predictions.len();
        if n == 0 {
            return Ok(None);
        }
        let typed = typed(&self.kind, &self.rows);
        let columns = typed.columns();
        let data = typed.data(&columns);
        data.check()?;
        let span = ChunkSpan {
            start: 0,
            end: n - 1,
        };
        self.fitted.chunk(&data, span, &self.options).map(Some)
    }

    /// The report of the open window (see the module docs for its metrics).
    pub fn report(&self) -> Result<Report> {
        let Some(chunk) = self.chunk()? else {
            return Ok(Report {
                rows: 0,
                alert: false,
                metrics: Vec::new(),
                summary: "no rows observed".into(),
            });
        };
        let mut metrics = Vec::new();
        let mut out = Vec::new();
        for &m in &self.metrics {
            self.metric_entries(&chunk, m, &mut metrics, &mut out);
        }
        let judged_count = metrics.iter().filter(|m| m.threshold.is_some()).count();
        self.segment_entries(&mut metrics);
        for (name, value) in [
            ("rows", chunk.rows as f64),
            ("labelled", chunk.labelled as f64),
            ("coverage", chunk.coverage),
        ] {
            metrics.push(info(None, name, value));
        }
        metrics.push(Metric {
            column: None,
            name: "metrics-alerting".into(),
            value: out.len() as f64,
            threshold: Some(1.0),
            p_value: None,
            alert: !out.is_empty(),
        });
        Ok(Report {
            rows: chunk.rows as u64,
            alert: !out.is_empty(),
            metrics,
            summary: summary(&chunk, &out, judged_count),
        })
    }

    /// The entries of one performance metric; a judged value out of its
    /// bounds goes to `out` as `(source, metric, value, bounds)`.
    fn metric_entries(
        &self,
        chunk: &ChunkReport,
        m: &'static str,
        metrics: &mut Vec<Metric>,
        out: &mut Vec<Out>,
    ) {
        let realized = chunk.realized.get(m).copied().flatten();
        let estimated = chunk.estimated.get(m).copied().flatten();
        let judged = judged(
            m,
            &chunk.realized,
            &chunk.estimated,
            chunk.coverage,
            &self.options,
        );
        let bounds = chunk.bounds.get(m).copied();
        let alert = chunk.alerts.iter().any(|a| a == m);
        for (source, value, is_judged) in [
            (
                "realized",
                realized,
                matches!(judged, Some(Judged::Realized(_))),
            ),
            (
                "estimated",
                estimated,
                matches!(judged, Some(Judged::Estimated(_))),
            ),
        ] {
            let Some(value) = value else { continue };
            let threshold = bounds.filter(|_| is_judged).map(|b| nearer(b, value));
            let alert = is_judged && alert;
            if let (true, Some(b)) = (alert, bounds) {
                out.push(Out {
                    source,
                    metric: m,
                    value,
                    bounds: b,
                });
            }
            metrics.push(Metric {
                column: Some(source.into()),
                name: m.into(),
                value,
                threshold,
                p_value: None,
                alert,
            });
        }
        let sigma = chunk.sampling_error.get(m).copied().flatten();
        let mut extra: Vec<(&str, Option<f64>)> = vec![("sampling-error", sigma)];
        if let Some(band) = chunk.confidence.get(m) {
            extra.push(("confidence-low", Some(band[0])));
            extra.push(("confidence-high", Some(band[1])));
        }
        if let (Some(r), Some(e)) = (realized, estimated) {
            extra.push(("estimate-error", Some(e - r)));
        }
        if let Some(b) = bounds {
            extra.push(("bound-low", Some(b[0])));
            extra.push(("bound-high", Some(b[1])));
        }
        for (column, value) in extra {
            if let Some(v) = value.filter(|v| v.is_finite()) {
                metrics.push(info(Some(column), m, v));
            }
        }
    }

    /// Realized metrics of each segment value with enough labelled rows.
    fn segment_entries(&self, metrics: &mut Vec<Metric>) {
        let typed = typed(&self.kind, &self.rows);
        let columns = typed.columns();
        let data = typed.data(&columns);
        for ((name, ids), values) in self
            .config
            .segment_columns
            .iter()
            .zip(&self.rows.segments)
            .zip(&self.rows.values)
        {
            let cells: Vec<Option<&str>> = ids
                .iter()
                .map(|i| i.and_then(|i| values.get(i as usize)).map(String::as_str))
                .collect();
            for (value, rows) in chunk::segments(&cells) {
                let r = data.realized(rows.iter().copied());
                let column = format!("{name}={value}");
                metrics.push(info(Some(&column), "labelled", r.labelled as f64));
                if r.labelled < self.options.min_segment_labelled.max(1) {
                    continue;
                }
                for &m in &self.metrics {
                    if let Some(v) = r.metrics.get(m).copied().flatten() {
                        metrics.push(info(Some(&column), m, v));
                    }
                }
            }
        }
    }

    /// The open window's rows and what they mean, as JSON.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(&Snapshot {
            version: SNAPSHOT_VERSION,
            basis: self.basis(),
            rows: self.rows.clone(),
        })
        .map_err(|e| AlgoError::State {
            message: format!("cannot encode the snapshot: {e}"),
        })
    }

    /// Replaces the open window with a snapshot of a monitor of the same
    /// task, classes, score and segment columns.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let state = |message: String| AlgoError::State { message };
        let s: Snapshot = serde_json::from_slice(bytes)
            .map_err(|e| state(format!("not a performance-monitor snapshot: {e}")))?;
        if s.version != SNAPSHOT_VERSION {
            return Err(state(format!(
                "snapshot version {} is not the supported version {SNAPSHOT_VERSION}",
                s.version
            )));
        }
        if s.basis != self.basis() {
            return Err(state(format!(
                "snapshot is of another performance monitor ({}, this one {})",
                s.basis,
                self.basis()
            )));
        }
        let r = &s.rows;
        let n = r.predictions.len();
        let empty = self.empty_rows();
        let consistent = r.labels.len() == n
            && r.scores.len() == empty.scores.len()
            && r.scores.iter().all(|c| c.len() == n)
            && r.segments.len() == empty.segments.len()
            && r.values.len() == empty.values.len()
            && r.segments.iter().zip(&r.values).all(|(ids, values)| {
                ids.len() == n && ids.iter().flatten().all(|&i| (i as usize) < values.len())
            });
        if !consistent {
            return Err(state("snapshot columns have inconsistent lengths".into()));
        }
        self.rows = s.rows;
        Ok(())
    }

    /// What the snapshot's numbers mean.
    fn basis(&self) -> String {
        let kind = match &self.kind {
            Kind::Binary { positive, .. } => format!("binary, positive {positive:?}"),
            Kind::Multiclass { classes } => format!("multiclass, classes {classes:?}"),
            Kind::Regression => "regression".into(),
        };
        format!(
            "{kind}, score columns {}, segments {:?}",
            self.score_columns().len(),
            self.config.segment_columns
        )
    }

    /// The score columns, in the order of `Rows::scores`.
    fn score_columns(&self) -> Vec<&str> {
        match &self.kind {
            Kind::Binary { .. } => self.config.score_column.as_deref().into_iter().collect(),
            Kind::Multiclass { classes } => classes
                .iter()
                .filter_map(|c| self.config.score_columns.get(c).map(String::as_str))
                .collect(),
            Kind::Regression => Vec::new(),
        }
    }

    fn empty_rows(&self) -> Rows {
        let segments = self.config.segment_columns.len();
        Rows {
            scores: vec![Vec::new(); self.score_columns().len()],
            segments: vec![Vec::new(); segments],
            values: vec![Vec::new(); segments],
            ..Rows::default()
        }
    }

    /// Appends the rows of `batch` to `rows`.
    fn read(&self, rows: &mut Rows, batch: &Batch) -> Result<()> {
        let n = batch.rows();
        let score_names = self.score_columns();
        let mut scores = Vec::with_capacity(score_names.len());
        for name in &score_names {
            scores.push(probabilities(batch.require(name)?)?);
        }
        let predictions = match &self.config.prediction_column {
            Some(p) => {
                let col = batch.require(p)?;
                (0..n)
                    .map(|i| {
                        self.class_or_number(col, i)?
                            .ok_or_else(|| bad(col, i, "empty prediction".into()))
                    })
                    .collect::<Result<Vec<f64>>>()?
            }
            None => default_predictions(&scores, n),
        };
        let labels = match batch.column(&self.config.label_column) {
            Some(col) => (0..n)
                .map(|i| self.class_or_number(col, i))
                .collect::<Result<Vec<_>>>()?,
            None => vec![None; n],
        };
        let mut segments = Vec::with_capacity(self.config.segment_columns.len());
        for name in &self.config.segment_columns {
            segments.push(batch.require(name)?);
        }
        rows.labels.extend(labels);
        rows.predictions.extend(predictions);
        for (to, from) in rows.scores.iter_mut().zip(scores) {
            to.extend(from);
        }
        for ((ids, values), col) in rows.segments.iter_mut().zip(&mut rows.values).zip(segments) {
            for i in 0..n {
                ids.push(intern(values, col.value(i)));
            }
        }
        Ok(())
    }

    /// A cell as the task's number: `None` when null (or NaN); binary 1.0 for
    /// the positive label, 0.0 for another; multiclass the class index;
    /// regression the number.
    fn class_or_number(&self, col: &Column, i: usize) -> Result<Option<f64>> {
        let v = col.value(i);
        if matches!(v, Value::Null) || matches!(v, Value::F64(x) if x.is_nan()) {
            return Ok(None);
        }
        match &self.kind {
            Kind::Binary { positive, negative } => {
                if let Value::Bool(b) = v {
                    return Ok(Some(f64::from(u8::from(b))));
                }
                let text = v.to_string();
                if text == *positive {
                    return Ok(Some(1.0));
                }
                match negative {
                    Some(n) if *n != text => Err(bad(
                        col,
                        i,
                        format!("a third class `{text}` (binary classes: `{positive}`, `{n}`)"),
                    )),
                    _ => Ok(Some(0.0)),
                }
            }
            Kind::Multiclass { classes } => {
                let text = v.to_string();
                match classes.iter().position(|c| *c == text) {
                    Some(c) => Ok(Some(c as f64)),
                    None => Err(bad(
                        col,
                        i,
                        format!(
                            "class `{text}` is not one of the classes of `score_columns` ({})",
                            classes.join(", ")
                        ),
                    )),
                }
            }
            Kind::Regression => match v {
                Value::F64(x) if x.is_finite() => Ok(Some(x)),
                Value::S64(x) => Ok(Some(x as f64)),
                other => Err(bad(col, i, format!("`{other}` is not a finite number"))),
            },
        }
    }
}

/// A judged value out of its bounds.
struct Out {
    source: &'static str,
    metric: &'static str,
    value: f64,
    bounds: [f64; 2],
}

/// One line: what alerts (the first metric out of its bounds), or how many
/// judged metrics are within them; then the label coverage.
fn summary(chunk: &ChunkReport, out: &[Out], judged: usize) -> String {
    let coverage = format!(
        "{} rows, {} labelled ({:.1} %)",
        chunk.rows,
        chunk.labelled,
        chunk.coverage * 100.0
    );
    let Some(first) = out.first() else {
        return match judged {
            0 => format!(
                "no metric judged (no bounds, or too few labels and no estimate); {coverage}"
            ),
            n => format!("{n} judged metrics within their bounds; {coverage}"),
        };
    };
    let names: Vec<&str> = out.iter().map(|o| o.metric).collect();
    let side = if first.value < first.bounds[0] {
        "below"
    } else {
        "above"
    };
    format!(
        "{} of {judged} judged metrics out of their bounds ({}); {} {} {:.4} {side} [{:.4}, {:.4}]; {coverage}",
        out.len(),
        names.join(", "),
        first.source,
        first.metric,
        first.value,
        first.bounds[0],
        first.bounds[1]
    )
}

/// The bound `value` crossed, or else the nearer one.
fn nearer(b: [f64; 2], value: f64) -> f64 {
    if value < b[0] || (value <= b[1] && value - b[0] <= b[1] - value) {
        b[0]
    } else {
        b[1]
    }
}

fn info(column: Option<&str>, name: &str, value: f64) -> Metric {
    Metric {
        column: column.map(str::to_owned),
        name: name.into(),
        value,
        threshold: None,
        p_value: None,
        alert: false,
    }
}

fn bad(col: &Column, row: usize, message: String) -> AlgoError {
    AlgoError::Input {
        column: col.name.clone(),
        row: Some(row),
        message,
    }
}

fn intern(values: &mut Vec<String>, v: Value) -> Option<u32> {
    if matches!(v, Value::Null) {
        return None;
    }
    let text = v.to_string();
    let i = match values.iter().position(|s| *s == text) {
        Some(i) => i,
        None => {
            values.push(text);
            values.len() - 1
        }
    };
    u32::try_from(i).ok()
}

fn truncate(rows: &mut Rows, n: usize) {
    rows.labels.truncate(n);
    rows.predictions.truncate(n);
    for c in &mut rows.scores {
        c.truncate(n);
    }
    for c in &mut rows.segments {
        c.truncate(n);
    }
}

/// A probability column: every row a number in `[0, 1]`.
fn probabilities(col: &Column) -> Result<Vec<f64>> {
    let values = col.numeric()?;
    for (i, &x) in values.iter().enumerate() {
        if !col.is_valid(i) {
            return Err(bad(col, i, "empty score".into()));
        }
        if !(0.0..=1.0).contains(&x) {
            return Err(bad(col, i, format!("{x} is not a probability in [0, 1]")));
        }
    }
    Ok(values.into_owned())
}

/// Binary: `score >= 0.5`; multiclass: the most probable class (the first
/// of ties).
fn default_predictions(scores: &[Vec<f64>], n: usize) -> Vec<f64> {
    match scores {
        [one] => one.iter().map(|&s| f64::from(u8::from(s >= 0.5))).collect(),
        many => (0..n)
            .map(|i| {
                let mut best = 0;
                for (c, p) in many.iter().enumerate() {
                    if p[i] > many[best][i] {
                        best = c;
                    }
                }
                best as f64
            })
            .collect(),
    }
}

/// Checks what serde cannot; gives the metrics to report, in report order.
fn check_config(c: &PerformanceConfig) -> Result<Vec<&'static str>> {
    if c.label_column.is_empty() {
        return Err(AlgoError::config("label_column", "is empty; name a column"));
    }
    let task = c.task;
    let refuse = |key: &str, why: &str| Err(AlgoError::config(key, format!("{why} ({task:?})")));
    match task {
        Task::Binary => {
            if !c.score_columns.is_empty() {
                return refuse(
                    "score_columns",
                    "is for multiclass models; use score_column",
                );
            }
            if c.score_column.is_none() && c.prediction_column.is_none() {
                return refuse(
                    "score_column",
                    "name the model's output: score_column and/or prediction_column",
                );
            }
        }
        Task::Multiclass => {
            if c.score_column.is_some() {
                return refuse("score_column", "is for binary models; use score_columns");
            }
            if c.score_columns.len() < 2 {
                return refuse(
                    "score_columns",
                    "give the probability column of each class, {class: column}, at least two",
                );
            }
        }
        Task::Regression => {
            if c.score_column.is_some() || !c.score_columns.is_empty() {
                return refuse("score_column", "a regression model has no scores");
            }
            if c.prediction_column.is_none() {
                return refuse("prediction_column", "a regression model needs it");
            }
        }
    }
    if c.positive_label.is_some() && task != Task::Binary {
        return refuse("positive_label", "applies to binary models only");
    }
    if !c.segment_columns.is_empty() {
        check_names("segment_columns", &c.segment_columns)?;
    }
    if !(0.0..=1.0).contains(&c.min_coverage) {
        return Err(AlgoError::config("min_coverage", "must be within [0, 1]"));
    }
    if c.reference_chunk_rows == Some(0) {
        return Err(AlgoError::config(
            "reference_chunk_rows",
            "must be at least 1",
        ));
    }
    let known = task.metrics();
    let unknown = |key: &str, m: &str| {
        AlgoError::config(
            key,
            format!(
                "`{m}` is not a {task:?} metric (one of {})",
                known.join(", ")
            ),
        )
    };
    for (m, b) in &c.thresholds {
        if !known.contains(&m.as_str()) {
            return Err(unknown("thresholds", m));
        }
        if b[0].is_nan() || b[1].is_nan() || b[0] > b[1] {
            return Err(AlgoError::config(
                "thresholds",
                format!("`{m}`: [{}, {}] is not [low, high]", b[0], b[1]),
            ));
        }
    }
    match &c.metrics {
        None => Ok(known.to_vec()),
        Some(list) => {
            if list.is_empty() {
                return Err(AlgoError::config("metrics", "is empty; name at least one"));
            }
            if let Some(m) = list.iter().find(|m| !known.contains(&m.as_str())) {
                return Err(unknown("metrics", m));
            }
            Ok(known
                .iter()
                .copied()
                .filter(|k| list.iter().any(|m| m == k))
                .collect())
        }
    }
}

/// The classes of the task, from the config and the reference.
fn kind(c: &PerformanceConfig, reference: &Batch) -> Result<Kind> {
    match c.task {
        Task::Regression => Ok(Kind::Regression),
        Task::Multiclass => Ok(Kind::Multiclass {
            classes: c.score_columns.keys().cloned().collect(),
        }),
        Task::Binary => {
            let seen = binary_classes(c, reference)?;
            let positive = match &c.positive_label {
                Some(p) => p.clone(),
                None => ["true", "1"]
                    .into_iter()
                    .find(|p| seen.is_empty() || seen.iter().any(|s| s == p))
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        AlgoError::config(
                            "positive_label",
                            format!(
                                "binary classes `{}`: say which is positive",
                                seen.join("` and `")
                            ),
                        )
                    })?,
            };
            let mut negative = seen.into_iter().find(|s| *s != positive);
            if negative.is_none() {
                negative = match positive.as_str() {
                    "true" => Some("false".into()),
                    "1" => Some("0".into()),
                    _ => None,
                };
            }
            Ok(Kind::Binary { positive, negative })
        }
    }
}

/// The (at most two) non-bool values of the reference's label and
/// prediction columns, in order of appearance; a third is an error.
fn binary_classes(c: &PerformanceConfig, reference: &Batch) -> Result<Vec<String>> {
    let mut seen: Vec<String> = Vec::new();
    let mut columns = vec![&c.label_column];
    columns.extend(c.prediction_column.as_ref());
    for name in columns {
        let Some(col) = reference.column(name) else {
            continue;
        };
        for i in 0..col.len() {
            let v = col.value(i);
            if matches!(v, Value::Null | Value::Bool(_)) {
                continue;
            }
            let text = v.to_string();
            if seen.contains(&text) {
                continue;
            }
            if seen.len() == 2 {
                return Err(AlgoError::reference(
                    name,
                    format!(
                        "row {i}: a third class `{text}` (binary classes seen: `{}`, `{}`)",
                        seen[0], seen[1]
                    ),
                ));
            }
            seen.push(text);
        }
    }
    Ok(seen)
}

/// The window's rows as [`Owned`] data.
fn typed(kind: &Kind, r: &Rows) -> Owned {
    match kind {
        Kind::Binary { .. } => Owned::Binary {
            labels: r.labels.iter().map(|l| l.map(|x| x == 1.0)).collect(),
            predictions: r.predictions.iter().map(|&x| x == 1.0).collect(),
            scores: r.scores.first().cloned(),
        },
        Kind::Multiclass { .. } => Owned::Multiclass {
            labels: r.labels.iter().map(|l| l.map(|x| x as u32)).collect(),
            predictions: r.predictions.iter().map(|&x| x as u32).collect(),
            probabilities: r.scores.clone(),
        },
        Kind::Regression => Owned::Regression {
            labels: r.labels.clone(),
            predictions: r.predictions.clone(),
            // The monitor sees no features: no DLE in windows yet.
            features: Vec::new(),
        },
    }
}

/// `f64`s as one hex string of their little-endian bits (a null label as NaN).
mod bits {
    use serde::{Deserialize, Deserializer, Serializer};

    fn encode(values: impl Iterator<Item = f64>) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::new();
        for v in values {
            for b in v.to_le_bytes() {
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
        out
    }

    fn decode<E: serde::de::Error>(text: &str) -> Result<Vec<f64>, E> {
        if !text.len().is_multiple_of(16) || !text.is_ascii() {
            return Err(E::custom("a number column is not 16 hex digits per value"));
        }
        (0..text.len() / 16)
            .map(|i| {
                let mut bytes = [0u8; 8];
                for (j, b) in bytes.iter_mut().enumerate() {
                    let at = i * 16 + j * 2;
                    *b = u8::from_str_radix(&text[at..at + 2], 16)
                        .map_err(|e| E::custom(format!("bad hex at {at}: {e}")))?;
                }
                Ok(f64::from_le_bytes(bytes))
            })
            .collect()
    }

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(v.iter().copied()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        decode(&String::deserialize(d)?)
    }

    pub mod optional {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &[Option<f64>], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&super::encode(v.iter().map(|x| x.unwrap_or(f64::NAN))))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<f64>>, D::Error> {
            let v = super::decode::<D::Error>(&String::deserialize(d)?)?;
            Ok(v.into_iter().map(|x| (!x.is_nan()).then_some(x)).collect())
        }
    }

    pub mod columns {
        use serde::ser::SerializeSeq;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &[Vec<f64>], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for c in v {
                seq.serialize_element(&super::encode(c.iter().copied()))?;
            }
            seq.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
            Vec::<String>::deserialize(d)?
                .iter()
                .map(|t| super::decode::<D::Error>(t))
                .collect()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use keel_data::ColumnData;

    fn cfg(json: &str) -> PerformanceConfig {
        serde_json::from_str(json).unwrap()
    }

    fn batch(scores: &[f64], labels: Option<&[&str]>) -> Batch {
        let mut columns = vec![Column::new("s", ColumnData::F64(scores.to_vec()))];
        if let Some(l) = labels {
            columns.push(Column::from_opt_str(
                "y",
                &l.iter()
                    .map(|v| (!v.is_empty()).then_some(*v))
                    .collect::<Vec<_>>(),
            ));
        }
        Batch::from_columns(columns).unwrap()
    }

    const BINARY: &str = r#"{"task":"binary","label_column":"y","score_column":"s",
        "positive_label":"yes","reference_chunk_rows":2}"#;

    fn reference() -> Batch {
        batch(
            &[0.9, 0.2, 0.7, 0.4, 0.8, 0.1],
            Some(&["yes", "no", "yes", "yes", "no", "no"]),
        )
    }

    #[test]
    fn config_errors_name_the_key() {
        let r = reference();
        for (json, key) in [
            (r#"{"task":"binary","label_column":"y"}"#, "score_column"),
            (
                r#"{"task":"multiclass","label_column":"y","score_columns":{"a":"s"}}"#,
                "score_columns",
            ),
            (
                r#"{"task":"regression","label_column":"y","prediction_column":"s","positive_label":1}"#,
                "positive_label",
            ),
            (
                r#"{"task":"binary","label_column":"y","score_column":"s","thresholds":{"f1":[0.9,0.1]}}"#,
                "thresholds",
            ),
            (
                r#"{"task":"binary","label_column":"y","score_column":"s","metrics":[]}"#,
                "metrics",
            ),
            (
                r#"{"task":"binary","label_column":"y","score_column":"s","min_coverage":2}"#,
                "min_coverage",
            ),
            // Labels `yes`/`no`: neither `true` nor `1`, so say which.
            (
                r#"{"task":"binary","label_column":"y","score_column":"s"}"#,
                "positive_label",
            ),
        ] {
            let e = PerformanceMonitor::new(cfg(json), &r).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{json}: {e}");
            assert!(e.to_string().contains(&format!("`{key}`")), "{json}: {e}");
        }
        let e = PerformanceMonitor::new(cfg(BINARY), &batch(&[0.1], Some(&[""]))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Reference);
        assert!(e.to_string().contains("no labelled row"), "{e}");
        let e = PerformanceMonitor::new(
            cfg(BINARY),
            &batch(&[0.1, 0.2, 0.3], Some(&["yes", "no", "maybe"])),
        )
        .unwrap_err();
        assert!(e.to_string().contains("a third class `maybe`"), "{e}");
    }

    #[test]
    fn windows_match_analyse_fixed_bounds_and_a_bad_batch_changes_nothing() {
        let json = r#"{"task":"binary","label_column":"y","score_column":"s",
            "positive_label":"yes","reference_chunk_rows":2,"metrics":["accuracy","f1"],
            "thresholds":{"f1":[0.95,1.0]}}"#;
        let mut m = PerformanceMonitor::new(cfg(json), &reference()).unwrap();
        assert_eq!(m.bounds()["f1"], [0.95, 1.0]);
        assert!(m.estimates());
        m.observe(&batch(&[0.9, 0.3], Some(&["yes", ""]))).unwrap();
        m.observe(&batch(&[0.6, 0.55], None)).unwrap();
        let before = m.snapshot().unwrap();
        let e = m.observe(&batch(&[0.2, 1.2], None)).unwrap_err();
        assert_eq!((e.column(), e.row()), (Some("s"), Some(1)));
        assert_eq!(m.snapshot().unwrap(), before);
        let e = m
            .observe(&batch(&[0.2, 0.3], Some(&["no", "maybe"])))
            .unwrap_err();
        assert!(e.to_string().contains("a third class `maybe`"), "{e}");
        assert_eq!(m.snapshot().unwrap(), before);
        let r = m.report().unwrap();
        assert_eq!(r.rows, 4);
        // Only the configured metrics; f1 judged on its estimate (coverage
        // 0.25 < 0.5) against the fixed bounds, and below them.
        let names: std::collections::BTreeSet<&str> =
            r.metrics.iter().map(|x| x.name.as_str()).collect();
        assert!(
            !names.contains("roc_auc") && names.contains("f1"),
            "{names:?}"
        );
        let f1 = r
            .metrics
            .iter()
            .find(|x| x.column.as_deref() == Some("estimated") && x.name == "f1")
            .unwrap();
        assert_eq!((f1.threshold, f1.alert), (Some(0.95), f1.value < 0.95));
        // The same rows through analyse.
        let chunk = m.chunk().unwrap().unwrap();
        assert_eq!(chunk.labelled, 1);
        assert_eq!(chunk.alerts.contains(&"f1".to_owned()), f1.alert);
        // A restored window is the same window, numbers bit for bit.
        let mut other = PerformanceMonitor::new(cfg(json), &reference()).unwrap();
        other.restore(&before).unwrap();
        assert_eq!(other.report().unwrap(), r);
        let e = other.restore(b"{\"version\":1}").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::State);
    }

    #[test]
    fn numbers_survive_the_snapshot_exactly() {
        let values = [0.1 + 0.2, f64::MIN_POSITIVE, -0.0, 1e300, 1.0 / 3.0];
        let rows = Rows {
            labels: vec![Some(values[0]), None, Some(values[3]), None, Some(1.0)],
            predictions: values.to_vec(),
            scores: vec![values.to_vec()],
            ..Rows::default()
        };
        let text = serde_json::to_string(&rows).unwrap();
        let back: Rows = serde_json::from_str(&text).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.predictions), bits(&values));
        assert_eq!(bits(&back.scores[0]), bits(&values));
        assert_eq!(back.labels, rows.labels);
        assert!(
            serde_json::from_str::<Rows>(
                &text.replace("\"predictions\":\"", "\"predictions\":\"0")
            )
            .is_err()
        );
    }
}
