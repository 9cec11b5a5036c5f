//! `keel`: the command line. Thin: parses arguments, sets up logging, and
//! hands work to `keel-runtime`; errors are reported with context and an exit
//! code that tells usage errors, bad data and plugin failures apart.

mod bundle;
#[cfg(feature = "compiler")]
mod compile_cmd;
mod drift;
mod model_cmds;
mod monitor_cmds;
mod new_build;
mod profile;
mod render;
mod replay;
#[cfg(feature = "server")]
mod serve_cmd;
mod sign_cmds;
mod store_cmds;
mod sync_cmd;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use keel_data::io::{BatchWriter, Format};
use keel_runtime::pipeline::{LoadError, Pipeline, PluginDirs, RunError, RunOptions};
use keel_runtime::{Plugin, Runtime, RuntimeOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// `keel drift`: prints or writes the report; exit 6 on drift with `--fail-on-drift`.
fn drift_cmd(args: drift::DriftArgs) -> Result<(), Failure> {
    let out = drift::run(&args).map_err(|e| match e {
        drift::DriftError::Usage(e) => fail(exit::USAGE, e),
        drift::DriftError::Data(e) => fail(exit::BAD_DATA, e),
        drift::DriftError::Other(e) => fail(exit::FAILURE, e),
    })?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &out.text)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "{}: {}",
                path.display(),
                if out.dataset_drift {
                    "dataset drift"
                } else {
                    "no dataset drift"
                }
            );
        }
        None => print!("{}", out.text),
    }
    if args.fail_on_drift && out.dataset_drift {
        return Err(fail(
            exit::DRIFT,
            anyhow::anyhow!("dataset drift detected (--fail-on-drift)"),
        ));
    }
    Ok(())
}

