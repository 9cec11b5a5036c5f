//! Finding what a spec names: plugin components (in plugin directories or by
//! path) and model files; a caller with a store brings its own resolver.

use std::path::{Path, PathBuf};

/// Finds plugin bytes for a spec's `plugin = "…"` value.
pub trait PluginResolver {
    /// Returns the component bytes and a label for errors and records.
    fn resolve(&self, reference: &str, spec_dir: &Path) -> Result<(Vec<u8>, String), String>;

    /// Finds the model a stage's `models = [...]` entry names. By default
    /// only paths (relative to the spec); a resolver with a store also
    /// resolves `name@version`.
    fn resolve_model(&self, reference: &str, spec_dir: &Path) -> Result<FoundModel, String> {
        model_from_path(reference, spec_dir)
    }
}

/// A model file found for a stage.
#[derive(Debug, Clone)]
pub struct FoundModel {
    pub bytes: Vec<u8>,
    /// The name the plugin loads it by.
    pub name: String,
    /// The stored version, for `name@version` references.
    pub version: Option<String>,
    /// Where it came from, for errors and records.
    pub label: String,
}

/// Whether a `models` entry is a path (else `name@version`).
pub fn is_model_path(reference: &str) -> bool {
    reference.ends_with(".onnx") || reference.contains('/') || !reference.contains('@')
}

/// Reads a model named by path, relative to the spec; its name is the file stem.
pub fn model_from_path(reference: &str, spec_dir: &Path) -> Result<FoundModel, String> {
    if !is_model_path(reference) {
        return Err(format!(
            "`{reference}` names a stored model, but no store is open (auditing is off?); name an .onnx file instead"
        ));
    }
    let path = spec_dir.join(reference);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| format!("{}: no file name to load the model by", path.display()))?
        .to_string();
    Ok(FoundModel {
        bytes,
        name,
        version: None,
        label: path.display().to_string(),
    })
}

/// Resolves `name` as `<dir>/<name>.wasm` in each directory in turn, and a
/// value ending in `.wasm` or containing `/` as a path relative to the spec.
#[derive(Debug, Clone, Default)]
pub struct PluginDirs(pub Vec<PathBuf>);

impl PluginResolver for PluginDirs {
    fn resolve(&self, reference: &str, spec_dir: &Path) -> Result<(Vec<u8>, String), String> {
        let read = |p: &Path| {
            std::fs::read(p)
                .map(|b| (b, p.display().to_string()))
                .map_err(|e| format!("{}: {e}", p.display()))
        };
        if reference.ends_with(".wasm") || reference.contains('/') {
            return read(&spec_dir.join(reference));
        }
        for d in &self.0 {
            let p = d.join(format!("{reference}.wasm"));
            if p.is_file() {
                return read(&p);
            }
        }
        Err(format!(
            "no plugin `{reference}` in the plugin directories ({}); pass --plugin-dir or set KEEL_PLUGIN_PATH",
            self.0
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}
