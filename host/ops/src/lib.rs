//! keel-ops: operations over the store shared by the `keel` CLI and the
//! `keel serve` daemon — resolving plugin references, canonicalising and
//! deploying pipeline specs, materialising deployed versions, building audit
//! records and carrying monitor state between runs. Both write run results to
//! the store only through here: [`record`] (audit records and their
//! predictions), [`monitor_state`] (monitor state and history) and
//! [`feedback`] (labels, and predictions joined to them).

pub mod alerts;
pub mod explain;
pub mod feedback;
pub mod monitor_state;
pub mod record;
pub mod source;
pub mod trust;

pub use monitor_state::{
    load_monitor_states, metrics_json, report_json, save_monitor_states, window_report_json,
};
pub use record::{Ending, record};

use anyhow::{Context, Result, bail};
use keel_runtime::pipeline::{
    FoundModel, PluginDirs, PluginResolver, is_model_path, model_from_path,
};
use keel_runtime::{Plugin, Runtime};
use keel_store::{Digest, PluginMeta, State, Store, StoreError};
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Opens the store at `dir` (or the default location).
pub fn open(dir: Option<&Path>) -> Result<Store> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => Store::default_dir().context("locating the store")?,
    };
    Store::open(&dir).with_context(|| format!("opening the store at {}", dir.display()))
}

/// Plugin references: `name@version` from the store, anything else from
/// the plugin directories (or as a path).
pub struct Resolver<'a> {
    pub store: Option<&'a Store>,
    pub dirs: PluginDirs,
}

impl PluginResolver for Resolver<'_> {
    fn resolve(&self, reference: &str, spec_dir: &Path) -> Result<(Vec<u8>, String), String> {
        let is_path = reference.ends_with(".wasm") || reference.contains('/');
        if let Some(hex) = reference.strip_prefix("sha256:") {
            // A deployed spec names its plugins by digest.
            let store = self.store.ok_or("a deployed pipeline needs the store")?;
            let digest: Digest = format!("sha256:{hex}")
                .parse()
                .map_err(|e: StoreError| e.to_string())?;
            return match store.plugin_bytes(&digest) {
                Ok(Some(bytes)) => Ok((bytes, reference.to_string())),
                Ok(None) => Err(format!("plugin {reference} is not in the store")),
                Err(e) => Err(e.to_string()),
            };
        }
        match (self.store, reference.contains('@') && !is_path) {
            (Some(store), true) => store
                .resolve_for_new_pipeline(reference)
                .map(|r| (r.bytes, reference.to_string()))
                .map_err(|e| e.to_string()),
            (None, true) => Err(format!(
                "`{reference}` names a stored plugin, but auditing is off (--no-audit) so no store is open"
            )),
            _ => self.dirs.resolve(reference, spec_dir),
        }
    }

    fn resolve_model(&self, reference: &str, spec_dir: &Path) -> Result<FoundModel, String> {
        if is_model_path(reference) {
            return model_from_path(reference, spec_dir);
        }
        let store = self.store.ok_or_else(|| {
            format!(
                "`{reference}` names a stored model, but auditing is off (--no-audit) so no store is open"
            )
        })?;
        let r = store
            .resolve_model(reference, keel_store::Purpose::NewPipeline)
            .map_err(|e| e.to_string())?;
        Ok(FoundModel {
            bytes: r.bytes,
            name: r.tag.name.clone(),
            version: Some(r.tag.version.clone()),
            label: reference.to_string(),
        })
    }
}

/// A writer that hashes everything written through it (the output digest).
pub struct Hashing<W> {
    inner: W,
    hash: Arc<Mutex<Sha256>>,
}

