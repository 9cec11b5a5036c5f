//! `keel feedback import`: labels from a CSV, JSON Lines or Parquet file
//! into the store's label chain, joined to the stored predictions by row id;
//! prints what became of them and the label coverage per version.
//!
//! Bad rows (an empty id, a label of the wrong type for the task, a bad
//! `observed_at`) are counted as errors, each named by file, line and id, and
//! skipped; a malformed line stops the import there. Either way every label
//! accepted before stays accepted, and the exit code is 3 (bad data).

use super::Globals;
use crate::exit::{self, Failure, fail};
use anyhow::{Context, anyhow};
use keel_data::io::{BatchSource, ReadError, SourceBatch};
use keel_ops::feedback::{self, Target};
use keel_ops::record::json_value;
use keel_store::{LabelReport, NewLabel, Store};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Labels read and recorded per label chain entry.
const BATCH_ROWS: usize = 4096;
/// Errors named one by one; the rest are only counted.
const SHOWN_ERRORS: usize = 20;

#[derive(clap::Subcommand)]
pub enum FeedbackCommand {
    /// Import labels (ground truth) for a pipeline's stored predictions.
    Import(ImportArgs),
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The labels: .csv, .jsonl or .parquet, one row per label.
    labels: PathBuf,
    /// The pipeline (`NAME`, or `NAME@VERSION` to match only that version's predictions).
    #[arg(long)]
    pipeline: String,
    /// The column holding each label's row id (the pipeline's `[run] id_column` values,
    /// or `<request-id>:<row>`).
    #[arg(long)]
    id_column: String,
    /// The column holding the truth.
    #[arg(long)]
    label_column: String,
    /// A column holding when each truth was observed (RFC 3339).
    #[arg(long)]
    observed_at_column: Option<String>,
    /// Print the counts and coverage as JSON.
    #[arg(long)]
    json: bool,
}

impl FeedbackCommand {
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        match self {
            FeedbackCommand::Import(args) => args.run(&globals.store()?),
        }
    }
}

/// Totals of one import.
#[derive(Default)]
struct Totals {
    report: LabelReport,
    /// Rows read (accepted or not).
    rows: u64,
    errors: Vec<String>,
    error_count: u64,
    /// A malformed line ended the import.
    stopped: Option<String>,
}

impl Totals {
    fn add(&mut self, r: LabelReport) {
        self.report.accepted += r.accepted;
        self.report.duplicates += r.duplicates;
        self.report.corrections += r.corrections;
        self.report.unmatched.extend(r.unmatched);
    }

    fn error(&mut self, message: String) {
        self.error_count += 1;
        if self.errors.len() < SHOWN_ERRORS {
            self.errors.push(message);
        }
    }
}

impl ImportArgs {
    fn run(self, store: &Store) -> Result<(), Failure> {
        let target = Target::resolve(store, &self.pipeline).map_err(|e| fail(exit::USAGE, e))?;
        let source_name = self.labels.display().to_string();
        let mut totals = Totals::default();
        let mut source = keel_data::io::open(&self.labels, None, BATCH_ROWS)
            .map_err(|e| fail(exit::BAD_DATA, e))?;
        loop {
            match source.next_batch() {
                Ok(Some(b)) => self.import_batch(store, &target, &source_name, &b, &mut totals)?,
                Ok(None) => break,
                Err(e) => {
                    // Keep the rows of the failed batch that come before the bad line.
                    self.salvage(store, &target, &source_name, &mut totals)?;
                    totals.stopped = Some(e.to_string());
                    break;
                }
            }
        }
        let coverage = feedback::coverage(store, &target.pipeline)
            .map_err(|e| fail(exit::FAILURE, e))?
            .into_iter()
            .filter(|(v, _)| target.version.as_ref().is_none_or(|want| want == v))
            .collect::<Vec<_>>();
        let out = if self.json {
            json(&totals, &coverage)?
        } else {
            table(&totals, &coverage)
        };
        out!("{out}");
        for e in &totals.errors {
            errln!("error: {e}");
        }
        if totals.error_count > totals.errors.len() as u64 {
            errln!(
                "error: … and {} more",
                totals.error_count - totals.errors.len() as u64
            );
        }
        if let Some(stop) = &totals.stopped {
            return Err(fail(
                exit::BAD_DATA,
                anyhow!(
                    "{stop} (import stopped; the {} labels recorded before this line stay)",
                    totals.report.accepted + totals.report.corrections
                ),
            ));
        }
        if totals.error_count > 0 {
            return Err(fail(
                exit::BAD_DATA,
                anyhow!(
                    "{}: {} rows had errors and were skipped; the others were imported",
                    source_name,
                    totals.error_count
                ),
            ));
        }
        Ok(())
    }

