//! `keel performance`: is the model still right? Realized metrics of a
//! file of predictions once labels are known (in the file, or joined from a
//! labels file by id), CBPE estimates where they are not yet, and alert
//! bounds from a labelled reference; per chunk of rows, per segment and
//! overall, through `keel_algos::performance`. The report is a table, the
//! issue's JSON, or a self-contained HTML page. With `--pipeline P[@V]`
//! instead of a file, the predictions are the ones the store holds for that
//! version, left-joined to the labels `keel feedback` recorded, in the order
//! they were made.

mod input;
mod table;
mod task;

use crate::exit::{self, Failure, fail};
use anyhow::Context;
use input::{Cells, Join, Table};
use keel_algos::performance::{PerformanceOptions, PerformanceReport, Task};
use std::path::{Path, PathBuf};
use task::Roles;

/// Output formats.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Html,
}

/// The task, as `--task` names it.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TaskArg {
    Binary,
    Multiclass,
    Regression,
}

/// Arguments of `keel performance`.
#[derive(clap::Args)]
pub struct PerformanceArgs {
    /// The predictions: .csv, .jsonl/.ndjson or .parquet, one row per
    /// prediction, chunked in file order (or --pipeline).
    #[arg(required_unless_present = "pipeline")]
    pub analysis: Option<PathBuf>,
    /// Analyse the predictions the store holds for this pipeline version
    /// (`NAME@VERSION`; `NAME`: its newest version with predictions), joined
    /// to the labels `keel feedback` recorded, in the order they were made.
    /// The id column is --id-column, the truth --label-column.
    #[arg(long, conflicts_with_all = ["analysis", "labels"])]
    pub pipeline: Option<String>,
    /// Labels that arrived later: id and label columns, left-joined onto the
    /// predictions by id (the last label of an id counts; labels whose id
    /// matches no prediction are counted as `unmatched`). Without it, labels
    /// come from the predictions' own label column (empty = not yet known).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// A labelled reference (same columns as the predictions, labels
    /// included): alert bounds from its chunks, and CBPE estimates.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Id of each prediction (and of each label in --labels).
    #[arg(long)]
    pub id_column: String,
    /// The true value.
    #[arg(long)]
    pub label_column: String,
    /// Binary: the probability of the positive class. Multiclass: the prefix
    /// of the class probability columns (`p_` for `p_cat`, `p_dog`, …).
    #[arg(long)]
    pub score_column: Option<String>,
    /// The predicted class or value (binary default: score >= 0.5;
    /// multiclass default: the most probable class).
    #[arg(long)]
    pub prediction_column: Option<String>,
    /// Regression: a feature of the model (repeatable); with a labelled
    /// --reference, DLE estimates MAE, RMSE and MAPE of chunks before labels.
    #[arg(long = "feature-column")]
    pub feature_columns: Vec<String>,
    /// The task (default: inferred from the labels and score columns).
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
    /// The positive class of binary labels (default `true`, else `1`).
    #[arg(long)]
    pub positive_label: Option<String>,
    /// Rows per chunk, in file order, also for the reference (default: a
    /// tenth of the predictions).
    #[arg(long)]
    pub chunk_size: Option<usize>,
    /// A column whose values split the rows into segments (region, say).
    #[arg(long)]
    pub segment_column: Option<String>,
    /// Labelled rows a segment needs before its metrics are reported.
    #[arg(long, default_value_t = 30)]
    pub min_segment_labelled: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Why the analysis failed, for the exit code.
#[derive(Debug)]
pub enum Error {
    Usage(anyhow::Error),
    Data(anyhow::Error),
    Other(anyhow::Error),
}

/// The report and what was joined to build it.
pub struct Outcome {
    pub report: PerformanceReport,
    /// Label ids that match no prediction (0 without --labels).
    pub unmatched: usize,
    /// Label rows overridden by a later label of the same id.
    pub duplicates: usize,
    /// Chunks the reference made, when there is one.
    pub reference_chunks: Option<usize>,
    pub chunk_size: usize,
}

impl PerformanceArgs {
    /// The HTML page: the report and where it came from.
    fn page(&self, out: &Outcome) -> String {
        let path = |p: &std::path::Path| p.display().to_string();
        let files = [("labels", &self.labels), ("reference", &self.reference)]
            .into_iter()
            .filter_map(|(role, f)| f.as_deref().map(|f| (role, path(f))))
            .collect();
        let optional = [
            ("score", &self.score_column),
            ("prediction", &self.prediction_column),
            ("segment", &self.segment_column),
        ];
        let mut columns = vec![
            ("id", self.id_column.clone()),
            ("label", self.label_column.clone()),
        ];
        columns.extend(
            optional
                .into_iter()
                .filter_map(|(role, c)| c.clone().map(|c| (role, c))),
        );
        keel_report::render_performance_html(&keel_report::PerformancePage {
            report: &out.report,
            analysis: self.source_name(),
            files,
            columns,
            unmatched: out.unmatched,
            chunk_size: out.chunk_size,
        })
    }

