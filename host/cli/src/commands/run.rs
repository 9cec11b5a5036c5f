//! `keel run`: a pipeline (a spec file, a bundle written by `keel compile`,
//! or a version deployed in the store) over a data file. The output is
//! written and hashed, monitor state carries over between runs, and the run
//! is recorded in the audit log before it is acknowledged.

use super::Globals;
use crate::bundle;
use crate::exit::{self, Failure, fail};
use crate::render;
use anyhow::Context;
use keel_data::io::{BatchSource, BatchWriter, Format};
use keel_ops::source::{self, Source, SourceError, Spec, Trust};
use keel_ops::{Ending, Hashing};
use keel_runtime::alert::{Alert, AlertSink, AlertSpec, Delivery};
use keel_runtime::pipeline::{
    LoadError, MonitorState, Pipeline, PluginDirs, RunError, RunOptions, RunSummary,
};
use keel_runtime::{Outcome, Runtime};
use keel_store::{Digest, MonitorVerdict, Store};
use sha2::Sha256;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The pipeline: a spec file (TOML), or NAME[@VERSION] deployed in the store.
    pipeline: PathBuf,
    /// Input data: .csv, .jsonl or .ndjson.
    #[arg(short, long)]
    input: PathBuf,
    /// Where to write the output (.csv / .jsonl; `-` for CSV on stdout).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Directories searched for `plugin = "name"` as name.wasm (repeatable).
    #[arg(long = "plugin-dir", env = "KEEL_PLUGIN_PATH", value_delimiter = ':')]
    plugin_dirs: Vec<PathBuf>,
    /// Rows per batch (default: the spec's `run.batch_size`).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Worker threads (default: the spec's `run.workers`, else the number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    summary_json: Option<PathBuf>,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
    /// Do not record this run in the audit log (and do not open the store).
    #[arg(long)]
    no_audit: bool,
    /// Start windowed monitors afresh instead of carrying on the window and
    /// alerts saved in the store by the previous run of this pipeline version.
    #[arg(long)]
    fresh_monitors: bool,
    /// When the run fails part way, keep what the monitors saw of the rows
    /// before the failure (their alerts, windows and saved state). Without
    /// it a failed run moves no monitor state and raises no alert.
    #[arg(long)]
    partial: bool,
}