    /// Checks and records the labels of one batch read from the file.
    fn import_batch(
        &self,
        store: &Store,
        target: &Target,
        source_name: &str,
        b: &SourceBatch,
        totals: &mut Totals,
    ) -> Result<(), Failure> {
        let column = |name: &str| {
            b.batch.column(name).ok_or_else(|| {
                fail(
                    exit::BAD_DATA,
                    anyhow!("{source_name}: there is no column `{name}`"),
                )
            })
        };
        let ids = column(&self.id_column)?;
        let truths = column(&self.label_column)?;
        let observed = match &self.observed_at_column {
            Some(c) => Some(column(c)?),
            None => None,
        };
        let mut labels = Vec::with_capacity(b.batch.rows());
        for i in 0..b.batch.rows() {
            totals.rows += 1;
            let line = b
                .lines
                .get(i)
                .copied()
                .unwrap_or(b.first_row + i as u64 + 1);
            let id = ids.value(i).to_string();
            let at = |m: &str| format!("{source_name}:{line}: id {id:?}: {m}");
            if id.is_empty() {
                totals.error(format!("{source_name}:{line}: the id is empty"));
                continue;
            }
            let truth = match target.truth(&json_value(truths.value(i))) {
                Ok(t) => t,
                Err(m) => {
                    totals.error(at(&m));
                    continue;
                }
            };
            let observed_at = match observed.map(|c| c.value(i)) {
                None | Some(keel_data::Value::Null) => None,
                Some(v) => {
                    let t = v.to_string();
                    if let Err(e) = keel_store::parse_rfc3339(&t) {
                        totals.error(at(&format!("observed_at: {e}")));
                        continue;
                    }
                    Some(t)
                }
            };
            labels.push(NewLabel {
                id,
                truth,
                observed_at,
            });
        }
        let report = target
            .accept(store, source_name, &labels)
            .context("recording the labels")?;
        totals.add(report);
        Ok(())
    }

    /// After a read error: reads the file again a row at a time from the
    /// first row not yet recorded, recording each until the bad line.
    fn salvage(
        &self,
        store: &Store,
        target: &Target,
        source_name: &str,
        totals: &mut Totals,
    ) -> Result<(), Failure> {
        let done = totals.rows;
        let mut source = open_rows(&self.labels)?;
        while let Ok(Some(b)) = source.next_batch() {
            if b.first_row >= done {
                self.import_batch(store, target, source_name, &b, totals)?;
            }
        }
        Ok(())
    }
}

fn open_rows(path: &Path) -> Result<Box<dyn BatchSource>, Failure> {
    keel_data::io::open(path, None, 1).map_err(|e: ReadError| fail(exit::BAD_DATA, e))
}

fn table(t: &Totals, coverage: &[(String, (usize, usize))]) -> String {
    let r = &t.report;
    let mut out = format!(
        "accepted     {}\nduplicates   {}\ncorrections  {}\nunmatched    {}\nerrors       {}\n",
        r.accepted,
        r.duplicates,
        r.corrections,
        r.unmatched.len(),
        t.error_count + u64::from(t.stopped.is_some()),
    );
    if !r.unmatched.is_empty() {
        let shown: Vec<&str> = r.unmatched.iter().take(10).map(String::as_str).collect();
        let more = r.unmatched.len().saturating_sub(shown.len());
        let _ = write!(out, "  unmatched ids: {}", shown.join(", "));
        if more > 0 {
            let _ = write!(out, " … and {more} more");
        }
        out.push('\n');
    }
    for (version, (n, labelled)) in coverage {
        let pct = if *n == 0 {
            0.0
        } else {
            100.0 * *labelled as f64 / *n as f64
        };
        let _ = writeln!(
            out,
            "coverage {version}: {labelled} of {n} predictions labelled ({pct:.1} %)"
        );
    }
    out
}

fn json(t: &Totals, coverage: &[(String, (usize, usize))]) -> Result<String, Failure> {
    let r = &t.report;
    let cov: serde_json::Map<String, serde_json::Value> = coverage
        .iter()
        .map(|(v, (n, labelled))| {
            let c = if *n == 0 {
                0.0
            } else {
                *labelled as f64 / *n as f64
            };
            (
                v.clone(),
                serde_json::json!({"predictions": n, "labelled": labelled, "coverage": c}),
            )
        })
        .collect();
    let v = serde_json::json!({
        "accepted": r.accepted,
        "duplicates": r.duplicates,
        "corrections": r.corrections,
        "unmatched": r.unmatched.len(),
        "unmatched_ids": r.unmatched,
        "errors": t.error_count + u64::from(t.stopped.is_some()),
        "error_messages": t.errors.iter().chain(t.stopped.iter()).collect::<Vec<_>>(),
        "coverage": cov,
    });
    Ok(serde_json::to_string_pretty(&v).map_err(|e| fail(exit::FAILURE, e))? + "\n")
}
