//! `keel model add | ls | inspect | retire`: ONNX models as versioned
//! artifacts in the store (content-addressed, `name@version`, the plugins'
//! lifecycle), checked by loading them into the tract backend first.

use super::Globals;
use crate::exit::{self, Failure, fail};
use anyhow::{Context, Result, anyhow};
use keel_runtime::nn::{Model, ModelInfo};
use keel_store::{PluginMeta, State, Store};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum ModelCommand {
    /// Check an ONNX model (the host must be able to run it) and store it as NAME@VERSION.
    Add {
        file: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        /// Lifecycle state: staged, active, deprecated.
        #[arg(long, default_value = "active")]
        state: String,
    },
    /// List stored models.
    Ls {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Inputs, outputs, shapes and opsets of NAME@VERSION (from the store) or of an .onnx file.
    Inspect {
        reference: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Retire NAME@VERSION: no new pipeline run may load it; its records stay.
    Retire { reference: String },
    /// Run a plain wasi:cli command that uses standard wasi:nn (no Keel
    /// contract) in Keel's sandbox, with the named models preloaded.
    Exec {
        /// The command component (.wasm).
        guest: PathBuf,
        /// A model it may load by name: NAME@VERSION from the store, or an .onnx path (repeatable).
        #[arg(long = "model")]
        models: Vec<String>,
        /// CPU deadline, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
        /// Arguments passed to the guest.
        #[arg(last = true)]
        args: Vec<String>,
    },
}

impl ModelCommand {
    /// Runs the subcommand and prints what it returns; every error is a usage error.
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        let store = || keel_ops::open(globals.store.as_deref());
        let out = match self {
            ModelCommand::Add {
                file,
                name,
                version,
                state,
            } => add(&file, &name, &version, &state, store),
            ModelCommand::Ls { json } => ls(json, store),
            ModelCommand::Inspect { reference, json } => inspect(&reference, json, store),
            ModelCommand::Exec {
                guest,
                models,
                timeout_ms,
                args,
            } => exec(&guest, &models, timeout_ms, &args, store),
            ModelCommand::Retire { reference } => retire(&reference, store),
        }
        .map_err(|e| fail(exit::USAGE, e))?;
        out!("{out}");
        Ok(())
    }
}

/// `keel model add`: loads the model into the backend, then stores and tags it.
fn add(
    file: &Path,
    name: &str,
    version: &str,
    state: &str,
    store: impl Fn() -> Result<Store>,
) -> Result<String> {
    let state: State = state.parse().map_err(|e| anyhow!("--state: {e}"))?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let model = Model::load(&bytes, &file.display().to_string())?;
    let store = store()?;
    let digest = store.put_model(&bytes)?;
    store
        .tag_model(name, version, &digest, meta(model.info()))
        .with_context(|| format!("tagging {name}@{version}"))?;
    if store.model_tag(name, version)?.map(|t| t.state) != Some(state) {
        store.set_model_state(name, version, state)?;
    }
    Ok(format!(
        "{name}@{version} {digest} (onnx, {state}): {}\n",
        signature(model.info())
    ))
}

/// `keel model ls`.
fn ls(json: bool, store: impl Fn() -> Result<Store>) -> Result<String> {
    let tags = store()?.list_models()?;
    if json {
        return Ok(serde_json::to_string_pretty(&tags)? + "\n");
    }
    let mut o = String::new();
    if tags.is_empty() {
        let _ = writeln!(
            o,
            "no models in the store (add one with `keel model add FILE.onnx --name N --version V`)"
        );
        return Ok(o);
    }
    let _ = writeln!(
        o,
        "{:<24} {:<10} {:<11} {:<14} {:<36} added",
        "model", "version", "state", "digest", "signature"
    );
    for t in tags {
        let _ = writeln!(
            o,
            "{:<24} {:<10} {:<11} {:<14} {:<36} {}",
            t.name,
            t.version,
            t.state.to_string(),
            t.digest.short(),
            t.meta.description,
            t.added_at
        );
    }
    Ok(o)
}

/// `keel model inspect`: a stored model or an .onnx file.
fn inspect(reference: &str, json: bool, store: impl Fn() -> Result<Store>) -> Result<String> {
    let path = PathBuf::from(reference);
    let (bytes, tag) = if keel_runtime::pipeline::is_model_path(reference) {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        (bytes, None)
    } else {
        let r = store()?.resolve_model(reference, keel_store::Purpose::Replay)?;
        (r.bytes, Some(r.tag))
    };
    let model = Model::load(&bytes, reference)?;
    let info = model.info();
    if json {
        let v = serde_json::json!({
            "reference": reference,
            "tag": tag,
            "model": info,
        });
        return Ok(serde_json::to_string_pretty(&v)? + "\n");
    }
    let state = tag
        .as_ref()
        .map_or_else(String::new, |t| format!(" ({})", t.state));
    Ok(describe(reference, &state, info))
}

/// `keel model inspect`'s text: header, tensors, operators.
fn describe(reference: &str, state: &str, info: &ModelInfo) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "model      {reference}{state} · {} · {} bytes",
        info.digest, info.size_bytes
    );
    let opsets: Vec<String> = info
        .opsets
        .iter()
        .map(|(d, v)| format!("{d} {v}"))
        .collect();
    let _ = writeln!(
        o,
        "producer   {} · IR version {} · opsets {}",
        if info.producer.is_empty() {
            "-"
        } else {
            &info.producer
        },
        info.ir_version,
        opsets.join(", ")
    );
    if !info.doc.is_empty() {
        let _ = writeln!(o, "doc        {}", info.doc);
    }
    for (title, tensors) in [("inputs", &info.inputs), ("outputs", &info.outputs)] {
        let _ = writeln!(o, "{title}");
        for t in tensors {
            let _ = writeln!(
                o,
                "  {:<24} {:<5} [{}]",
                t.name,
                t.datum_type,
                t.shape.join(", ")
            );
        }
    }
    let ops: Vec<String> = info
        .operators
        .iter()
        .map(|(op, n)| format!("{op} x{n}"))
        .collect();
    let _ = writeln!(o, "operators  {}", ops.join(", "));
    o
}