    /// What the predictions are: the file, or `store: P@V`.
    fn source_name(&self) -> String {
        match (&self.analysis, &self.pipeline) {
            (Some(p), _) => p.display().to_string(),
            (None, p) => format!("store: {}", p.as_deref().unwrap_or_default()),
        }
    }

    /// Prints or writes the report.
    pub fn run(self, globals: &super::Globals) -> Result<(), Failure> {
        let stored = match &self.pipeline {
            Some(p) => Some(stored_predictions(
                &globals.store()?,
                p,
                &self.id_column,
                &self.label_column,
            )?),
            None => None,
        };
        let out = self.analyse(stored).map_err(|e| match e {
            Error::Usage(e) => fail(exit::USAGE, e),
            Error::Data(e) => exit::data_failure(e),
            Error::Other(e) => fail(exit::FAILURE, e),
        })?;
        if let Some(n) = out.reference_chunks.filter(|n| *n < 5) {
            errln!(
                "warning: the reference makes {n} chunk(s) of {} rows; bounds from fewer than 5 \
                 chunks are too narrow or missing: use a smaller --chunk-size or a larger reference",
                out.chunk_size
            );
        }
        if out.duplicates > 0 {
            errln!(
                "note: {} label(s) replaced by a later label of the same id (the last one counts)",
                out.duplicates
            );
        }
        let text = match self.format {
            Format::Json => serde_json::to_string_pretty(&json(&out)?)? + "\n",
            Format::Table => table::render(Path::new(&self.source_name()), &out),
            Format::Html => self.page(&out),
        };
        match &self.output {
            Some(path) => {
                std::fs::write(path, &text)
                    .with_context(|| format!("writing {}", path.display()))?;
                errln!("{}: written", path.display());
            }
            None => out!("{text}"),
        }
        Ok(())
    }

    fn roles(&self) -> Roles<'_> {
        Roles {
            features: &self.feature_columns,
            score: self.score_column.as_deref(),
            prediction: self.prediction_column.as_deref(),
            positive: self.positive_label.as_deref(),
        }
    }