impl RunArgs {
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        let rt = runtime_for(&self.pipeline, globals)?;
        // The store is opened first: a locked or unreadable store should stop the
        // run before any work, not after it, when the record could not be kept.
        let store = if self.no_audit {
            None
        } else {
            Some(globals.store()?)
        };
        // A spec file, or a version deployed in the store, written out to a
        // scratch directory with its reference files; under a trust policy a
        // spec file's plugins are checked before any of them is instantiated.
        let scratch = tempfile::tempdir().context("creating a scratch directory")?;
        let source = source::open(
            Spec::Arg(self.pipeline.clone()),
            store.as_ref(),
            PluginDirs(self.plugin_dirs.clone()),
            scratch.path(),
            Trust::Enforce,
        )
        .map_err(source_failure)?;
        let pipeline = load(rt, &source)?;
        // The digest recorded is the one a deploy of this spec gets. Computed
        // after loading, which has already resolved (and named any failure in)
        // every plugin and file it reads.
        let spec_text = match &store {
            Some(_) => source.canonical_text().map_err(source_failure)?,
            None => String::new(),
        };
        let batch_size = self.batch_size.unwrap_or(pipeline.batch_size());
        let input = keel_data::io::open(&self.input, pipeline.input_schema(), batch_size)
            .map_err(exit::read_failure)?;
        let total_bytes = std::fs::metadata(&self.input).map(|m| m.len()).unwrap_or(0);
        let audit = match &store {
            Some(store) => Some(Audit::start(store, &pipeline, spec_text, &self.input)?),
            None => None,
        };
        let output = open_output(self.output.as_deref())?;
        let bar = render::progress_bar(total_bytes, self.quiet);
        let resume = match (&audit, self.fresh_monitors) {
            (Some(audit), false) => audit.resume(&pipeline)?,
            _ => Default::default(),
        };
        let held = Arc::new(HeldAlerts::default());
        let options = RunOptions {
            batch_size: Some(batch_size),
            workers: self.workers,
            resume,
            alerts: held.clone(),
        };
        let mut predictions = audit.as_ref().map(|a| Predictions {
            plan: keel_ops::record::PredictionPlan::of(pipeline.spec()),
            record_id: a.record_id.clone(),
            rows: Vec::new(),
        });
        let (result, output_digest) = execute(
            &pipeline,
            input,
            &options,
            output,
            &bar,
            predictions.as_mut(),
        );
        let ending = ending(&result);
        let judged = result.is_ok() || self.partial;
        let (mut summary, failure) = settle(result)?;
        if judged {
            held.deliver(&mut summary);
        } else {
            set_aside(&mut summary);
        }
        errln!(
            "{}",
            render::summary(&pipeline, &summary, &self.input, self.output.as_deref())
        );
        if let Some(audit) = audit {
            let rows = predictions.map(|p| p.rows).unwrap_or_default();
            audit.record(&pipeline, &summary, output_digest, &ending, judged, rows)?;
        }
        if let Some(path) = &self.summary_json {
            let json = render::summary_json(&pipeline, &summary);
            std::fs::write(path, serde_json::to_string_pretty(&json)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        match failure {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }
}

/// The runtime for `keel run SPEC`: a bundle written by `keel compile`
/// loads its artifacts and compiles nothing.
fn runtime_for(spec: &Path, globals: &Globals) -> Result<Arc<Runtime>, Failure> {
    match bundle::detect(spec).map_err(|e| fail(exit::USAGE, e))? {
        Some((dir, manifest)) => {
            let options = bundle::runtime_options(globals.runtime_options(), &dir, &manifest)
                .map_err(|e| fail(exit::USAGE, e))?;
            Ok(Arc::new(
                Runtime::new(options).context("starting the runtime")?,
            ))
        }
        None => globals.runtime(),
    }
}

pub(crate) fn source_failure(e: SourceError) -> Failure {
    match e {
        SourceError::NoStore(reference) => fail(
            exit::USAGE,
            anyhow::anyhow!(
                "{reference}: no such file, and --no-audit leaves no store to look it up in"
            ),
        ),
        SourceError::Usage(e) => fail(exit::USAGE, e),
        SourceError::Other(e) => fail(exit::FAILURE, e),
    }
}

/// Loads the pipeline: a bad spec or plugin (missing, not a component, of
/// the wrong kind) is a usage error, a bad reference file bad data, a plugin
/// that fails to start a plugin failure.
pub(crate) fn load(rt: Arc<Runtime>, source: &Source) -> Result<Pipeline, Failure> {
    Pipeline::load(rt, source.path(), source.resolver()).map_err(|e| {
        let code = match &e {
            LoadError::Spec(_) | LoadError::Plugin { .. } => exit::USAGE,
            LoadError::Reference(_) => exit::BAD_DATA,
            LoadError::Runtime { error, .. } => exit::plugin_code(error),
            LoadError::Fit(_) => exit::PLUGIN,
        };
        fail(code, e)
    })
}

/// The output, written through a hash.
struct Output {
    writer: BatchWriter,
    hash: Arc<Mutex<Sha256>>,
}

/// Everything written passes through a hash: the output digest in the
/// audit record. Without --output the CSV encoding is hashed and dropped.
fn open_output(path: Option<&Path>) -> Result<Output, Failure> {
    let (sink, format, name): (Box<dyn std::io::Write + Send>, Format, PathBuf) = match path {
        None => (
            Box::new(std::io::sink()),
            Format::Csv,
            PathBuf::from("<none>"),
        ),
        Some(p) if p.as_os_str() == "-" => (
            Box::new(crate::out::Stdout),
            Format::Csv,
            PathBuf::from("<stdout>"),
        ),
        Some(p) => {
            let format = Format::supported(p).map_err(|e| fail(exit::USAGE, e))?;
            // `--output out/x.csv` makes `out/` as a shell redirect would not.
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))
                    .map_err(|e| fail(exit::USAGE, e))?;
            }
            let file = std::fs::File::create(p)
                .with_context(|| format!("opening output {}", p.display()))
                .map_err(|e| fail(exit::USAGE, e))?;
            (Box::new(file), format, p.to_path_buf())
        }
    };
    let (hashing, hash) = Hashing::new(sink);
    Ok(Output {
        writer: BatchWriter::new(Box::new(hashing), format, &name),
        hash,
    })
}

