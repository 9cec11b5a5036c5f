//! `keel compile`: precompiles every component of a pipeline for a target
//! and writes a self-contained bundle (spec, components, artifacts,
//! reference files, models, manifest) that a runtime-only keel runs with
//! `keel run BUNDLE/pipeline.toml` without compiling anything.

use super::Globals;
use crate::bundle::{self, Manifest, PipelineInfo, PluginArtifact};
use crate::exit::{self, Failure, fail};
use anyhow::{Context, Result, bail};
use keel_ops::Canonical;
use keel_ops::source::{self, Spec, Trust};
use keel_runtime::pipeline::{PluginDirs, PluginResolver};
use keel_runtime::{Runtime, RuntimeOptions, TARGETS};
use keel_store::Store;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct CompileArgs {
    /// The pipeline: a spec file (TOML), or NAME[@VERSION] deployed in the store.
    pipeline: PathBuf,
    /// x86_64, aarch64 or pulley64 (wasmtime's portable interpreter) [default: this machine].
    #[arg(long)]
    target: Option<String>,
    /// Where to write the bundle [default: NAME-VERSION-TARGET].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Directories searched for `plugin = "name"` as name.wasm (repeatable).
    #[arg(long = "plugin-dir", env = "KEEL_PLUGIN_PATH", value_delimiter = ':')]
    plugin_dirs: Vec<PathBuf>,
}

/// The signature of a plugin: the `.sig` beside the file it came from, else
/// the first the store kept for its digest.
fn signature_of(
    store: Option<&Store>,
    digest: &keel_store::Digest,
    source: &str,
) -> Result<Option<String>> {
    let file = Path::new(source);
    if file.is_file()
        && let Some(o) = keel_ops::trust::Offered::read_if_exists(&keel_ops::trust::sig_path(file))?
    {
        return Ok(Some(o.text));
    }
    Ok(match store {
        Some(s) => s.signatures(digest)?.into_iter().next(),
        None => None,
    })
}

impl CompileArgs {
    /// Writes the bundle and prints what is in it; every error is a usage error.
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        let out = compile(&self, globals.store.as_deref()).map_err(|e| fail(exit::USAGE, e))?;
        out!("{out}");
        Ok(())
    }
}