// Data-heavy commands (`keel drift` on millions of rows) allocate and free
// millions of small strings and large column buffers; mimalloc measured
// faster than glibc's allocator there (see the README's drift benchmark).
// The edge build leaves it out: its eagerly committed arenas hold 10-25 MB
// more resident (docs/edge.md, "Memory").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes, documented in the README.
mod exit {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const BAD_DATA: u8 = 3;
    pub const PLUGIN: u8 = 4;
    pub const INTEGRITY: u8 = 5;
    pub const DRIFT: u8 = 6;
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
    Run(RunArgs),
    /// Compare two data files column by column for drift (table, JSON or HTML).
    Drift(drift::DriftArgs),
    /// Write a self-contained HTML drift report (same as `drift --format html`).
    Report(drift::DriftArgs),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Store, list and inspect ONNX models (run by model plugins through wasi:nn).
    #[command(subcommand)]
    Model(model_cmds::ModelCommand),
    /// Start a plugin project from a template (rust, python, js, c).
    New(new_build::NewArgs),
    /// Build a plugin project (keel.toml) into a component and check it loads.
    Build(new_build::BuildArgs),
    /// Deploy and list pipeline versions.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Query and check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Windowed monitors: saved windows and active alerts, closed-window history.
    #[command(subcommand)]
    Monitor(MonitorCommand),
    /// Infer a data-quality schema (types, ranges, null rates, domains) from a data file and
    /// print it: the config of the `data-quality` validator.
    Profile(profile::ProfileArgs),
    /// Precompile every component of a pipeline for a target into a bundle
    /// that a runtime-only (edge) keel runs without compiling anything.
    #[cfg(feature = "compiler")]
    Compile(compile_cmd::CompileArgs),
    /// Serve the deployed pipelines over the Open Inference Protocol v2, with
    /// an admin API and Prometheus metrics (see docs/serving.md).
    #[cfg(feature = "server")]
    Serve {
        /// Address to listen on [default: the config's `listen`, else 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The daemon's TOML config: tokens, limits, TLS.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Ship this store's audit chain to a central `keel serve`, and see what central stores hold.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Re-run recorded inputs; check outputs are identical, or see what a candidate changes.
    Replay {
        /// Pipeline NAME or NAME@VERSION (only versions deployed with `keel pipeline deploy`).
        #[arg(long)]
        pipeline: String,
        /// Only records since (RFC 3339 time or a date).
        #[arg(long)]
        since: Option<String>,
        /// Substitute a stage's plugin: STAGE=PLUGIN@VERSION (repeatable).
        #[arg(long = "with")]
        with: Vec<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum SyncCommand {
    /// Send the records a central daemon does not hold yet (resumes where it left off).
    Push(sync_cmd::PushArgs),
    /// This store's node id, and how much of its chain was shipped.
    Status,
    /// On a central store: each node's chain held here, verified.
    Nodes {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum MonitorCommand {
    /// Each monitor's open window and active alerts, as saved after the last run.
    Status {
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The reports of a monitor's closed windows, newest first.
    History {
        pipeline: String,
        monitor: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PipelineCommand {
    /// Store a pipeline version: its plugins, reference files and canonical spec.
    Deploy {
        file: PathBuf,
        /// Directories searched for `plugin = "name"` as name.wasm (repeatable).
        #[arg(long = "plugin-dir", env = "KEEL_PLUGIN_PATH", value_delimiter = ':')]
        plugin_dirs: Vec<PathBuf>,
    },
    /// List deployed pipeline versions.
    Ls,
    /// Show a deployed version's plugins and canonical spec.
    Show { reference: String },
    /// Which runs keep their input payloads: all, digests-only, or sample=RATE.
    Retention { pipeline: String, policy: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// List invocations, newest first.
    Log {
        #[arg(long)]
        pipeline: Option<String>,
        /// RFC 3339 time or a date (2026-11-22).
        #[arg(long)]
        since: Option<String>,
        /// ok, error, trap, timeout or rejected.
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON record per line.
        #[arg(long)]
        json: bool,
    },
    /// The lineage of one invocation: input, each plugin with version and digest, output, verdicts.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Walk the hash chain; exits 5 naming the first bad record.
    Verify,
    /// Remove payloads stored before a time; records and the chain stay intact.
    Expire {
        /// RFC 3339 time or a date.
        #[arg(long)]
        before: String,
    },
    /// Show what records and payloads take; with SIZE (64MiB, 1GB, off), set the
    /// store's cap: beyond it the oldest payloads go first, then the oldest records
    /// (their last hash is kept, so the chain still verifies).
    Cap { size: Option<String> },
    /// Export records as JSON Lines or OpenLineage RunEvents.
    Export {
        #[arg(long, value_parser = ["jsonl", "openlineage"], default_value = "jsonl")]
        format: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
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
    /// Check a component and store it as NAME@VERSION.
    Add {
        file: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        /// Lifecycle state: staged, active, deprecated.
        #[arg(long, default_value = "active")]
        state: String,
        /// Its signature, for the trust policy [default: FILE.sig if it exists].
        #[arg(long)]
        sig: Option<PathBuf>,
    },
    /// Generate an ed25519 signing key: writes KEY (secret, mode 600) and KEY.pub.
    Keygen(sign_cmds::KeygenArgs),
    /// Sign a component: writes FILE.sig (over its sha256 digest).
    Sign(sign_cmds::SignArgs),
    /// Check a component's signature; exit 5 if it is not good.
    Verify(sign_cmds::VerifyArgs),
    /// The trust policy: keys whose signatures plugins need to be added or deployed.
    #[command(subcommand)]
    Trust(sign_cmds::TrustCommand),
    /// List stored plugins.
    Ls,
    /// Retire NAME@VERSION: no new pipeline may use it; its records stay.
    Retire { reference: String },
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
    Ok(Arc::new(
        Runtime::new(runtime_options(cache_dir)).context("starting the runtime")?,
    ))
}

fn runtime_options(cache_dir: Option<PathBuf>) -> RuntimeOptions {
    let mut options = RuntimeOptions::default();
    if cache_dir.is_some() {
        options.cache_dir = cache_dir;
    }
    options
}

/// The runtime for `keel run SPEC`: a bundle written by `keel compile`
/// loads its artifacts and compiles nothing.
fn runtime_for(spec: &Path, cache_dir: Option<PathBuf>) -> Result<Arc<Runtime>, Failure> {
    match bundle::detect(spec).map_err(|e| fail(exit::USAGE, e))? {
        Some((dir, manifest)) => {
            let options = bundle::runtime_options(runtime_options(cache_dir), &dir, &manifest)
                .map_err(|e| fail(exit::USAGE, e))?;
            Ok(Arc::new(
                Runtime::new(options).context("starting the runtime")?,
            ))
        }
        None => runtime(cache_dir),
    }
}

fn dispatch(cli: Cli) -> Result<(), Failure> {
    let store_dir = cli.store.clone();
    let store = || store_cmds::open(store_dir.as_deref()).map_err(|e| fail(exit::USAGE, e));
    match cli.command {
        Command::Run(args) => run(args, cli.cache_dir, cli.store),
        Command::Drift(args) => drift_cmd(args),
        Command::Monitor(MonitorCommand::Status { pipeline, json }) => {
            print!(
                "{}",
                monitor_cmds::status(&store()?, pipeline.as_deref(), json)?
            );
            Ok(())
        }
        Command::Monitor(MonitorCommand::History {
            pipeline,
            monitor,
            limit,
            json,
        }) => {
            print!(
                "{}",
                monitor_cmds::history(&store()?, &pipeline, &monitor, limit, json)?
            );
            Ok(())
        }
        Command::Report(mut args) => {
            args.format = drift::Format::Html;
            if args.output.is_none() {
                args.output = Some(PathBuf::from("drift-report.html"));
            }
            drift_cmd(args)
        }
        Command::Profile(args) => profile::run(&args),
        Command::Model(cmd) => {
            let out = model_cmds::run(cmd, || store_cmds::open(store_dir.as_deref()))
                .map_err(|e| fail(exit::USAGE, e))?;
            print!("{out}");
            Ok(())
        }
        Command::New(args) => new_build::new(&args).map_err(|e| fail(exit::USAGE, e)),
        Command::Build(args) => {
            let rt = runtime(cli.cache_dir)?;
            new_build::build(&args, &rt)
                .map(|_| ())
                .map_err(Failure::from)
        }
        Command::Plugin(PluginCommand::Inspect { file, json }) => {
            inspect(&file, json, cli.cache_dir)
        }
        Command::Plugin(PluginCommand::Add {
            file,
            name,
            version,
            state,
            sig,
        }) => {
            let state: keel_store::State = state
                .parse()
                .map_err(|e| fail(exit::USAGE, anyhow::anyhow!("--state: {e}")))?;
            let rt = runtime(cli.cache_dir)?;
            store_cmds::plugin_add(&store()?, &rt, &file, &name, &version, state, sig)
                .map_err(|e| fail(exit::PLUGIN, e))
        }
        Command::Plugin(PluginCommand::Keygen(a)) => Ok(sign_cmds::keygen(&a)?),
        Command::Plugin(PluginCommand::Sign(a)) => Ok(sign_cmds::sign(&a)?),
        Command::Plugin(PluginCommand::Verify(a)) => {
            match sign_cmds::verify(&a, || store().map_err(|f| f.error))
                .map_err(|e| fail(exit::USAGE, e))?
            {
                Ok(message) => {
                    println!("{message}");
                    Ok(())
                }
                Err(e) => Err(fail(exit::INTEGRITY, e)),
            }
        }
        Command::Plugin(PluginCommand::Trust(c)) => Ok(sign_cmds::trust(&store()?, &c)?),
        Command::Plugin(PluginCommand::Ls) => Ok(store_cmds::plugin_ls(&store()?)?),
        Command::Pipeline(PipelineCommand::Deploy { file, plugin_dirs }) => {
            let rt = runtime(cli.cache_dir)?;
            let d = keel_ops::pipeline_deploy(&store()?, &rt, &file, PluginDirs(plugin_dirs))
                .map_err(|e| fail(exit::USAGE, e))?;
            println!(
                "{}@{} {} ({} plugins, {} reference files)",
                d.name, d.version, d.digest, d.plugins, d.files
            );
            Ok(())
        }
        #[cfg(feature = "server")]
        Command::Serve { listen, config } => {
            serve_cmd::serve(listen, config, cli.cache_dir, store_dir.clone())
        }
        #[cfg(feature = "compiler")]
        Command::Compile(args) => {
            let out = compile_cmd::compile(&args, store_dir.as_deref())
                .map_err(|e| fail(exit::USAGE, e))?;
            print!("{out}");
            Ok(())
        }
        Command::Replay {
            pipeline,
            since,
            with,
            limit,
        } => {
            let rt = runtime(cli.cache_dir)?;
            let args = replay::ReplayArgs {
                pipeline,
                since,
                with,
                limit,
            };
            match replay::replay(&store()?, rt, &args) {
                Ok(true) => Ok(()),
                Ok(false) => Err(fail(
                    exit::INTEGRITY,
                    anyhow::anyhow!("replay produced different outputs (see DIFF lines)"),
                )),
                Err(e) => Err(fail(exit::PLUGIN, e)),
            }
        }
        Command::Pipeline(PipelineCommand::Retention { pipeline, policy }) => {
            store_cmds::set_retention(&store()?, &pipeline, &policy)
                .map_err(|e| fail(exit::USAGE, e))
        }
        Command::Audit(AuditCommand::Cap { size }) => {
            print!("{}", sync_cmd::cap(&store()?, size.as_deref())?);
            Ok(())
        }
        Command::Sync(SyncCommand::Push(args)) => {
            print!("{}", sync_cmd::push(&store()?, &args)?);
            Ok(())
        }
        Command::Sync(SyncCommand::Status) => {
            print!("{}", sync_cmd::status(&store()?)?);
            Ok(())
        }
        Command::Sync(SyncCommand::Nodes { json }) => {
            print!("{}", sync_cmd::nodes(&store()?, json)?);
            Ok(())
        }
        Command::Audit(AuditCommand::Expire { before }) => {
            store_cmds::expire(&store()?, &before).map_err(|e| fail(exit::USAGE, e))
        }
        Command::Pipeline(PipelineCommand::Ls) => Ok(store_cmds::pipeline_ls(&store()?)?),
        Command::Pipeline(PipelineCommand::Show { reference }) => {
            Ok(store_cmds::pipeline_show(&store()?, &reference)?)
        }
        Command::Plugin(PluginCommand::Retire { reference }) => Ok(store_cmds::plugin_set_state(
            &store()?,
            &reference,
            keel_store::State::Retired,
        )?),
        Command::Audit(AuditCommand::Log {
            pipeline,
            since,
            outcome,
            limit,
            json,
        }) => Ok(store_cmds::audit_log(
            &store()?,
            &store_cmds::LogArgs {
                pipeline,
                since,
                outcome,
                limit,
                json,
            },
        )?),
        Command::Audit(AuditCommand::Show { id, json }) => {
            Ok(store_cmds::audit_show(&store()?, &id, json)?)
        }
        Command::Audit(AuditCommand::Verify) => match store_cmds::audit_verify(&store()?)? {
            Ok(message) => {
                println!("{message}");
                Ok(())
            }
            Err(message) => Err(fail(exit::INTEGRITY, anyhow::anyhow!(message))),
        },
        Command::Audit(AuditCommand::Export { format, output }) => {
            let n = store_cmds::audit_export(&store()?, &format, output.as_ref())?;
            eprintln!("exported {n} records");
            Ok(())
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

fn run(
    args: RunArgs,
    cache_dir: Option<PathBuf>,
    store_dir: Option<PathBuf>,
) -> Result<(), Failure> {
    let rt = runtime_for(&args.pipeline, cache_dir)?;
    // The store is opened first: a locked or unreadable store should stop the
    // run before any work, not after it, when the record could not be kept.
    let store = if args.no_audit {
        None
    } else {
        Some(store_cmds::open(store_dir.as_deref()).map_err(|e| fail(exit::USAGE, e))?)
    };
    let resolver = store_cmds::Resolver {
        store: store.as_ref(),
        dirs: PluginDirs(args.plugin_dirs.clone()),
    };
    // A spec file, or a version deployed in the store, written out to a
    // scratch directory with its reference files.
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let (spec_path, deployed_text) = if args.pipeline.is_file() {
        (args.pipeline.clone(), None)
    } else {
        let reference = args.pipeline.display().to_string();
        let store = store.as_ref().ok_or_else(|| {
            fail(
                exit::USAGE,
                anyhow::anyhow!(
                    "{reference}: no such file, and --no-audit leaves no store to look it up in"
                ),
            )
        })?;
        let (path, text) =
            store_cmds::materialize(store, &reference, scratch.path()).map_err(|e| {
                fail(
                    exit::USAGE,
                    e.context(format!(
                        "{reference}: not a spec file nor a deployed pipeline"
                    )),
                )
            })?;
        (path, Some(text))
    };
    // Under a trust policy a spec file's plugins (a bundle's too) must be
    // signed by a trusted key, checked before any of them is instantiated.
    // A deployed version passed the policy when it was deployed.
    let mut checked_text = None;
    if let (Some(store), None) = (&store, &deployed_text)
        && !keel_ops::trust::trusted_keys(store)?.is_empty()
    {
        let text = std::fs::read_to_string(&spec_path)
            .with_context(|| format!("reading {}", spec_path.display()))?;
        let canonical = store_cmds::canonicalize(&spec_path, &text, &resolver)
            .map_err(|e| fail(exit::USAGE, e))?;
        keel_ops::trust::check_canonical(store, &canonical).map_err(|e| fail(exit::USAGE, e))?;
        checked_text = Some(canonical.text);
    }
    let pipeline = Pipeline::load(rt, &spec_path, &resolver).map_err(|e| match e {
        LoadError::Spec(_) | LoadError::Plugin { .. } => fail(exit::USAGE, e),
        LoadError::Reference(_) => fail(exit::BAD_DATA, e),
        LoadError::Runtime { .. } | LoadError::Fit(_) => fail(exit::PLUGIN, e),
    })?;
    // The digest recorded is the one a deploy of this spec gets. Computed
    // after loading, which has already resolved (and named any failure in)
    // every plugin and file it reads.
    let spec_text = match (deployed_text.or(checked_text), &store) {
        (Some(text), _) => text,
        (None, Some(_)) => {
            let text = std::fs::read_to_string(&spec_path)
                .with_context(|| format!("reading {}", spec_path.display()))?;
            store_cmds::canonicalize(&spec_path, &text, &resolver)
                .map_err(|e| fail(exit::USAGE, e))?
                .text
        }
        (None, None) => String::new(),
    };
    let batch_size = args.batch_size.unwrap_or(pipeline.batch_size());
    let source = keel_data::io::open(&args.input, pipeline.input_schema(), batch_size)
        .map_err(|e| fail(exit::BAD_DATA, e))?;
    let total_bytes = std::fs::metadata(&args.input).map(|m| m.len()).unwrap_or(0);
    // The input's digest (and, when the retention policy keeps payloads, its
    // bytes) is computed on a thread of its own while the pipeline runs.
    let record_id = keel_store::new_record_id();
    let input_job = match &store {
        Some(store) => {
            let keep = store
                .keeps_payloads(&pipeline.spec().name, &record_id)
                .map_err(|e| fail(exit::FAILURE, e))?;
            let path = args.input.clone();
            Some(std::thread::spawn(move || {
                store_cmds::read_input(&path, keep)
            }))
        }
        None => None,
    };
    // Everything written passes through a hash: the output digest in the
    // audit record. Without --output the CSV encoding is hashed and dropped.
    let (sink, format, name): (Box<dyn std::io::Write + Send>, Format, PathBuf) = match &args.output
    {
        None => (
            Box::new(std::io::sink()),
            Format::Csv,
            PathBuf::from("<none>"),
        ),
        Some(p) if p.as_os_str() == "-" => (
            Box::new(std::io::stdout()),
            Format::Csv,
            PathBuf::from("<stdout>"),
        ),
        Some(p) => {
            let format = Format::from_path(p).map_err(|e| fail(exit::USAGE, e))?;
            let file = std::fs::File::create(p)
                .with_context(|| format!("opening output {}", p.display()))
                .map_err(|e| fail(exit::USAGE, e))?;
            (Box::new(file), format, p.clone())
        }
    };
    let (hashing, output_hash) = store_cmds::Hashing::new(sink);
    let mut writer = Some(BatchWriter::new(Box::new(hashing), format, &name));
    let bar = render::progress_bar(total_bytes, args.quiet);
    // Monitor state (open windows, active alerts) carries over between runs
    // of the same pipeline version; a changed spec starts afresh.
    let identity = keel_store::Digest::of(spec_text.as_bytes()).to_string();
    let resume = match (&store, args.fresh_monitors) {
        (Some(store), false) => store_cmds::load_monitor_states(store, &pipeline, &identity)
            .map_err(|e| fail(exit::FAILURE, e))?,
        _ => Default::default(),
    };
    let options = RunOptions {
        batch_size: Some(batch_size),
        workers: args.workers,
        resume,
        alerts: keel_ops::alerts::sink(),
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
    let mut ending = store_cmds::Ending {
        outcome: keel_runtime::Outcome::Ok,
        error: None,
        failed_stage: None,
    };
    if let Err(RunError::Stage { error, .. }) = &result {
        ending = store_cmds::Ending {
            outcome: error.error.outcome,
            error: Some(error.error.to_string()),
            failed_stage: Some(error.error.stage.clone()),
        };
    } else if let Err(e) = &result {
        ending.outcome = keel_runtime::Outcome::Error;
        ending.error = Some(e.to_string());
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
    if let (Some(store), Some(job)) = (&store, input_job) {
        let (input_digest, payload) = job
            .join()
            .map_err(|_| anyhow::anyhow!("hashing the input panicked"))??;
        if let Some(bytes) = payload {
            store.put_payload(&bytes)?;
        }
        store_cmds::save_monitor_states(store, &pipeline, &summary, &identity)
            .context("saving monitor state")?;
        let mut record = store_cmds::record(
            &pipeline,
            &spec_text,
            &summary,
            input_digest,
            store_cmds::finish(&output_hash),
            &ending,
        );
        record.id = record_id;
        // Returns once the record is on disk: only then is the run acknowledged.
        let receipt = store
            .append(record)
            .context("recording the run in the audit log")?;
        eprintln!(
            "\naudit: record {} (seq {}) in {}",
            receipt.id,
            receipt.seq,
            store.dir().display()
        );
    }
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