/// Runs the pipeline with a progress bar, writing what it accepts; returns
/// how the run ended and the output's digest.
fn execute(
    pipeline: &Pipeline,
    input: Box<dyn BatchSource>,
    options: &RunOptions,
    output: Output,
    bar: &indicatif::ProgressBar,
    mut predictions: Option<&mut Predictions>,
) -> (Result<RunSummary, RunError>, Option<Digest>) {
    let Output { mut writer, hash } = output;
    let mut sink = |b: &keel_data::Batch| -> Result<(), String> {
        if let Some(p) = predictions.as_deref_mut() {
            let rows = p.plan.rows(&p.record_id, p.rows.len(), b);
            p.rows.extend(rows);
        }
        writer.write(b).map_err(|e| e.to_string())
    };
    let mut progress = |p: keel_runtime::pipeline::Progress| {
        bar.set_position(p.bytes_read);
        bar.set_message(format!("{} rows", p.rows));
    };
    let result = pipeline.run(input, options, &mut sink, &mut progress);
    bar.finish_and_clear();
    // Whatever was accepted before a failure is kept: flush it first. A
    // flush that fails (a full disk, a reader that went away) fails the run,
    // which is still recorded.
    let result = match (result, writer.finish()) {
        (Ok(summary), Err(e)) => Err(RunError::Sink {
            message: e.to_string(),
            summary: Box::new(summary),
        }),
        (result, _) => result,
    };
    (result, keel_ops::finish(&hash))
}

/// How the run ended, for its record.
fn ending(result: &Result<RunSummary, RunError>) -> Ending {
    match result {
        Ok(_) => Ending {
            outcome: Outcome::Ok,
            error: None,
            failed_stage: None,
        },
        Err(RunError::Stage { error, .. }) => Ending {
            outcome: error.error.outcome,
            error: Some(error.error.to_string()),
            failed_stage: Some(error.error.stage.clone()),
        },
        Err(e) => Ending {
            outcome: Outcome::Error,
            error: Some(e.to_string()),
            failed_stage: None,
        },
    }
}

/// The run's summary (a failed run's too: what it did is reported and
/// recorded) and the failure to exit with; monitors that did not start
/// leave nothing to report.
fn settle(result: Result<RunSummary, RunError>) -> Result<(RunSummary, Option<Failure>), Failure> {
    Ok(match result {
        Ok(s) => (s, None),
        Err(RunError::Read { error, summary }) => (*summary, Some(exit::read_failure(error))),
        Err(RunError::Stage {
            file,
            lines,
            error,
            summary,
        }) => {
            let message = format!(
                "{}: lines {}-{}: {}",
                file.display(),
                lines.0,
                lines.1,
                error.error
            );
            (*summary, Some(fail(exit::PLUGIN, anyhow::anyhow!(message))))
        }
        Err(RunError::Sink { message, summary }) => (
            *summary,
            Some(fail(
                exit::FAILURE,
                anyhow::anyhow!("writing output: {message}"),
            )),
        ),
        Err(e @ RunError::Monitor(_)) => return Err(fail(exit::PLUGIN, e)),
    })
}

/// Alerts raised during a run, delivered only once the run has finished
/// (or the user chose `--partial`): a run that stops on a bad row must not
/// page anyone over the fragment it saw.
#[derive(Default)]
struct HeldAlerts(Mutex<Vec<(AlertSpec, Alert)>>);

impl AlertSink for HeldAlerts {
    fn deliver(&self, spec: &AlertSpec, alert: &Alert) -> Vec<Delivery> {
        if let Ok(mut held) = self.0.lock() {
            held.push((spec.clone(), alert.clone()));
        }
        Vec::new()
    }
}

impl HeldAlerts {
    /// Delivers every held alert to its monitor's sinks and notes how each
    /// delivery went on the alert the summary keeps.
    fn deliver(&self, summary: &mut RunSummary) {
        let held = self.0.lock().map(|mut h| std::mem::take(&mut *h));
        for (spec, alert) in held.unwrap_or_default() {
            let deliveries = keel_ops::alerts::deliver(&spec, &alert);
            let kept = summary
                .monitors
                .iter_mut()
                .filter(|m| m.name == alert.monitor)
                .flat_map(|m| m.alerts.iter_mut())
                .find(|a| a.window.index == alert.window.index && a.time == alert.time);
            if let Some(kept) = kept {
                kept.deliveries = deliveries;
            }
        }
    }
}

