//! Explaining a pipeline's predictions in the user's own columns: Shapley
//! values of an output column with respect to the raw input columns
//! ([`keel_algos::explain`]), the pipeline a black box run in the sandbox.
//! The one sequence behind `keel explain` and the daemon's explain
//! endpoints: choose the background, build each row's coalition batch, run
//! it through the pipeline as one batch, read the output column.

use keel_algos::AlgoError;
use keel_algos::explain::{self as shapley, Link, Method, Options};
use keel_data::io::{BatchWriter, Format};
use keel_data::{Batch, DataError};
use keel_runtime::CallError;
use keel_runtime::pipeline::{Pipeline, Worker};
use keel_store::{AuditRecord, Digest, Receipt, Store};
use serde_json::{Map, Value, json};
use std::path::Path;

/// Background rows sampled from the reference unless told otherwise.
pub const BACKGROUND_ROWS: usize = 100;
/// The seed of the background sample: fixed, so explanations with different
/// KernelSHAP seeds share one background.
const BACKGROUND_SEED: u64 = 0;

/// Why an explanation could not be made, in the classes the CLI's exit
/// codes and the daemon's statuses tell apart.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The request names a column that is not there, a non-numeric output, …
    #[error("{0}")]
    Usage(String),
    /// The rows or the background cannot be used.
    #[error("{0}")]
    Data(String),
    /// The time budget ran out.
    #[error("the explanation ran out of its time budget after {rows} of {total} rows")]
    Budget { rows: usize, total: usize },
    /// The pipeline failed on the coalition batch.
    #[error("running the pipeline on the evaluation rows of row {row}: {error}")]
    Pipeline { row: usize, error: Box<CallError> },
}

impl From<AlgoError> for ExplainError {
    fn from(e: AlgoError) -> ExplainError {
        match e {
            AlgoError::Config { .. } => ExplainError::Usage(e.to_string()),
            _ => ExplainError::Data(e.to_string()),
        }
    }
}

/// What to explain and how.
#[derive(Debug, Clone)]
pub struct Request {
    /// The output column explained.
    pub output: String,
    /// The input columns the values are for; `None`: every input column.
    pub features: Option<Vec<String>>,
    pub options: Options,
    /// When to give up (the daemon's time budget); checked before each
    /// row's batch, whose own stages are bounded by their limits.
    pub deadline: Option<std::time::Instant>,
}

/// The rows an explanation compares against, with the digest that names it.
#[derive(Debug, Clone)]
pub struct Background {
    pub batch: Batch,
    /// `sha256:<hex>` of the batch as keel writes it as CSV.
    pub digest: Digest,
}

impl Background {
    /// A background used whole (a `--background` file).
    pub fn whole(batch: Batch) -> Result<Background, ExplainError> {
        let digest = csv_digest(&batch)?;
        Ok(Background { batch, digest })
    }

    /// A fixed-seed sample of `rows` rows of the pipeline's reference.
    pub fn reference(pipeline: &Pipeline, rows: usize) -> Result<Background, ExplainError> {
        let reference = pipeline.input_reference().ok_or_else(|| {
            ExplainError::Usage(format!(
                "pipeline `{}` has no reference data to draw a background from; give one with --background",
                pipeline.spec().name
            ))
        })?;
        Background::whole(shapley::sample_rows(reference, rows, BACKGROUND_SEED))
    }

    /// A background file, read with the pipeline's input schema.
    pub fn file(pipeline: &Pipeline, path: &Path) -> Result<Background, ExplainError> {
        let batch = keel_data::io::read_all(path, pipeline.input_schema())
            .map_err(|e| ExplainError::Data(format!("background {}: {e}", path.display())))?;
        Background::whole(batch)
    }
}

/// The canonical bytes of a batch: keel's CSV encoding.
fn csv_digest(batch: &Batch) -> Result<Digest, ExplainError> {
    let (w, hash) = crate::Hashing::new(std::io::sink());
    let mut writer = BatchWriter::new(Box::new(w), Format::Csv, Path::new("<background>"));
    writer
        .write(batch)
        .and_then(|()| writer.finish())
        .map_err(|e| ExplainError::Data(format!("encoding the background: {e}")))?;
    crate::finish(&hash).ok_or_else(|| ExplainError::Data("hashing the background".into()))
}

/// The explanation of one row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowExplanation {
    /// The output for the row.
    pub prediction: f64,
    /// `v(∅)`: with every feature from the background (columns that are not
    /// features keep the row's values, so it is per row).
    pub base_value: f64,
    /// One value per feature.
    pub shap: Vec<f64>,
}