/// Builds the bundle; returns what to print.
fn compile(args: &CompileArgs, store_dir: Option<&Path>) -> Result<String> {
    let target = target(args)?;
    // A spec file needs the store only for `name@version` references; a
    // deployed pipeline lives there.
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let store: Option<Store> = if args.pipeline.is_file() {
        keel_ops::open(store_dir).ok()
    } else {
        Some(keel_ops::open(store_dir)?)
    };
    // Nothing runs here: the trust policy is checked where the bundle runs.
    let source = source::open(
        Spec::Arg(args.pipeline.clone()),
        store.as_ref(),
        PluginDirs(args.plugin_dirs.clone()),
        scratch.path(),
        Trust::Skip,
    )?;
    let spec_path = source.path();
    let spec_dir = spec_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let text = source.read()?;
    let spec = keel_runtime::spec::PipelineSpec::parse(&text, spec_path)?;
    let canonical = source.canonicalize()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}-{}-{target}", spec.name, spec.version)));
    if out.join(bundle::MANIFEST).exists() {
        // Rewriting in place: stale artifacts of removed plugins must not linger.
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    for sub in ["plugins", bundle::PRECOMPILED, "files", "models"] {
        std::fs::create_dir_all(out.join(sub))
            .with_context(|| format!("creating {}", out.join(sub).display()))?;
    }
    let mut table: toml::Table = toml::from_str(&canonical.text)?;
    let rewritten = rewrite_spec(&mut table, &canonical, source.resolver(), &spec_dir, &out)?;
    let plugins = precompile(&target, &canonical, &rewritten.roles, store.as_ref(), &out)?;
    let spec_text = toml::to_string(&table).context("writing the bundle's spec")?;
    std::fs::write(out.join("pipeline.toml"), &spec_text)?;
    let manifest = Manifest {
        format: 1,
        keel: env!("CARGO_PKG_VERSION").to_string(),
        triple: keel_runtime::target_triple(&target).to_string(),
        target: target.clone(),
        pipeline: PipelineInfo {
            name: spec.name.clone(),
            version: spec.version.clone(),
            digest: keel_store::digest_pipeline(&canonical.text, &canonical.plugins).to_string(),
        },
        plugins,
        models: rewritten.models,
        files: rewritten.files,
    };
    std::fs::write(
        out.join(bundle::MANIFEST),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    describe(&manifest, &out)
}

/// `--target`, checked; this machine's by default.
fn target(args: &CompileArgs) -> Result<String> {
    let target = args
        .target
        .clone()
        .unwrap_or_else(|| keel_runtime::host_target().to_string());
    if !TARGETS.iter().any(|(n, _)| *n == target) {
        bail!(
            "--target {target}: not a target keel compiles for (one of: {})",
            TARGETS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(target)
}

/// What the spec's rewrite wrote into the bundle.
struct Rewritten {
    /// `role:name` entries by plugin digest (hex).
    roles: BTreeMap<String, Vec<String>>,
    models: Vec<String>,
    files: Vec<String>,
}

/// Rewrites the canonical spec's table to name the bundle's files: plugins
/// as `plugins/HEX.wasm`, reference files under `files/`, models under
/// `models/` (written there under the name the plugin loads them by).
fn rewrite_spec(
    table: &mut toml::Table,
    canonical: &Canonical,
    resolver: &dyn PluginResolver,
    spec_dir: &Path,
    out: &Path,
) -> Result<Rewritten> {
    let mut files = Vec::new();
    let mut rewrite_file = |v: &mut toml::Value| -> Result<()> {
        if let Some(name) = v.as_str()
            && let Some(file) = name.strip_prefix("sha256:")
        {
            let bytes = canonical
                .files
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, b)| b)
                .with_context(|| {
                    format!("reference file {name} missing from the canonical spec")
                })?;
            let rel = format!("files/{file}");
            std::fs::write(out.join(&rel), bytes)?;
            files.push(rel.clone());
            *v = toml::Value::String(rel);
        }
        Ok(())
    };
    if let Some(v) = table.get_mut("reference") {
        rewrite_file(v)?;
    }
    let mut roles: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut models = Vec::new();
    keel_ops::for_each_entry(table, |section, role, name, t| {
        if let Some(p) = t.get_mut("plugin")
            && let Some(d) = p.as_str().and_then(|s| s.strip_prefix("sha256:"))
        {
            let d = d.to_string();
            roles
                .entry(d.clone())
                .or_default()
                .push(format!("{role}:{name}"));
            *p = toml::Value::String(format!("plugins/{d}.wasm"));
        }
        if let Some(v) = t.get_mut("reference") {
            rewrite_file(v)?;
        }
        // Models go into the bundle under the name the plugin loads them by.
        if let Some(toml::Value::Array(ms)) = t.get_mut("models") {
            for m in ms.iter_mut() {
                let Some(reference) = m.as_str().map(str::to_string) else {
                    continue;
                };
                let found = resolver
                    .resolve_model(&reference, spec_dir)
                    .map_err(|e| anyhow::anyhow!("{section} `{name}`: model {e}"))?;
                let rel = format!("models/{}.onnx", found.name);
                std::fs::write(out.join(&rel), &found.bytes)?;
                models.push(rel.clone());
                *m = toml::Value::String(rel);
            }
        }
        Ok(())
    })?;
    Ok(Rewritten {
        roles,
        models,
        files,
    })
}

/// Writes each distinct plugin (with its signature) and its artifact
/// compiled for `target` into the bundle.
fn precompile(
    target: &str,
    canonical: &Canonical,
    roles: &BTreeMap<String, Vec<String>>,
    store: Option<&Store>,
    out: &Path,
) -> Result<Vec<PluginArtifact>> {
    let compiler = Runtime::precompiler(&RuntimeOptions::default(), target)
        .with_context(|| format!("an engine for {target}"))?;
    let mut plugins = Vec::new();
    for ((digest, bytes), source) in canonical.plugin_bytes.iter().zip(&canonical.plugin_sources) {
        let hex = digest.hex().to_string();
        if plugins
            .iter()
            .any(|p: &PluginArtifact| p.digest == digest.as_str())
        {
            continue;
        }
        let wasm = format!("plugins/{hex}.wasm");
        std::fs::write(out.join(&wasm), bytes)?;
        // Its signature travels with it, so a store with a trust policy on
        // the target runs the bundle (`keel run` checks `.sig` files beside plugins).
        if let Some(sig) = signature_of(store, digest, source)? {
            std::fs::write(out.join(format!("{wasm}.sig")), sig)?;
        }
        let t = Instant::now();
        let artifact = compiler
            .compile(bytes, digest.as_str())
            .with_context(|| format!("compiling {digest} for {target}"))?;
        let compile_ms = t.elapsed().as_secs_f64() * 1e3;
        let rel = format!(
            "{}/{}",
            bundle::PRECOMPILED,
            keel_runtime::artifact_name(digest.as_str())
        );
        std::fs::write(out.join(&rel), &artifact)?;
        plugins.push(PluginArtifact {
            roles: roles.get(&hex).cloned().unwrap_or_default(),
            digest: digest.to_string(),
            wasm,
            artifact: rel,
            wasm_bytes: bytes.len() as u64,
            artifact_bytes: artifact.len() as u64,
            compile_ms,
        });
    }
    Ok(plugins)
}

/// What `keel compile` prints: the bundle, each plugin's sizes and compile time.
fn describe(manifest: &Manifest, out: &Path) -> Result<String> {
    let mut s = String::new();
    writeln!(
        s,
        "compiled {}@{} for {} ({}) into {}",
        manifest.pipeline.name,
        manifest.pipeline.version,
        manifest.target,
        manifest.triple,
        out.display()
    )?;
    for p in &manifest.plugins {
        writeln!(
            s,
            "  {:<40} {:>9} KiB wasm -> {:>9} KiB precompiled in {:>7.0} ms  ({})",
            &p.digest[..p.digest.len().min(19)],
            p.wasm_bytes / 1024,
            p.artifact_bytes / 1024,
            p.compile_ms,
            p.roles.join(", ")
        )?;
    }
    writeln!(
        s,
        "run it with: keel run {} --input DATA",
        out.join("pipeline.toml").display()
    )?;
    Ok(s)
}
