//! Precompiled components on disk, keyed by the component's sha256 and the
//! engine's compatibility hash, so a plugin is compiled once per machine and
//! engine configuration rather than once per run; and the read-only
//! artifacts of `keel compile`, keyed by digest alone (they were compiled on
//! another machine, for a target named in the bundle).

use crate::error::RuntimeError;
use std::path::PathBuf;
use wasmtime::Engine;
use wasmtime::component::Component;

pub(crate) struct Cache {
    dir: Option<PathBuf>,
    engine_hash: String,
    precompiled: Option<PathBuf>,
    #[cfg_attr(not(feature = "compiler"), allow(dead_code))]
    may_compile: bool,
    target: String,
}

/// The file name `keel compile` gives the artifact of the component with `digest`.
pub fn artifact_name(digest: &str) -> String {
    format!("{}.cwasm", digest.strip_prefix("sha256:").unwrap_or(digest))
}

#[cfg(feature = "compiler")]
fn engine_hash(engine: &Engine) -> String {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: stable across processes, which is what a cache key needs.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

#[cfg(not(feature = "compiler"))]
fn engine_hash(_engine: &Engine) -> String {
    String::new()
}

impl Cache {
    pub(crate) fn new(
        dir: Option<PathBuf>,
        precompiled: Option<PathBuf>,
        may_compile: bool,
        target: String,
        engine: &Engine,
    ) -> Cache {
        Cache {
            // Without a compiler there is no compatibility hash to key the
            // cache by (and nothing to put in it): only bundles are read.
            dir: dir.filter(|_| cfg!(feature = "compiler")),
            engine_hash: engine_hash(engine),
            precompiled,
            may_compile,
            target,
        }
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.engine_hash)))
    }

    /// The compiled component for `bytes` (with sha256 `digest`), from the
    /// cache when present, compiled and stored otherwise. Returns whether it
    /// was a cache hit.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
        label: &str,
    ) -> Result<(Component, bool), RuntimeError> {
        if let Some(path) = self
            .precompiled
            .as_ref()
            .map(|d| d.join(artifact_name(digest)))
            && path.exists()
        {
            // SAFETY: the directory is a bundle written by `keel compile`,
            // which the operator chose to run (the same trust as the .wasm
            // files next to it); wasmtime checks the header, target, flags
            // and version, and a mismatch is an error, not a recompilation.
            return match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => Ok((c, true)),
                Err(e) => Err(RuntimeError::Precompiled {
                    plugin: label.to_string(),
                    path,
                    message: format!("{e:#}"),
                }),
            };
        }
        if let Some(path) = self.path(digest)
            && path.exists()
        {
            // SAFETY: the file was written by `Component::serialize` into
            // Keel's own cache directory under a name that binds it to this
            // component's digest and this engine's compatibility hash; a file
            // that fails wasmtime's header checks is discarded and recompiled.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable cached artifact");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = self.compile(engine, bytes, digest, label)?;
        if let Some(path) = self.path(digest)
            && let Err(e) = self.store(&component, &path)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot write compile cache");
        }
        Ok((component, false))
    }

    #[cfg(feature = "compiler")]
    fn compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
        label: &str,
    ) -> Result<Component, RuntimeError> {
        if !self.may_compile {
            return Err(self.not_precompiled(digest, label));
        }
        // Anything that is neither binary WebAssembly nor WAT text (a CSV
        // named .wasm, say) would come back as a WAT syntax error: say what
        // it is not instead.
        if !bytes.starts_with(b"\0asm") && !looks_like_wat(bytes) {
            return Err(RuntimeError::Compile {
                plugin: label.to_string(),
                message: if bytes.is_empty() {
                    "the file is empty".into()
                } else {
                    format!(
                        "the file is not WebAssembly at all: it starts with `{}`, not with the bytes `\\0asm` of a compiled component (`keel build` makes one)",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(16)])
                            .chars()
                            .map(|c| if c.is_control() { '?' } else { c })
                            .collect::<String>()
                    )
                },
            });
        }
        Component::new(engine, bytes).map_err(|e| RuntimeError::Compile {
            plugin: label.to_string(),
            message: format!("{e:#}"),
        })
    }

    #[cfg(not(feature = "compiler"))]
    fn compile(
        &self,
        _engine: &Engine,
        _bytes: &[u8],
        digest: &str,
        label: &str,
    ) -> Result<Component, RuntimeError> {
        Err(self.not_precompiled(digest, label))
    }

    fn not_precompiled(&self, digest: &str, label: &str) -> RuntimeError {
        RuntimeError::NotPrecompiled {
            plugin: label.to_string(),
            digest: digest.to_string(),
            target: self.target.clone(),
        }
    }

    fn store(&self, component: &Component, path: &std::path::Path) -> Result<(), RuntimeError> {
        let err = |message: String| RuntimeError::Cache {
            path: path.to_path_buf(),
            message,
        };
        let bytes = component.serialize().map_err(|e| err(e.to_string()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        // Write then rename: a concurrent reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(|e| err(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
    }
}

/// Whether `bytes` could be WebAssembly text (which the engine also compiles):
/// after blanks, an s-expression or a comment.
#[cfg(feature = "compiler")]
fn looks_like_wat(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    start.is_some_and(|i| bytes[i..].starts_with(b"(") || bytes[i..].starts_with(b";;"))
}