/// An explanation of some rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    pub output: String,
    /// The method used (`auto` resolved).
    pub method: Method,
    pub link: Link,
    /// KernelSHAP's budget as asked (`None`: the default), and its seed.
    pub nsamples: Option<usize>,
    pub seed: u64,
    pub background_rows: usize,
    pub background_digest: Digest,
    /// Whether the features are every input column (the base value is then the same for every row).
    pub all_columns: bool,
    pub features: Vec<String>,
    pub rows: Vec<RowExplanation>,
}

impl Explained {
    /// Mean |φ| per feature over the rows.
    pub fn importance(&self) -> Vec<f64> {
        let n = self.rows.len().max(1) as f64;
        (0..self.features.len())
            .map(|j| self.rows.iter().map(|r| r.shap[j].abs()).sum::<f64>() / n)
            .collect()
    }

    /// The base value shared by every row, when there is one.
    pub fn base_value(&self) -> Option<f64> {
        let first = self.rows.first()?.base_value;
        (self.all_columns || self.rows.iter().all(|r| r.base_value == first)).then_some(first)
    }

    /// `{"output", "method", "link", "background": {"rows", "digest"},
    /// "base_value", "rows": [{"prediction", "shap": {column: value}}],
    /// "importance": {column: mean |φ|}}`; rows carry their own
    /// `base_value` when it differs between them (features a subset of the columns).
    pub fn to_json(&self) -> Value {
        let by_feature = |values: &[f64]| -> Value {
            Value::Object(
                self.features
                    .iter()
                    .zip(values)
                    .map(|(f, v)| (f.clone(), json!(v)))
                    .collect::<Map<_, _>>(),
            )
        };
        let shared = self.base_value();
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut o = json!({"prediction": r.prediction, "shap": by_feature(&r.shap)});
                if shared.is_none() {
                    o["base_value"] = json!(r.base_value);
                }
                o
            })
            .collect();
        json!({
            "output": self.output,
            "method": self.method.name(),
            "link": self.link.name(),
            "background": {"rows": self.background_rows, "digest": self.background_digest.to_string()},
            "base_value": shared,
            "rows": rows,
            "importance": by_feature(&self.importance()),
        })
    }
}

/// The features: the request's, checked against the rows, or every column.
fn features(rows: &Batch, request: &Request) -> Result<Vec<String>, ExplainError> {
    let columns: Vec<&str> = rows.columns().iter().map(|c| c.name.as_str()).collect();
    let Some(wanted) = &request.features else {
        return Ok(columns.iter().map(|c| c.to_string()).collect());
    };
    if wanted.is_empty() {
        return Err(ExplainError::Usage("--features names no column".into()));
    }
    for (i, f) in wanted.iter().enumerate() {
        if !columns.contains(&f.as_str()) {
            return Err(ExplainError::Usage(format!(
                "feature `{f}` is not an input column (the input has: {})",
                columns.join(", ")
            )));
        }
        if wanted[..i].contains(f) {
            return Err(ExplainError::Usage(format!("feature `{f}` is named twice")));
        }
    }
    Ok(wanted.clone())
}

/// The output column's values for the evaluation rows: numeric, no nulls.
fn outputs(batch: &Batch, output: &str, rows: usize) -> Result<Vec<f64>, ExplainError> {
    if batch.rows() != rows {
        return Err(ExplainError::Data(format!(
            "the pipeline returned {} rows for {rows} evaluation rows; explanations need one output row \
             per input row (a validator with policy `reject`, or a stage that drops rows?)",
            batch.rows()
        )));
    }
    let column = batch.column(output).ok_or_else(|| {
        let names: Vec<&str> = batch.columns().iter().map(|c| c.name.as_str()).collect();
        ExplainError::Usage(format!(
            "the pipeline has no output column `{output}` (it outputs: {})",
            names.join(", ")
        ))
    })?;
    let values = column.numeric().map_err(|e| match e {
        DataError::NotNumeric { found, .. } => ExplainError::Usage(format!(
            "output `{output}` is {found}, not numeric: explanations are of a numeric output (a score or probability)"
        )),
        e => ExplainError::Data(e.to_string()),
    })?;
    if let Some(i) = (0..batch.rows()).find(|&i| !column.is_valid(i)) {
        return Err(ExplainError::Data(format!(
            "output `{output}` is null for evaluation row {i}"
        )));
    }
    Ok(values.into_owned())
}

