//! A loaded plugin: compiled (or fetched from the cache), its kind detected
//! from its exports, its imports checked against what the host grants, its
//! metadata read, and an `InstancePre` ready for cheap instantiation.

use crate::bindings::{monitor, transform, types, validator};
use crate::engine::Runtime;
use crate::error::RuntimeError;
use crate::sandbox::{HostState, Limits};
use crate::store::StoreBuilder;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// The kind of a plugin, from the interface it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Transform,
    Validator,
    Monitor,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Transform => "transform",
            PluginKind::Validator => "validator",
            PluginKind::Monitor => "monitor",
        }
    }

    fn interface(self) -> &'static str {
        match self {
            PluginKind::Transform => "keel:plugin/transform@0.1.0",
            PluginKind::Validator => "keel:plugin/validator@0.1.0",
            PluginKind::Monitor => "keel:plugin/monitor@0.1.0",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `keel plugin inspect` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginSummary {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub description: String,
    pub digest: String,
    pub size_bytes: usize,
    pub config_schema: serde_json::Value,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub cached: bool,
}

pub(crate) enum Pre {
    Transform(transform::TransformPluginPre<HostState>),
    Validator(validator::ValidatorPluginPre<HostState>),
    Monitor(monitor::MonitorPluginPre<HostState>),
}

/// A plugin ready to instantiate. Cheap to clone (shared).
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Inner>,
}

struct Inner {
    summary: PluginSummary,
    source: String,
    pre: Pre,
}

impl Plugin {
    /// Loads the component at `path`.
    pub fn load_file(rt: &Runtime, path: &Path) -> Result<Plugin, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::ReadPlugin {
            path: path.to_path_buf(),
            source,
        })?;
        Plugin::load(rt, &bytes, &path.display().to_string())
    }

    /// Loads a component from bytes; `source` names it in errors (a path or `name@version`).
    pub fn load(rt: &Runtime, bytes: &[u8], source: &str) -> Result<Plugin, RuntimeError> {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        let (component, cached) = rt.cache.load(&rt.engine, bytes, &digest, source)?;
        let ty = component.component_type();
        let imports: Vec<String> = ty.imports(&rt.engine).map(|(n, _)| n.to_string()).collect();
        let exports: Vec<String> = ty.exports(&rt.engine).map(|(n, _)| n.to_string()).collect();
        let kind = [
            PluginKind::Transform,
            PluginKind::Validator,
            PluginKind::Monitor,
        ]
        .into_iter()
        .find(|k| exports.iter().any(|e| e == k.interface()))
        .ok_or_else(|| RuntimeError::UnknownKind {
            plugin: source.to_string(),
            exports: if exports.is_empty() {
                "nothing".into()
            } else {
                exports.join(", ")
            },
        })?;
        let pre = rt
            .linker
            .instantiate_pre(&component)
            .map_err(|e| RuntimeError::unlinked(source, &e, &imports))?;
        let compile_err = |e: wasmtime::Error| RuntimeError::Compile {
            plugin: source.to_string(),
            message: format!("{e:#}"),
        };
        let pre = match kind {
            PluginKind::Transform => {
                Pre::Transform(transform::TransformPluginPre::new(pre).map_err(compile_err)?)
            }
            PluginKind::Validator => {
                Pre::Validator(validator::ValidatorPluginPre::new(pre).map_err(compile_err)?)
            }
            PluginKind::Monitor => {
                Pre::Monitor(monitor::MonitorPluginPre::new(pre).map_err(compile_err)?)
            }
        };
        let info = describe(rt, &pre, source)?;
        let found = match info.kind {
            types::PluginKind::Transform | types::PluginKind::Model => PluginKind::Transform,
            types::PluginKind::Validator => PluginKind::Validator,
            types::PluginKind::Monitor => PluginKind::Monitor,
        };
        if found != kind {
            return Err(RuntimeError::Metadata {
                plugin: source.to_string(),
                message: format!("describes itself as a {found} but exports the {kind} interface"),
            });
        }
        let config_schema =
            serde_json::from_str(&info.config_schema).map_err(|e| RuntimeError::Metadata {
                plugin: source.to_string(),
                message: format!("config-schema is not JSON: {e}"),
            })?;
        Ok(Plugin {
            inner: Arc::new(Inner {
                summary: PluginSummary {
                    name: info.name,
                    version: info.version,
                    kind,
                    description: info.description,
                    digest,
                    size_bytes: bytes.len(),
                    config_schema,
                    imports,
                    exports,
                    cached,
                },
                source: source.to_string(),
                pre,
            }),
        })
    }

    /// Name from the plugin's metadata.
    pub fn name(&self) -> &str {
        &self.inner.summary.name
    }
    /// Version from the plugin's metadata.
    pub fn version(&self) -> &str {
        &self.inner.summary.version
    }
    /// Kind detected from exports.
    pub fn kind(&self) -> PluginKind {
        self.inner.summary.kind
    }
    /// `sha256:<hex>` of the component bytes.
    pub fn digest(&self) -> &str {
        &self.inner.summary.digest
    }
    /// Where it was loaded from.
    pub fn source(&self) -> &str {
        &self.inner.source
    }
    /// Everything known about it.
    pub fn summary(&self) -> &PluginSummary {
        &self.inner.summary
    }
    pub(crate) fn pre(&self) -> &Pre {
        &self.inner.pre
    }
}

/// Instantiates once in a scratch sandbox to read the metadata.
fn describe(rt: &Runtime, pre: &Pre, source: &str) -> Result<types::PluginInfo, RuntimeError> {
    let mut store = StoreBuilder::new(source, &Limits::default())
        .deadline_ms(5_000)
        .build(rt)
        .map_err(|message| RuntimeError::Sandbox {
            plugin: source.to_string(),
            message,
        })?;
    let err = |e: wasmtime::Error| RuntimeError::Metadata {
        plugin: source.to_string(),
        message: format!("{e:#}"),
    };
    match pre {
        Pre::Transform(p) => p
            .instantiate(&mut store)
            .and_then(|b| b.keel_plugin_metadata().call_describe(&mut store)),
        Pre::Validator(p) => p
            .instantiate(&mut store)
            .and_then(|b| b.keel_plugin_metadata().call_describe(&mut store)),
        Pre::Monitor(p) => p
            .instantiate(&mut store)
            .and_then(|b| b.keel_plugin_metadata().call_describe(&mut store)),
    }
    .map_err(err)
}
