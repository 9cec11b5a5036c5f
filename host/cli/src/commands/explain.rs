//! `keel explain`: why a pipeline predicted what it did, in the user's own
//! columns — Shapley values of an output column over the raw input columns,
//! the pipeline run in the sandbox as a black box. For rows in a file
//! (`PIPELINE --input ROWS`) or for a recorded prediction (`--record ID`),
//! which is explained on the pipeline version that made it and recorded in
//! the audit chain, linked to the prediction's record.

use super::Globals;
use super::run::{load, source_failure};
use crate::exit::{self, Failure, fail};
use crate::render;
use anyhow::Context;
use keel_algos::explain::{Link, Method, Options};
use keel_data::Batch;
use keel_ops::explain::{BACKGROUND_ROWS, Background, ExplainError, Explained, Request};
use keel_ops::source::{self, Spec, Trust};
use keel_runtime::pipeline::{Pipeline, PluginDirs};
use std::path::PathBuf;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Html,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MethodArg {
    Exact,
    Kernel,
    Auto,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LinkArg {
    Identity,
    Logit,
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// The pipeline: a spec file (TOML), or NAME[@VERSION] deployed in the store.
    #[arg(required_unless_present = "record", conflicts_with = "record")]
    pipeline: Option<PathBuf>,
    /// The rows to explain: .csv, .jsonl or .ndjson.
    #[arg(long, required_unless_present = "record", conflicts_with = "record")]
    input: Option<PathBuf>,
    /// The output column explained: a numeric one (a score, a probability).
    #[arg(long)]
    output: String,
    /// Explain a recorded prediction: the audit record's id (its input payload must have been kept).
    #[arg(long)]
    record: Option<String>,
    /// With --record: only this row of the recorded input (from 0).
    #[arg(long, requires = "record")]
    row: Option<usize>,
    /// Background rows, used whole (default: a fixed-seed sample of the pipeline's reference).
    #[arg(long)]
    background: Option<PathBuf>,
    /// Rows sampled from the reference for the background.
    #[arg(long, default_value_t = BACKGROUND_ROWS)]
    background_rows: usize,
    /// The input columns to explain, comma-separated (default: every input column).
    #[arg(long, value_delimiter = ',')]
    features: Option<Vec<String>>,
    /// exact: every coalition; kernel: KernelSHAP; auto: exact up to 14 features.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    method: MethodArg,
    /// KernelSHAP's coalitions (default 2M + 2048, at most 2^M - 2).
    #[arg(long)]
    nsamples: Option<usize>,
    /// Values additive in the output (identity) or in its log-odds (logit).
    #[arg(long, value_enum, default_value_t = LinkArg::Identity)]
    link: LinkArg,
    /// Seeds KernelSHAP's sampler: the same seed gives the same values.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directories searched for `plugin = "name"` as name.wasm (repeatable).
    #[arg(long = "plugin-dir", env = "KEEL_PLUGIN_PATH", value_delimiter = ':')]
    plugin_dirs: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
}

fn explain_failure(e: ExplainError) -> Failure {
    match e {
        ExplainError::Usage(_) => fail(exit::USAGE, e),
        ExplainError::Data(_) => fail(exit::BAD_DATA, e),
        ExplainError::Pipeline { .. } => fail(exit::PLUGIN, e),
        ExplainError::Budget { .. } => fail(exit::FAILURE, e),
    }
}

impl ExplainArgs {
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        let explained = match &self.record {
            Some(id) => self.recorded(globals, id)?,
            None => self.of_file_rows(globals)?,
        };
        self.write(&explained)
    }

    fn request(&self) -> Request {
        Request {
            output: self.output.clone(),
            features: self.features.clone(),
            options: Options {
                method: match self.method {
                    MethodArg::Exact => Method::Exact,
                    MethodArg::Kernel => Method::Kernel,
                    MethodArg::Auto => Method::Auto,
                },
                link: match self.link {
                    LinkArg::Identity => Link::Identity,
                    LinkArg::Logit => Link::Logit,
                },
                nsamples: self.nsamples,
                seed: self.seed,
            },
            deadline: None,
        }
    }

    fn background(&self, pipeline: &Pipeline) -> Result<Background, Failure> {
        match &self.background {
            Some(path) => Background::file(pipeline, path),
            None => Background::reference(pipeline, self.background_rows),
        }
        .map_err(explain_failure)
    }

    fn explain(&self, pipeline: &Pipeline, rows: &Batch) -> Result<Explained, Failure> {
        let background = self.background(pipeline)?;
        let mut worker = pipeline.worker();
        keel_ops::explain::explain(&mut worker, rows, &background, &self.request())
            .map_err(explain_failure)
    }

    /// `PIPELINE --input ROWS`.
    fn of_file_rows(&self, globals: &Globals) -> Result<Explained, Failure> {
        let (Some(spec), Some(input)) = (&self.pipeline, &self.input) else {
            return Err(fail(
                exit::USAGE,
                anyhow::anyhow!("give PIPELINE and --input ROWS, or --record ID"),
            ));
        };
        // A spec file needs the store only when one is named (or to check
        // plugins against its trust policy); a deployed version always does.
        let store = if spec.is_file() && globals.store.is_none() {
            None
        } else {
            Some(globals.store()?)
        };
        let scratch = tempfile::tempdir().context("creating a scratch directory")?;
        let source = source::open(
            Spec::Arg(spec.clone()),
            store.as_ref(),
            PluginDirs(self.plugin_dirs.clone()),
            scratch.path(),
            Trust::Enforce,
        )
        .map_err(source_failure)?;
        let pipeline = load(globals.runtime()?, &source)?;
        let rows = keel_data::io::read_all(input, pipeline.input_schema())
            .map_err(|e| fail(exit::BAD_DATA, e))?;
        self.explain(&pipeline, &rows)
    }

    /// `--record ID [--row N]`: on the version that made the prediction,
    /// then recorded in the audit chain.
    fn recorded(&self, globals: &Globals, id: &str) -> Result<Explained, Failure> {
        let store = globals.store()?;
        let record = store
            .audit_get(id)?
            .ok_or_else(|| fail(exit::USAGE, anyhow::anyhow!("no audit record `{id}`")))?;
        let reference = format!("{}@{}", record.pipeline.name, record.pipeline.version);
        let deployed = store.get_pipeline(&record.pipeline.name, Some(&record.pipeline.version))?;
        if deployed.as_ref().map(|p| &p.digest) != Some(&record.pipeline.digest) {
            return Err(fail(
                exit::USAGE,
                anyhow::anyhow!(
                    "record {id}: the pipeline that made it ({reference}, {}) is not deployed in this store",
                    record.pipeline.digest.short()
                ),
            ));
        }
        let scratch = tempfile::tempdir().context("creating a scratch directory")?;
        let source = source::open(
            Spec::Deployed(reference),
            Some(&store),
            PluginDirs(self.plugin_dirs.clone()),
            scratch.path(),
            Trust::Skip,
        )
        .map_err(source_failure)?;
        let pipeline = load(globals.runtime()?, &source)?;
        let rows = keel_ops::explain::recorded_rows(&store, &record, &pipeline, self.row)
            .map_err(explain_failure)?;
        let explained = self.explain(&pipeline, &rows)?;
        let receipt = keel_ops::explain::record(&store, &record, self.row, &explained)
            .context("recording the explanation in the audit log")?;
        errln!(
            "audit: explanation of record {id} recorded as {} (seq {})",
            receipt.id,
            receipt.seq
        );
        Ok(explained)
    }

    fn write(&self, explained: &Explained) -> Result<(), Failure> {
        let text = match self.format {
            Format::Table => render::explanation(explained, TOP),
            Format::Json => format!("{:#}\n", explained.to_json()),
            Format::Html => keel_report::render_explain_html(&explained.to_json())
                .context("rendering the explanation page")?,
        };
        match &self.out {
            Some(path) => std::fs::write(path, text)
                .with_context(|| format!("writing {}", path.display()))
                .map_err(|e| fail(exit::USAGE, e)),
            None => {
                out!("{text}");
                Ok(())
            }
        }
    }
}

/// Contributions the table shows per row.
const TOP: usize = 5;