/// Checks the output column against the pipeline's known outputs, before any work.
fn check_output(pipeline: &Pipeline, output: &str) -> Result<(), ExplainError> {
    let Some(columns) = pipeline.output_columns() else {
        return Ok(());
    };
    match columns.iter().find(|(name, _)| name == output) {
        Some((_, t)) if !t.is_numeric() => Err(ExplainError::Usage(format!(
            "output `{output}` is {t}, not numeric: explanations are of a numeric output (a score or probability)"
        ))),
        Some(_) => Ok(()),
        None => Err(ExplainError::Usage(format!(
            "the pipeline has no output column `{output}` (it outputs: {})",
            columns
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Explains every row of `rows`: each row's coalitions × background rows
/// go through `worker`'s pipeline as one batch.
pub fn explain<P: std::ops::Deref<Target = Pipeline>>(
    worker: &mut Worker<P>,
    rows: &Batch,
    background: &Background,
    request: &Request,
) -> Result<Explained, ExplainError> {
    check_output(worker.pipeline(), &request.output)?;
    let features = features(rows, request)?;
    let b = background.batch.rows();
    let mut explained = Vec::with_capacity(rows.rows());
    let mut method = request.options.method.resolve(features.len());
    for row in 0..rows.rows() {
        if request
            .deadline
            .is_some_and(|d| std::time::Instant::now() >= d)
        {
            return Err(ExplainError::Budget {
                rows: row,
                total: rows.rows(),
            });
        }
        let e = shapley::explain(features.len(), b, &request.options, |masks| {
            let batch = shapley::coalition_batch(rows, row, &background.batch, &features, masks)?;
            let n = batch.rows();
            let processed = worker
                .process(batch, 0)
                .map_err(|e| ExplainError::Pipeline {
                    row,
                    error: Box::new(e.error),
                })?;
            outputs(&processed.output, &request.output, n)
        })
        .map_err(|e| match e {
            ExplainError::Data(m) => ExplainError::Data(format!("row {row}: {m}")),
            e => e,
        })?;
        method = e.method;
        explained.push(RowExplanation {
            prediction: e.prediction,
            base_value: e.base_value,
            shap: e.shap,
        });
    }
    Ok(Explained {
        output: request.output.clone(),
        method,
        link: request.options.link,
        nsamples: request.options.nsamples,
        seed: request.options.seed,
        background_rows: b,
        background_digest: background.digest.clone(),
        all_columns: features.len() == rows.columns().len(),
        features,
        rows: explained,
    })
}

/// The input of a recorded prediction (every row, or row `row`), read as
/// the pipeline reads its input; an error naming the record when its
/// payload was not retained or `row` is past its rows.
pub fn recorded_rows(
    store: &Store,
    record: &AuditRecord,
    pipeline: &Pipeline,
    row: Option<usize>,
) -> Result<Batch, ExplainError> {
    let id = &record.id;
    let payload = store
        .payload(&record.input_digest)
        .map_err(|e| ExplainError::Data(format!("record {id}: reading its input: {e}")))?
        .ok_or_else(|| {
            ExplainError::Data(format!(
                "record {id}: its input payload ({}) was not retained (the store's retention \
                 policy keeps payloads only for some pipelines and records), so it cannot be explained",
                record.input_digest.short()
            ))
        })?;
    let format = if payload.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        Format::JsonLines
    } else {
        Format::Csv
    };
    let name = Path::new("<recorded input>");
    let bad = |e: keel_data::io::ReadError| ExplainError::Data(format!("record {id}: {e}"));
    let mut source = keel_data::io::open_reader(
        name,
        format,
        Box::new(std::io::Cursor::new(payload)),
        pipeline.input_schema(),
        usize::MAX,
    )
    .map_err(bad)?;
    let mut rows = Batch::default();
    while let Some(b) = source.next_batch().map_err(bad)? {
        rows.append(b.batch)
            .map_err(|e| ExplainError::Data(format!("record {id}: {e}")))?;
    }
    match row {
        Some(n) if n >= rows.rows() => Err(ExplainError::Usage(format!(
            "record {id} has {} input rows; row {n} is past them",
            rows.rows()
        ))),
        Some(n) => Ok(rows.slice(n, n + 1)),
        None => Ok(rows),
    }
}

/// Appends the explanation of `of`'s prediction to the audit chain, linked
/// to it by id, with everything needed to reproduce it; returns the receipt.
pub fn record(
    store: &Store,
    of: &AuditRecord,
    row: Option<usize>,
    explained: &Explained,
) -> anyhow::Result<Receipt> {
    let values = serde_json::to_vec(&explained.to_json())?;
    let mut r = AuditRecord::new(of.pipeline.clone(), of.input_digest.clone());
    r.stages = of.stages.clone();
    r.rows_in = explained.rows.len() as u64;
    r.rows_out = explained.rows.len() as u64;
    r.output_digest = Some(Digest::of(&values));
    r.explanation = Some(json!({
        "explains": of.id,
        "row": row,
        "output": explained.output,
        "method": explained.method.name(),
        "link": explained.link.name(),
        "seed": explained.seed,
        "nsamples": explained.nsamples,
        "features": explained.features,
        "background": {"rows": explained.background_rows, "digest": explained.background_digest.to_string()},
        "values_digest": Digest::of(&values).to_string(),
    }));
    Ok(store.append(r)?)
}