    /// Reads, joins and analyses. Errors are tagged for exit codes by the caller.
    fn analyse(&self, stored: Option<Table>) -> Result<Outcome, Error> {
        if self.score_column.is_none() && self.prediction_column.is_none() {
            return Err(Error::Usage(anyhow::anyhow!(
                "name the model's output: --score-column and/or --prediction-column"
            )));
        }
        if self.chunk_size == Some(0) {
            return Err(Error::Usage(anyhow::anyhow!(
                "--chunk-size must be at least 1"
            )));
        }
        let started = std::time::Instant::now();
        let (analysis, labels, reference) = read_all(self, stored)?;
        tracing::info!(elapsed = ?started.elapsed(), rows = analysis.rows(), "files read");
        let roles = self.roles();
        let id = analysis.column(&self.id_column, "--id-column")?;
        let (cells, join) = match &labels {
            Some(l) => {
                let label_id = l.column(&self.id_column, "--id-column")?;
                let label = l.column(&self.label_column, "--label-column")?;
                let join = input::join(&analysis, id, l, label_id, label)?;
                (Cells::of(l, label), Some(join))
            }
            None => {
                let label = analysis.column(&self.label_column, "--label-column")?;
                (Cells::of(&analysis, label), None)
            }
        };
        let cells = Cells {
            rows: join.as_ref().map(|j| j.rows.as_slice()),
            ..cells
        };
        tracing::info!(elapsed = ?started.elapsed(), "labels joined");
        let task = task::infer(self.task.map(task_of), &analysis, cells, &roles)?;
        let reference_cells = match &reference {
            Some(r) => Some(Cells::of(
                r,
                r.column(&self.label_column, "--label-column")?,
            )),
            None => None,
        };
        let mut all = vec![cells];
        all.extend(reference_cells);
        if let Some(p) = &self.prediction_column {
            all.push(Cells::of(
                &analysis,
                analysis.column(p, "--prediction-column")?,
            ));
            if let Some(r) = &reference {
                all.push(Cells::of(r, r.column(p, "--prediction-column")?));
            }
        }
        let plan = task::plan(task, &analysis, &all, &roles)?;
        let data = task::build(&plan, &analysis, cells, &roles)?;
        let reference_data = match (&reference, reference_cells) {
            (Some(r), Some(c)) => Some(task::build(&plan, r, c, &roles)?),
            _ => None,
        };
        let segments = match &self.segment_column {
            Some(s) => Some(segment_values(&analysis, s)?),
            None => None,
        };
        tracing::info!(elapsed = ?started.elapsed(), "columns typed");
        let chunk_size = self
            .chunk_size
            .unwrap_or_else(|| analysis.rows().div_ceil(10).max(1));
        let mut options = PerformanceOptions::new(chunk_size);
        options.min_segment_labelled = self.min_segment_labelled;
        let columns = data.columns();
        let reference_columns = reference_data.as_ref().map(|r| r.columns());
        let reference_view = match (&reference_data, &reference_columns) {
            (Some(r), Some(c)) => Some(r.data(c)),
            _ => None,
        };
        let segment_refs: Option<Vec<Option<&str>>> = segments
            .as_ref()
            .map(|v| v.iter().map(|s| s.as_deref()).collect());
        let report = keel_algos::performance::analyse(
            &data.data(&columns),
            reference_view.as_ref(),
            segment_refs.as_deref(),
            &options,
        )
        .map_err(|e| algo_error(e, self))?;
        tracing::info!(elapsed = ?started.elapsed(), "analysed");
        let Join {
            unmatched,
            duplicates,
            ..
        } = join.unwrap_or(Join {
            rows: Vec::new(),
            unmatched: 0,
            duplicates: 0,
        });
        Ok(Outcome {
            report,
            unmatched,
            duplicates,
            reference_chunks: reference.as_ref().map(|r| r.rows().div_ceil(chunk_size)),
            chunk_size,
        })
    }
}

/// The task as `--task` and the JSON spell it.
fn task_name(t: Task) -> &'static str {
    match t {
        Task::Binary => "binary",
        Task::Multiclass => "multiclass",
        Task::Regression => "regression",
    }
}

fn task_of(t: TaskArg) -> Task {
    match t {
        TaskArg::Binary => Task::Binary,
        TaskArg::Multiclass => Task::Multiclass,
        TaskArg::Regression => Task::Regression,
    }
}