/// A failed run's monitors saw a fragment: what they made of it (alerts,
/// closed windows, the state to carry on from) is set aside, so the state
/// shared with the deployed version stays as the last whole run left it.
fn set_aside(summary: &mut RunSummary) {
    for m in &mut summary.monitors {
        m.report = None;
        m.window = None;
        m.windows.clear();
        m.alerts.clear();
        m.state = None;
    }
}

/// What a failed run's record says of each monitor it set aside.
const SET_ASIDE: &str = "not judged: the run failed, so what this monitor saw of the rows before the failure was set aside (no alert, state unchanged; `keel run --partial` keeps it)";

/// The input's digest and, when the retention policy keeps payloads, its bytes.
type InputJob = JoinHandle<anyhow::Result<(Digest, Option<Vec<u8>>)>>;

/// What the run's audit record needs, gathered as it starts.
/// The rows a run answers, by id, for its record (see [`keel_ops::record::PredictionPlan`]).
struct Predictions {
    plan: keel_ops::record::PredictionPlan,
    record_id: String,
    rows: Vec<keel_store::NewPrediction>,
}

struct Audit<'a> {
    store: &'a Store,
    /// The canonical spec the record names.
    spec_text: String,
    /// Monitor state (open windows, active alerts) carries over between runs
    /// of the same pipeline version; a changed spec starts afresh.
    identity: String,
    record_id: String,
    input: InputJob,
}

impl<'a> Audit<'a> {
    /// Starts hashing the input on a thread of its own while the pipeline runs.
    fn start(
        store: &'a Store,
        pipeline: &Pipeline,
        spec_text: String,
        input: &Path,
    ) -> Result<Audit<'a>, Failure> {
        let record_id = keel_store::new_record_id();
        let keep = store
            .keeps_payloads(&pipeline.spec().name, &record_id)
            .map_err(|e| fail(exit::FAILURE, e))?;
        let path = input.to_path_buf();
        let input = std::thread::spawn(move || keel_ops::read_input(&path, keep));
        Ok(Audit {
            store,
            identity: Digest::of(spec_text.as_bytes()).to_string(),
            spec_text,
            record_id,
            input,
        })
    }

    /// The monitor states the previous run of this version saved.
    fn resume(&self, pipeline: &Pipeline) -> Result<HashMap<String, MonitorState>, Failure> {
        keel_ops::load_monitor_states(self.store, pipeline, &self.identity)
            .map_err(|e| fail(exit::FAILURE, e))
    }

    /// Keeps the input payload and the monitor states, then appends the
    /// record; returns once it is on disk: only then is the run acknowledged.
    fn record(
        self,
        pipeline: &Pipeline,
        summary: &RunSummary,
        output_digest: Option<Digest>,
        ending: &Ending,
        judged: bool,
        predictions: Vec<keel_store::NewPrediction>,
    ) -> Result<(), Failure> {
        let store = self.store;
        let (input_digest, payload) = self
            .input
            .join()
            .map_err(|_| anyhow::anyhow!("hashing the input panicked"))??;
        if let Some(bytes) = payload {
            store.put_payload(&bytes)?;
        }
        if judged {
            keel_ops::save_monitor_states(store, pipeline, summary, &self.identity)
                .context("saving monitor state")?;
        }
        let mut record = keel_ops::record(
            pipeline,
            &self.spec_text,
            summary,
            input_digest,
            output_digest,
            ending,
        );
        record.id = self.record_id;
        if !judged {
            record.monitor_verdicts = summary
                .monitors
                .iter()
                .map(|m| MonitorVerdict {
                    monitor: m.name.clone(),
                    alert: false,
                    summary: m.error.clone().unwrap_or_else(|| SET_ASIDE.into()),
                    metrics: serde_json::Value::Null,
                    window: None,
                })
                .collect();
        }
        let n = predictions.len();
        let receipt = store
            .append_batch_predicted(vec![(record, predictions)])
            .context("recording the run in the audit log")?
            .into_iter()
            .next()
            .context("the audit log gave no receipt")?;
        errln!(
            "\naudit: record {} (seq {}, {n} predictions by id) in {}",
            receipt.id,
            receipt.seq,
            store.dir().display()
        );
        Ok(())
    }
}