impl<W> Hashing<W> {
    pub fn new(inner: W) -> (Hashing<W>, Arc<Mutex<Sha256>>) {
        let hash = Arc::new(Mutex::new(Sha256::new()));
        (
            Hashing {
                inner,
                hash: hash.clone(),
            },
            hash,
        )
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Ok(mut h) = self.hash.lock() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The digest of a finished hash.
pub fn finish(hash: &Arc<Mutex<Sha256>>) -> Option<Digest> {
    let h = hash.lock().ok()?.clone();
    Some(Digest::from_hash(h.finalize().into()))
}

/// The digest of a file and, with `keep`, its bytes (read once for both).
pub fn read_input(path: &Path, keep: bool) -> Result<(Digest, Option<Vec<u8>>)> {
    if keep {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        return Ok((Digest::of(&bytes), Some(bytes)));
    }
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let (mut w, hash) = Hashing::new(std::io::sink());
    std::io::copy(&mut f, &mut w).with_context(|| format!("reading {}", path.display()))?;
    Ok((finish(&hash).context("hashing the input")?, None))
}

/// A spec made self-contained: plugins named by digest, reference files by
/// payload digest, grant paths absolute. Its digest is the pipeline's digest
/// whether it is deployed or run from its file.
pub struct Canonical {
    pub text: String,
    pub plugins: Vec<(String, Digest)>,
    /// (file name in the canonical spec, bytes) of every reference file.
    pub files: Vec<(String, Vec<u8>)>,
    /// Plugin bytes by digest.
    pub plugin_bytes: Vec<(Digest, Vec<u8>)>,
    /// Where each of `plugin_bytes` came from (a path, `name@version` or a
    /// digest): deploy looks for a `.sig` file next to a path.
    pub plugin_sources: Vec<String>,
}

fn file_entry(dir: &Path, value: &str) -> Result<(String, Vec<u8>)> {
    if value.starts_with("sha256:") {
        bail!("`{value}` is already a stored file");
    }
    let path = dir.join(value);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("csv");
    Ok((format!("{}.{ext}", Digest::of(&bytes)), bytes))
}

/// Calls `f(section, role, name, entry)` for every validator, stage and
/// monitor entry of a spec's table, in that order: where plugin, reference
/// file and model references sit, for whatever rewrites them (canonical
/// specs, `keel compile`'s bundles).
pub fn for_each_entry(
    table: &mut toml::Table,
    mut f: impl FnMut(&str, &str, &str, &mut toml::Table) -> Result<()>,
) -> Result<()> {
    for (section, role) in [
        ("validators", "validator"),
        ("stages", "stage"),
        ("monitors", "monitor"),
    ] {
        let Some(toml::Value::Array(items)) = table.get_mut(section) else {
            continue;
        };
        for t in items.iter_mut().filter_map(|i| i.as_table_mut()) {
            let name = t
                .get("name")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            f(section, role, &name, t)?;
        }
    }
    Ok(())
}

/// Canonicalises the spec at `spec_path` (resolving plugins with `resolver`).
pub fn canonicalize(
    spec_path: &Path,
    text: &str,
    resolver: &dyn PluginResolver,
) -> Result<Canonical> {
    let dir = spec_path.parent().unwrap_or(Path::new("."));
    let mut table: toml::Table =
        toml::from_str(text).with_context(|| format!("parsing {}", spec_path.display()))?;
    let mut out = Canonical {
        text: String::new(),
        plugins: Vec::new(),
        files: Vec::new(),
        plugin_bytes: Vec::new(),
        plugin_sources: Vec::new(),
    };
    if let Some(toml::Value::String(r)) = table.get("reference").cloned() {
        let (name, bytes) = file_entry(dir, &r)?;
        table.insert("reference".into(), toml::Value::String(name.clone()));
        out.files.push((name, bytes));
    }
    for_each_entry(&mut table, |section, role, name, t| {
        let reference = t
            .get("plugin")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let (bytes, source) = resolver
            .resolve(&reference, dir)
            .map_err(|e| anyhow::anyhow!("{section} `{name}`: {e}"))?;
        let digest = Digest::of(&bytes);
        t.insert("plugin".into(), toml::Value::String(digest.to_string()));
        out.plugins.push((format!("{role}:{name}"), digest.clone()));
        out.plugin_bytes.push((digest, bytes));
        out.plugin_sources.push(source);
        if let Some(toml::Value::String(r)) = t.get("reference").cloned() {
            let (file, bytes) = file_entry(dir, &r)?;
            t.insert("reference".into(), toml::Value::String(file.clone()));
            out.files.push((file, bytes));
        }
        if let Some(toml::Value::Array(grants)) = t.get_mut("grants") {
            for g in grants.iter_mut().filter_map(|g| g.as_table_mut()) {
                if let Some(toml::Value::String(h)) = g.get("host").cloned() {
                    let abs = std::path::absolute(dir.join(&h)).unwrap_or_else(|_| dir.join(&h));
                    g.insert(
                        "host".into(),
                        toml::Value::String(abs.display().to_string()),
                    );
                }
            }
        }
        Ok(())
    })?;
    out.text = toml::to_string(&table).context("writing the canonical spec")?;
    Ok(out)
}

/// What a deploy stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deployed {
    pub name: String,
    pub version: String,
    pub digest: Digest,
    pub plugins: usize,
    pub files: usize,
}

/// `keel pipeline deploy`: checks every plugin loads, then stores plugins,
/// reference files and the canonical spec.
pub fn pipeline_deploy(
    store: &Store,
    rt: &Runtime,
    spec_path: &Path,
    dirs: PluginDirs,
) -> Result<Deployed> {
    let text = std::fs::read_to_string(spec_path)
        .with_context(|| format!("reading {}", spec_path.display()))?;
    let spec = keel_runtime::spec::PipelineSpec::parse(&text, spec_path)?;
    let resolver = Resolver {
        store: Some(store),
        dirs,
    };
    let canonical = canonicalize(spec_path, &text, &resolver)?;
    // Every plugin passes the trust policy before anything is stored.
    trust::check_canonical(store, &canonical)?;
    for (digest, bytes) in &canonical.plugin_bytes {
        // Only components that load here are stored.
        Plugin::load(rt, bytes, digest.as_str())
            .with_context(|| format!("checking plugin {digest}"))?;
        store.put_plugin(bytes)?;
    }
    for (_, bytes) in &canonical.files {
        store.put_payload(bytes)?;
    }
    let digest = store.put_pipeline(
        &spec.name,
        &spec.version,
        &canonical.text,
        &canonical.plugins,
    )?;
    store.flush()?;
    Ok(Deployed {
        name: spec.name.clone(),
        version: spec.version.clone(),
        digest,
        plugins: canonical.plugins.len(),
        files: canonical.files.len(),
    })
}

/// Checks that `bytes` are a Keel component, stores them and tags them
/// `name@version` in lifecycle `state`. Under a trust policy the plugin must
/// carry a trusted signature: `signature`, or one already in the store.
pub fn plugin_add_signed(
    store: &Store,
    rt: &Runtime,
    bytes: &[u8],
    name: &str,
    version: &str,
    state: State,
    signature: Option<&trust::Offered>,
) -> Result<(Digest, keel_runtime::PluginSummary)> {
    trust::check(store, bytes, &format!("plugin {name}@{version}"), signature)?;
    let plugin = Plugin::load(rt, bytes, &format!("{name}@{version}"))
        .with_context(|| format!("checking {name}@{version}"))?;
    let digest = store.put_plugin(bytes)?;
    let s = plugin.summary().clone();
    store.tag_plugin(
        name,
        version,
        &digest,
        PluginMeta {
            kind: s.kind.as_str().to_string(),
            description: s.description.clone(),
            contract: Some(keel_runtime::CONTRACT.to_string()),
            config_schema: Some(s.config_schema.to_string()),
        },
    )?;
    if store.lifecycle(name, version)? != state {
        store.set_state(name, version, state)?;
    }
    Ok((digest, s))
}

/// A deployed version, or the latest when `reference` has no `@VERSION`.
pub fn get_deployed(store: &Store, reference: &str) -> Result<keel_store::PipelineRecord> {
    let (name, version) = match reference.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (reference, None),
    };
    store
        .get_pipeline(name, version)?
        .with_context(|| format!("no deployed pipeline `{reference}` (see `keel pipeline ls`)"))
}

/// Writes a deployed pipeline's spec and reference files into `dir`, ready
/// for `Pipeline::load`; returns the spec's path and its canonical text.
pub fn materialize(store: &Store, reference: &str, dir: &Path) -> Result<(PathBuf, String)> {
    let p = get_deployed(store, reference)?;
    let table: toml::Table = toml::from_str(&p.spec_toml)?;
    let mut files: Vec<String> = Vec::new();
    if let Some(r) = table.get("reference").and_then(|v| v.as_str()) {
        files.push(r.to_string());
    }
    if let Some(toml::Value::Array(ms)) = table.get("monitors") {
        files.extend(ms.iter().filter_map(|m| {
            m.get("reference")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        }));
    }
    for f in files {
        let digest: Digest = f.rsplit_once('.').map_or(f.as_str(), |(d, _)| d).parse()?;
        let bytes = store.payload(&digest)?.with_context(|| {
            format!("reference file {f} of {reference} is no longer in the store")
        })?;
        std::fs::write(dir.join(&f), bytes)?;
    }
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, &p.spec_toml)?;
    Ok((path, p.spec_toml))
}
