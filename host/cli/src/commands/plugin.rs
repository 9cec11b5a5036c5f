//! `keel plugin`: inspect components, add them to the store (checked, under
//! the trust policy), list and retire them; the supply-chain subcommands
//! (keys, signatures, the trust policy) are in [`sign`].

mod sign;

use super::Globals;
use crate::exit::{self, Failure, fail};
use crate::render;
use anyhow::{Context, Result};
use keel_runtime::{Plugin, Runtime};
use keel_store::{State, Store};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum PluginCommand {
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
    Keygen(sign::KeygenArgs),
    /// Sign a component: writes FILE.sig (over its sha256 digest).
    Sign(sign::SignArgs),
    /// Check a component's signature; exit 5 if it is not good.
    Verify(sign::VerifyArgs),
    /// The trust policy: keys whose signatures plugins need to be added or deployed.
    #[command(subcommand)]
    Trust(sign::TrustCommand),
    /// List stored plugins.
    Ls,
    /// Retire NAME@VERSION: no new pipeline may use it; its records stay.
    Retire { reference: String },
}

impl PluginCommand {
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        match self {
            PluginCommand::Inspect { file, json } => inspect(&file, json, globals),
            PluginCommand::Add {
                file,
                name,
                version,
                state,
                sig,
            } => {
                let state: State = state
                    .parse()
                    .map_err(|e| fail(exit::USAGE, anyhow::anyhow!("--state: {e}")))?;
                let rt = globals.runtime()?;
                add(&globals.store()?, &rt, &file, &name, &version, state, sig)
                    .map_err(exit::plugin_error)
            }
            PluginCommand::Keygen(c) => c.run(),
            PluginCommand::Sign(c) => c.run(),
            PluginCommand::Verify(c) => c.run(globals),
            PluginCommand::Trust(c) => c.run(globals),
            PluginCommand::Ls => Ok(ls(&globals.store()?)?),
            PluginCommand::Retire { reference } => {
                Ok(set_state(&globals.store()?, &reference, State::Retired)?)
            }
        }
    }
}

/// `keel plugin inspect`: what the component says it is, as text or JSON.
fn inspect(file: &Path, json: bool, globals: &Globals) -> Result<(), Failure> {
    let rt = globals.runtime()?;
    let plugin = Plugin::load_file(&rt, file).map_err(exit::plugin_failure)?;
    let s = plugin.summary();
    if json {
        outln!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    outln!("{}", render::inspect(s));
    Ok(())
}

/// `keel plugin add`: validates the component, stores it, tags it.
fn add(
    store: &Store,
    rt: &Runtime,
    file: &Path,
    name: &str,
    version: &str,
    state: State,
    sig: Option<PathBuf>,
) -> Result<()> {
    let bytes = std::fs::read(file)
        .with_context(|| format!("{}: cannot read plugin", file.display()))
        .map_err(exit::usage)?;
    let offered = match sig {
        Some(p) => Some(keel_ops::trust::Offered {
            text: std::fs::read_to_string(&p)
                .with_context(|| format!("reading {}", p.display()))?,
            source: p.display().to_string(),
        }),
        None => keel_ops::trust::Offered::read_if_exists(&keel_ops::trust::sig_path(file))?,
    };
    let (digest, s) =
        keel_ops::plugin_add_signed(store, rt, &bytes, name, version, state, offered.as_ref())
            .with_context(|| format!("adding {}", file.display()))?;
    outln!("{name}@{version} {digest} ({}, {state})", s.kind);
    Ok(())
}

/// `keel plugin ls`.
fn ls(store: &Store) -> Result<()> {
    let tags = store.list_plugins()?;
    if tags.is_empty() {
        outln!(
            "no plugins in the store (add one with `keel plugin add FILE --name N --version V`)"
        );
    }
    outln!(
        "{:<28} {:<10} {:<10} {:<11} {:<20} added",
        "plugin",
        "version",
        "kind",
        "state",
        "digest"
    );
    for t in tags {
        outln!(
            "{:<28} {:<10} {:<10} {:<11} {:<20} {}",
            t.name,
            t.version,
            t.meta.kind,
            t.state.to_string(),
            t.digest.short(),
            t.added_at
        );
    }
    Ok(())
}

/// `keel plugin retire N@V` (or another state).
fn set_state(store: &Store, reference: &str, state: State) -> Result<()> {
    let (name, version) = keel_store::split_reference(reference)?;
    store.set_state(name, version, state)?;
    outln!("{name}@{version}: {state}");
    Ok(())
}
