//! Precompiled bundles (`keel compile`): the manifest a bundle carries, and
//! how `keel run` recognises one and configures its engine to load the
//! artifacts instead of compiling. Present in every build; writing bundles
//! needs the compiler (`compile_cmd`).

use anyhow::{Context, Result, bail};
use keel_runtime::RuntimeOptions;
use std::path::{Path, PathBuf};

/// The manifest's file name, next to the bundle's `pipeline.toml`.
pub const MANIFEST: &str = "keel-bundle.json";
/// Where the artifacts are, relative to the bundle.
pub const PRECOMPILED: &str = "precompiled";

/// What `keel compile` wrote.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Bundle format version.
    pub format: u32,
    /// The keel that wrote it (artifacts are bound to its wasmtime version).
    pub keel: String,
    /// `x86_64`, `aarch64` or `pulley64`.
    pub target: String,
    /// The target triple the artifacts were compiled for.
    pub triple: String,
    pub pipeline: PipelineInfo,
    pub plugins: Vec<PluginArtifact>,
    pub models: Vec<String>,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PipelineInfo {
    pub name: String,
    pub version: String,
    /// The digest of the canonical spec compiled (what a deploy of it records).
    pub digest: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PluginArtifact {
    /// `stage:NAME`, `validator:NAME` or `monitor:NAME` (all roles using it).
    pub roles: Vec<String>,
    pub digest: String,
    /// The component, relative to the bundle.
    pub wasm: String,
    /// The precompiled artifact, relative to the bundle.
    pub artifact: String,
    pub wasm_bytes: u64,
    pub artifact_bytes: u64,
    pub compile_ms: f64,
}

/// The bundle whose `pipeline.toml` is `spec`, if it is one.
pub fn detect(spec: &Path) -> Result<Option<(PathBuf, Manifest)>> {
    let Some(dir) = spec.parent().filter(|_| spec.is_file()) else {
        return Ok(None);
    };
    let path = dir.join(MANIFEST);
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let m: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a keel bundle manifest", path.display()))?;
    if m.format != 1 {
        bail!(
            "{}: bundle format {} is not one this keel reads (1)",
            path.display(),
            m.format
        );
    }
    Ok(Some((dir.to_path_buf(), m)))
}

/// Engine options that run the bundle in `dir`: its artifacts, its target
/// (the interpreter for `pulley64`), never a compilation. A bundle for
/// another architecture is refused here, before anything is loaded.
pub fn runtime_options(
    mut options: RuntimeOptions,
    dir: &Path,
    m: &Manifest,
) -> Result<RuntimeOptions> {
    let host = keel_runtime::host_target();
    if m.target != host && m.target != "pulley64" {
        bail!(
            "{}: this bundle was compiled for {}, and this keel runs on {host}; \
             compile it again with `keel compile PIPELINE --target {host}` (or `--target pulley64`, which runs anywhere)",
            dir.display(),
            m.target
        );
    }
    if m.keel != env!("CARGO_PKG_VERSION") {
        tracing::warn!(
            bundle = %m.keel,
            keel = env!("CARGO_PKG_VERSION"),
            "bundle written by another keel version; its artifacts are checked as they load"
        );
    }
    options.precompiled_dir = Some(dir.join(PRECOMPILED));
    options.target = (m.target == "pulley64").then(|| m.triple.clone());
    options.require_precompiled = true;
    Ok(options)
}