/// Reads the predictions, labels and reference files at once (one thread each).
fn read_all(
    args: &PerformanceArgs,
    stored: Option<Table>,
) -> Result<(Table, Option<Table>, Option<Table>), Error> {
    let read = |p: &Path| Table::read(p).map_err(|e| Error::Data(e.into()));
    let read_opt = |p: &Option<PathBuf>| p.as_deref().map(read).transpose();
    std::thread::scope(|s| {
        let labels = s.spawn(|| read_opt(&args.labels));
        let reference = s.spawn(|| read_opt(&args.reference));
        let analysis = match (stored, &args.analysis) {
            (Some(t), _) => Ok(t),
            (None, Some(p)) => read(p),
            (None, None) => Err(Error::Usage(anyhow::anyhow!(
                "name the predictions: a file, or --pipeline"
            ))),
        };
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<Option<Table>, Error>>| {
            h.join()
                .unwrap_or_else(|_| Err(Error::Other(anyhow::anyhow!("a reader panicked"))))
        };
        let (labels, reference) = (join(labels), join(reference));
        Ok((analysis?, labels?, reference?))
    })
}

/// The predictions the store holds for `reference` (`P@V`, or `P`: its
/// newest version with predictions) left-joined to their labels, as a table
/// whose id column is `id_column` and whose truth is `label_column`.
fn stored_predictions(
    store: &keel_store::Store,
    reference: &str,
    id_column: &str,
    label_column: &str,
) -> Result<Table, Failure> {
    let (name, version) = match reference.rsplit_once('@') {
        Some((n, v)) => (n, v.to_owned()),
        None => {
            let versions = keel_ops::feedback::coverage(store, reference)
                .map_err(|e| fail(exit::FAILURE, e))?;
            let newest = versions
                .into_keys()
                .max_by(|a, b| keel_store::compare_versions(a, b));
            let v = newest.ok_or_else(|| {
                fail(
                    exit::USAGE,
                    anyhow::anyhow!("pipeline `{reference}` has no stored predictions"),
                )
            })?;
            (reference, v)
        }
    };
    let joined = keel_ops::feedback::joined(store, name, &version, label_column, true)
        .map_err(|e| fail(exit::FAILURE, e))?;
    if joined.predictions == 0 {
        return Err(fail(
            exit::USAGE,
            anyhow::anyhow!("{name}@{version} has no stored predictions"),
        ));
    }
    errln!(
        "{name}@{version}: {} predictions, {} labelled ({:.1} % label coverage)",
        joined.predictions,
        joined.labelled,
        100.0 * joined.coverage()
    );
    let mut columns = joined.batch.into_columns();
    for c in &mut columns {
        if c.name == keel_ops::feedback::ID_COLUMN {
            c.name = id_column.to_owned();
        }
    }
    let batch = keel_data::Batch::from_columns(columns).map_err(|e| fail(exit::FAILURE, e))?;
    Ok(Table::from_batch(
        PathBuf::from(format!("store: {name}@{version}")),
        batch,
    ))
}

/// The segment of each row: its value in column `name` as text, `None` when empty.
fn segment_values(analysis: &Table, name: &str) -> Result<Vec<Option<String>>, Error> {
    let c = analysis.column(name, "--segment-column")?;
    Ok((0..analysis.rows())
        .map(|i| input::key(c, i).map(|k| k.to_string()))
        .collect())
}

/// An error of the algorithms, naming the file it is about.
fn algo_error(e: keel_algos::AlgoError, args: &PerformanceArgs) -> Error {
    match e.kind() {
        keel_algos::ErrorKind::Config => Error::Usage(anyhow::anyhow!("{e}")),
        keel_algos::ErrorKind::Reference => Error::Data(anyhow::anyhow!(
            "{}: {e}",
            args.reference
                .as_deref()
                .unwrap_or(Path::new("reference"))
                .display()
        )),
        _ => Error::Data(anyhow::anyhow!("{}: {e}", args.source_name())),
    }
}

/// The JSON: the report, and `unmatched` labels.
pub fn json(out: &Outcome) -> serde_json::Result<serde_json::Value> {
    let mut v = serde_json::to_value(&out.report)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("unmatched".into(), out.unmatched.into());
    }
    Ok(v)
}
