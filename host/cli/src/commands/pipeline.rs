//! `keel pipeline`: deploy pipeline versions into the store (through
//! keel-ops, as the daemon's admin API does), list and show them, and set
//! which of their runs keep input payloads.

use super::Globals;
use crate::exit::{self, Failure, fail};
use anyhow::{Result, bail};
use keel_ops::get_deployed;
use keel_runtime::pipeline::PluginDirs;
use keel_store::Store;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum PipelineCommand {
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

impl PipelineCommand {
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        match self {
            PipelineCommand::Deploy { file, plugin_dirs } => {
                let rt = globals.runtime()?;
                let d = keel_ops::pipeline_deploy(
                    &globals.store()?,
                    &rt,
                    &file,
                    PluginDirs(plugin_dirs),
                )
                .map_err(|e| fail(exit::USAGE, e))?;
                outln!(
                    "{}@{} {} ({} plugins, {} reference files)",
                    d.name,
                    d.version,
                    d.digest,
                    d.plugins,
                    d.files
                );
                Ok(())
            }
            PipelineCommand::Ls => Ok(pipeline_ls(&globals.store()?)?),
            PipelineCommand::Show { reference } => {
                Ok(pipeline_show(&globals.store()?, &reference)?)
            }
            PipelineCommand::Retention { pipeline, policy } => {
                set_retention(&globals.store()?, &pipeline, &policy)
                    .map_err(|e| fail(exit::USAGE, e))
            }
        }
    }
}

/// `keel pipeline ls`.
fn pipeline_ls(store: &Store) -> Result<()> {
    let list = store.list_pipelines()?;
    if list.is_empty() {
        outln!("no pipelines deployed (deploy one with `keel pipeline deploy FILE.toml`)");
        return Ok(());
    }
    outln!(
        "{:<24} {:<10} {:<20} {:>7}  added",
        "pipeline",
        "version",
        "digest",
        "plugins"
    );
    for p in list {
        outln!(
            "{:<24} {:<10} {:<20} {:>7}  {}",
            p.name,
            p.version,
            p.digest.short(),
            p.plugins.len(),
            p.added_at
        );
    }
    Ok(())
}

/// `keel pipeline show NAME[@VERSION]`.
fn pipeline_show(store: &Store, reference: &str) -> Result<()> {
    let p = get_deployed(store, reference)?;
    outln!(
        "# {}@{} {} (deployed {})",
        p.name,
        p.version,
        p.digest,
        p.added_at
    );
    for pl in &p.plugins {
        let tags: Vec<String> = store
            .list_plugins()?
            .into_iter()
            .filter(|t| t.digest == pl.digest)
            .map(|t| format!("{}@{} ({})", t.name, t.version, t.state))
            .collect();
        outln!("# {:<28} {} {}", pl.role, pl.digest, tags.join(", "));
    }
    outln!("{}", p.spec_toml);
    Ok(())
}

/// `keel pipeline retention NAME POLICY`: `all`, `digests-only` or `sample=RATE`.
fn set_retention(store: &Store, pipeline: &str, policy: &str) -> Result<()> {
    let retention = match policy {
        "all" => keel_store::Retention::All,
        "digests-only" => keel_store::Retention::DigestsOnly,
        other => match other.strip_prefix("sample=").map(str::parse::<f64>) {
            Some(Ok(rate)) if (0.0..=1.0).contains(&rate) => keel_store::Retention::Sample { rate },
            _ => bail!(
                "retention `{other}`: expected all, digests-only or sample=RATE with RATE in 0..=1"
            ),
        },
    };
    store.set_retention(pipeline, retention)?;
    store.flush()?;
    outln!("{pipeline}: payloads {policy}");
    Ok(())
}
