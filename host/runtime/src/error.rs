//! Errors of the runtime. A [`CallError`] is what one failed plugin call
//! becomes: it always names the plugin and the stage, and the limit when one
//! was breached, so an operator can tell "the plugin said no" from "the
//! sandbox stopped it".

use std::fmt;
use std::path::PathBuf;

/// How a plugin invocation ended (the audit log records this).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Returned normally.
    Ok,
    /// The plugin returned an error value (or a malformed result).
    Error,
    /// The plugin trapped (panic, abort, unreachable, memory cap, stack overflow).
    Trap,
    /// The CPU deadline expired.
    Timeout,
    /// A validator with policy `reject` refused the data.
    Rejected,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Trap => "trap",
            Outcome::Timeout => "timeout",
            Outcome::Rejected => "rejected",
        })
    }
}

/// One failed plugin call.
#[derive(Debug, Clone, thiserror::Error)]
pub struct CallError {
    /// Plugin name (from its metadata) and where it came from.
    pub plugin: String,
    /// The stage, validator or monitor name in the pipeline.
    pub stage: String,
    /// Which call: `create`, `process`, `validate`, `observe`, `report`, …
    pub call: &'static str,
    pub outcome: Outcome,
    /// The limit that was breached (`memory_mb = 64`, `timeout_ms = 500`, …).
    pub limit: Option<String>,
    /// The column the plugin named, if any.
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stage `{}` (plugin `{}`) {}: {} in `{}`",
            self.stage,
            self.plugin,
            self.outcome_phrase(),
            self.message,
            self.call
        )?;
        if let Some(c) = &self.column {
            write!(f, " [column `{c}`]")?;
        }
        if let Some(l) = &self.limit {
            write!(f, " [limit {l}]")?;
        }
        Ok(())
    }
}

impl CallError {
    fn outcome_phrase(&self) -> &'static str {
        match self.outcome {
            Outcome::Ok => "succeeded",
            Outcome::Error => "failed",
            Outcome::Trap => "trapped",
            Outcome::Timeout => "timed out",
            Outcome::Rejected => "rejected the data",
        }
    }
}

/// Everything else that can go wrong in the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot set up the wasmtime engine: {0}")]
    Engine(String),
    #[error("{}: cannot read plugin: {source}", path.display())]
    ReadPlugin {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("plugin `{plugin}` is not a valid WebAssembly component: {message}")]
    Compile { plugin: String, message: String },
    #[error(
        "plugin `{plugin}` imports `{interface}`, which this host does not grant \
         (granted: keel:plugin/host and WASI 0.2 with no authority unless the stage grants directories)"
    )]
    UnsupportedImport { plugin: String, interface: String },
    /// The plugin imports wasi:nn and this build has no `nn` feature.
    #[error(
        "plugin `{plugin}` imports `{interface}`, but this keel was built without the `nn` feature: \
         models cannot be served; rebuild with --features nn"
    )]
    NnDisabled { plugin: String, interface: String },
    #[error(
        "plugin `{plugin}` exports none of keel:plugin's transform, validator or monitor interfaces \
         (it exports: {exports})"
    )]
    UnknownKind { plugin: String, exports: String },
    #[error("plugin `{plugin}` is a {found}, but {role} needs a {expected}")]
    WrongKind {
        plugin: String,
        role: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("plugin `{plugin}` cannot be described: {message}")]
    Metadata { plugin: String, message: String },
    #[error(
        "plugin `{plugin}` ({digest}) is not precompiled for {target}, and this keel runs only \
         precompiled components (a runtime-only build, or a `keel compile` bundle): run \
         `keel compile PIPELINE --target {target}` with a full build and run the bundle it writes"
    )]
    NotPrecompiled {
        plugin: String,
        digest: String,
        target: String,
    },
    #[error(
        "plugin `{plugin}`: the precompiled artifact {} does not fit this keel ({message}); \
         compile the pipeline again for this target and keel version",
        path.display()
    )]
    Precompiled {
        plugin: String,
        path: PathBuf,
        message: String,
    },
    #[error("compile cache {}: {message}", path.display())]
    Cache { path: PathBuf, message: String },
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("sandbox for `{plugin}`: {message}")]
    Sandbox { plugin: String, message: String },
}

impl RuntimeError {
    /// A component the linker refused: it imports something the host does
    /// not grant. `imports` are the component's import names, to name the
    /// one at fault (else the linker's whole message is the interface); a
    /// `wasi:nn` import in a build without the `nn` feature says so.
    pub(crate) fn unlinked(
        plugin: &str,
        error: &wasmtime::Error,
        imports: &[String],
    ) -> RuntimeError {
        let text = format!("{error:#}");
        let interface = imports
            .iter()
            .find(|i| text.contains(i.as_str()))
            .cloned()
            .unwrap_or(text);
        if !cfg!(feature = "nn") && interface.contains("wasi:nn/") {
            return RuntimeError::NnDisabled {
                plugin: plugin.to_string(),
                interface,
            };
        }
        RuntimeError::UnsupportedImport {
            plugin: plugin.to_string(),
            interface,
        }
    }
}
