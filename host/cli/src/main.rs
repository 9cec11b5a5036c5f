//! `keel`: the command line. Thin: parses arguments, sets up logging, and
//! hands work to `keel-runtime`; errors are reported with context and an exit
//! code that tells usage errors, bad data and plugin failures apart.

mod render;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use keel_data::io::{BatchWriter, Format};
use keel_runtime::pipeline::{LoadError, Pipeline, PluginDirs, RunError, RunOptions};
use keel_runtime::{Plugin, Runtime, RuntimeOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Exit codes, documented in the README.
mod exit {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const BAD_DATA: u8 = 3;
    pub const PLUGIN: u8 = 4;
}

#[derive(Parser)]
#[command(
    name = "keel",
    version,
    about = "Run portable ML steps and monitors as sandboxed WebAssembly plugins"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// More logging (-v: info, -vv: debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Directory of precompiled components [env: KEEL_CACHE_DIR; default: the user cache dir].
    #[arg(long, global = true)]
    cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline over a data file (CSV or JSON Lines).
    Run(RunArgs),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The pipeline spec (TOML).
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
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Show a component's digest, kind, metadata, imports and exports.
    Inspect {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// An error with the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            code: exit::FAILURE,
            error: e.into(),
        }
    }
}

fn fail(code: u8, error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code,
        error: error.into(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, cli.verbose);
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn init_logging(format: LogFormat, verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn runtime(cache_dir: Option<PathBuf>) -> Result<Arc<Runtime>, Failure> {
    let mut options = RuntimeOptions::default();
    if cache_dir.is_some() {
        options.cache_dir = cache_dir;
    }
    Ok(Arc::new(
        Runtime::new(options).context("starting the runtime")?,
    ))
}

fn dispatch(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Run(args) => run(args, cli.cache_dir),
        Command::Plugin(PluginCommand::Inspect { file, json }) => {
            inspect(&file, json, cli.cache_dir)
        }
    }
}

fn inspect(file: &Path, json: bool, cache_dir: Option<PathBuf>) -> Result<(), Failure> {
    let rt = runtime(cache_dir)?;
    let plugin = Plugin::load_file(&rt, file).map_err(|e| fail(exit::PLUGIN, e))?;
    let s = plugin.summary();
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    println!("{}", render::inspect(s));
    Ok(())
}

fn run(args: RunArgs, cache_dir: Option<PathBuf>) -> Result<(), Failure> {
    let rt = runtime(cache_dir)?;
    let resolver = PluginDirs(args.plugin_dirs.clone());
    let pipeline = Pipeline::load(rt, &args.pipeline, &resolver).map_err(|e| match e {
        LoadError::Spec(_) | LoadError::Plugin { .. } => fail(exit::USAGE, e),
        LoadError::Reference(_) => fail(exit::BAD_DATA, e),
        LoadError::Runtime { .. } | LoadError::Fit(_) => fail(exit::PLUGIN, e),
    })?;
    let batch_size = args.batch_size.unwrap_or(pipeline.batch_size());
    let source = keel_data::io::open(&args.input, pipeline.input_schema(), batch_size)
        .map_err(|e| fail(exit::BAD_DATA, e))?;
    let total_bytes = std::fs::metadata(&args.input).map(|m| m.len()).unwrap_or(0);
    let mut writer = match &args.output {
        None => None,
        Some(p) if p.as_os_str() == "-" => Some(BatchWriter::new(
            Box::new(std::io::stdout()),
            Format::Csv,
            Path::new("<stdout>"),
        )),
        Some(p) => Some(
            BatchWriter::create(p)
                .map_err(|e| fail(exit::USAGE, e))
                .with_context_failure(|| format!("opening output {}", p.display()))?,
        ),
    };
    let bar = render::progress_bar(total_bytes, args.quiet);
    let options = RunOptions {
        batch_size: Some(batch_size),
        workers: args.workers,
    };
    let mut sink = |b: &keel_data::Batch| -> Result<(), String> {
        match writer.as_mut() {
            Some(w) => w.write(b).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    };
    let mut progress = |p: keel_runtime::pipeline::Progress| {
        bar.set_position(p.bytes_read);
        bar.set_message(format!("{} rows", p.rows));
    };
    let result = pipeline.run(source, &options, &mut sink, &mut progress);
    bar.finish_and_clear();
    // Whatever was accepted before a failure is kept: flush it first.
    if let Some(w) = writer {
        w.finish().map_err(|e| fail(exit::FAILURE, e))?;
    }
    let (summary, failure) = match result {
        Ok(s) => (s, None),
        Err(RunError::Read { error, summary }) => (*summary, Some(fail(exit::BAD_DATA, error))),
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
    };
    eprintln!(
        "{}",
        render::summary(&pipeline, &summary, &args.input, args.output.as_deref())
    );
    if let Some(path) = &args.summary_json {
        let json = render::summary_json(&pipeline, &summary);
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

trait WithContextFailure<T> {
    fn with_context_failure(self, f: impl FnOnce() -> String) -> Result<T, Failure>;
}

impl<T> WithContextFailure<T> for Result<T, Failure> {
    fn with_context_failure(self, f: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            code: e.code,
            error: e.error.context(f()),
        })
    }
}
