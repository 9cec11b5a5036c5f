//! `keel-runtime`: runs Keel plugins (WebAssembly components) sandboxed and
//! chains them into pipelines.
//!
//! - [`Runtime`] owns the wasmtime engine (pooling allocator, epoch deadlines,
//!   NaN canonicalisation), the host linker, and the compile cache. Without
//!   the `compiler` feature (Cranelift) it loads only precompiled artifacts
//!   (`keel compile`): the edge build.
//! - [`Plugin`] is one loaded component: digest, kind detected from its
//!   exports, metadata, and an `InstancePre` ready to instantiate cheaply.
//! - [`sandbox`] holds per-instance host state: WASI with nothing granted,
//!   memory caps, virtual clocks and seeded randomness, guest output to `tracing`;
//!   `store` is the one place a sandboxed wasmtime `Store` is built (limiter,
//!   epoch deadline, grants, models).
//! - [`instance`] wraps a live plugin instance and turns traps, timeouts and
//!   limit breaches into [`CallError`]s that name plugin, stage and limit.
//! - [`nn`] runs ONNX graphs for model plugins behind `wasi:nn` (tract backend,
//!   graphs shared per model digest); [`command`] runs plain `wasi:cli`
//!   guests that use them.
//! - [`spec`] parses pipeline specs (TOML); [`pipeline`] executes them, one
//!   file per job (resolve, load, worker, run, monitors).
//! - [`window`] cuts a monitor's stream into windows; [`alert`] turns window
//!   reports into alerts (hysteresis, cooldown) and hands them to the
//!   caller's [`alert::AlertSink`]: the runtime itself does no network I/O.

// Errors here carry plugin, stage, limit and message for the operator; they
// are on the failure path only, so their size costs nothing where it matters.
#![allow(clippy::result_large_err)]

pub mod alert;
pub mod bindings;
mod cache;
pub mod command;
mod convert;
mod engine;
pub mod error;
pub mod instance;
pub mod nn;
pub mod pipeline;
mod plugin;
pub mod sandbox;
pub mod spec;
mod store;
pub mod window;

pub use cache::artifact_name;
#[cfg(feature = "compiler")]
pub use engine::Precompiler;
pub use engine::{Runtime, RuntimeOptions, TARGETS, host_target, target_triple};
pub use error::{CallError, Outcome, RuntimeError};
pub use plugin::{Plugin, PluginKind, PluginSummary};

/// The WIT package this host version serves.
pub const CONTRACT: &str = "keel:plugin@0.1.0";