/// `keel model exec`: a plain wasi:cli command with the named models preloaded.
fn exec(
    guest: &Path,
    models: &[String],
    timeout_ms: u64,
    args: &[String],
    store: impl Fn() -> Result<Store>,
) -> Result<String> {
    use keel_runtime::pipeline::PluginResolver as _;
    let rt = keel_runtime::Runtime::new(keel_runtime::RuntimeOptions::default())
        .context("starting the runtime")?;
    let stored = if models
        .iter()
        .any(|m| !keel_runtime::pipeline::is_model_path(m))
    {
        Some(store()?)
    } else {
        None
    };
    let resolver = keel_ops::Resolver {
        store: stored.as_ref(),
        dirs: keel_runtime::pipeline::PluginDirs::default(),
    };
    let mut granted = Vec::new();
    for m in models {
        let found = resolver
            .resolve_model(m, Path::new("."))
            .map_err(|e| anyhow!("--model {m}: {e}"))?;
        let model = rt.load_model(&found.bytes, &found.label)?;
        granted.push(keel_runtime::nn::StageModel {
            name: found.name,
            reference: m.clone(),
            version: found.version,
            model,
        });
    }
    let bytes = std::fs::read(guest).with_context(|| format!("reading {}", guest.display()))?;
    let limits = keel_runtime::sandbox::Limits {
        timeout_ms,
        ..Default::default()
    };
    let out = keel_runtime::command::run_command(
        &rt,
        &bytes,
        &guest.display().to_string(),
        args,
        &granted,
        &limits,
    )?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.success {
        anyhow::bail!("{} exited with an error\n{text}", guest.display());
    }
    Ok(text)
}

/// `keel model retire`.
fn retire(reference: &str, store: impl Fn() -> Result<Store>) -> Result<String> {
    let (name, version) = keel_store::split_reference(reference)?;
    store()?.set_model_state(name, version, State::Retired)?;
    Ok(format!("{name}@{version}: retired\n"))
}

/// What the tag keeps: the format and a one-line signature for `keel model ls`.
fn meta(info: &ModelInfo) -> PluginMeta {
    PluginMeta {
        kind: "onnx".into(),
        description: signature(info),
        contract: None,
        config_schema: None,
    }
}

/// `features FP32[N,7] -> label I64[N], probabilities FP32[N,2]`.
fn signature(info: &ModelInfo) -> String {
    let list = |ts: &[keel_runtime::nn::TensorInfo]| {
        ts.iter()
            .map(|t| format!("{} {}[{}]", t.name, t.datum_type, t.shape.join(",")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("{} -> {}", list(&info.inputs), list(&info.outputs))
}
