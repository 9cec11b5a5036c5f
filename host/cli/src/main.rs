//! `keel`: the command line. Thin: parses arguments, sets up logging, and
//! hands work to the command's type in `commands/` (which calls into
//! `keel-runtime` and `keel-ops`); errors are reported with context and an
//! exit code that tells usage errors, bad data and plugin failures apart.

// First: its print macros are used throughout.
#[macro_use]
mod out;
mod bundle;
mod commands;
mod exit;
mod render;

use clap::{Parser, Subcommand};
use commands::{Globals, audit, build, drift, model, monitor, new, pipeline, plugin, profile};
use commands::{explain, feedback, performance, replay, run, sync};
use exit::Failure;
use std::path::PathBuf;
use std::process::ExitCode;

// Data-heavy commands (`keel drift` on millions of rows) allocate and free
// millions of small strings and large column buffers; mimalloc measured
// faster than glibc's allocator there (see the README's drift benchmark).
// The edge build leaves it out: its eagerly committed arenas hold 10-25 MB
// more resident (docs/edge.md, "Memory").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// The store: plugins, pipelines, audit log [default: the user data dir].
    #[arg(long, global = true, env = "KEEL_STORE")]
    store: Option<PathBuf>,
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
    Run(run::RunArgs),
    /// Compare two data files column by column for drift (table, JSON or HTML).
    Drift(drift::DriftArgs),
    /// Write a self-contained HTML drift report (same as `drift --format html`).
    Report(drift::ReportArgs),
    /// Is the model still right? Realized metrics from labels (joined by id), CBPE
    /// estimates and alert bounds from a labelled reference, per chunk and segment.
    Performance(performance::PerformanceArgs),
    /// Labels (ground truth) for stored predictions, joined by row id.
    #[command(subcommand)]
    Feedback(feedback::FeedbackCommand),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Store, list and inspect ONNX models (run by model plugins through wasi:nn).
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Start a plugin project from a template (rust, python, js, c).
    New(new::NewArgs),
    /// Build a plugin project (keel.toml) into a component and check it loads.
    Build(build::BuildArgs),
    /// Deploy and list pipeline versions.
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
    /// Query and check the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Windowed monitors: saved windows and active alerts, closed-window history.
    #[command(subcommand)]
    Monitor(monitor::MonitorCommand),
    /// Infer a data-quality schema (types, ranges, null rates, domains) from a data file and
    /// print it: the config of the `data-quality` validator.
    Profile(profile::ProfileArgs),
    /// Precompile every component of a pipeline for a target into a bundle
    /// that a runtime-only (edge) keel runs without compiling anything.
    #[cfg(feature = "compiler")]
    Compile(commands::compile::CompileArgs),
    /// Serve the deployed pipelines over the Open Inference Protocol v2, with
    /// an admin API and Prometheus metrics (see docs/serving.md).
    #[cfg(feature = "server")]
    Serve(commands::serve::ServeArgs),
    /// Ship this store's audit chain to a central `keel serve`, and see what central stores hold.
    #[command(subcommand)]
    Sync(sync::SyncCommand),
    /// Re-run recorded inputs; check outputs are identical, or see what a candidate changes.
    Replay(replay::ReplayArgs),
    /// Why did the pipeline predict that? Shapley values of an output column over the raw
    /// input columns, for rows in a file or a recorded prediction (table, JSON or HTML).
    Explain(explain::ExplainArgs),
}

impl Command {
    fn run(self, globals: &Globals) -> Result<(), Failure> {
        match self {
            Command::Run(c) => c.run(globals),
            Command::Drift(c) => c.run(),
            Command::Report(c) => c.run(),
            Command::Performance(c) => c.run(globals),
            Command::Feedback(c) => c.run(globals),
            Command::Plugin(c) => c.run(globals),
            Command::Model(c) => c.run(globals),
            Command::New(c) => c.run(),
            Command::Build(c) => c.run(globals),
            Command::Pipeline(c) => c.run(globals),
            Command::Audit(c) => c.run(globals),
            Command::Monitor(c) => c.run(globals),
            Command::Profile(c) => c.run(),
            #[cfg(feature = "compiler")]
            Command::Compile(c) => c.run(globals),
            #[cfg(feature = "server")]
            Command::Serve(c) => c.run(globals),
            Command::Sync(c) => c.run(globals),
            Command::Replay(c) => c.run(globals),
            Command::Explain(c) => c.run(globals),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, cli.verbose);
    let globals = Globals {
        cache_dir: cli.cache_dir,
        store: cli.store,
    };
    let result = cli.command.run(&globals);
    // A reader that went away ends the command as it ends `ls | head`;
    // whatever failed after that (writing to it) is no news.
    if out::closed() {
        out::die_of_closed_pipe();
    }
    match (result, out::failed()) {
        (Ok(()), None) => ExitCode::SUCCESS,
        (Ok(()), Some(e)) => {
            errln!("error: {e}");
            ExitCode::from(exit::FAILURE)
        }
        (Err(f), _) => {
            errln!("error: {}", message(&f.error));
            ExitCode::from(f.code)
        }
    }
}

/// An error and its causes on one line, as `{:#}` writes them, without a
/// cause its context already quotes (`x.csv: cannot read: No such file or
/// directory` once, not twice).
fn message(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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
        .with_writer(std::io::stderr)
        // A closed stderr must not panic a worker thread mid-run (out.rs).
        .log_internal_errors(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
