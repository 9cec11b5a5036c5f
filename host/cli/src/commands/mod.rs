//! One module per command (or command group): each command is a clap type
//! whose `run` does the work, given the options every command shares.
//! Helpers more than one command uses (rendering, bundles, exit codes) live
//! beside this folder, not in it.

pub mod audit;
pub mod build;
#[cfg(feature = "compiler")]
pub mod compile;
pub mod drift;
pub mod explain;
pub mod feedback;
pub mod model;
pub mod monitor;
pub mod new;
pub mod performance;
pub mod pipeline;
pub mod plugin;
pub mod profile;
pub mod replay;
pub mod run;
#[cfg(feature = "server")]
pub mod serve;
pub mod sync;

use crate::exit::{self, Failure, fail};
use anyhow::Context;
use keel_runtime::{Runtime, RuntimeOptions};
use keel_store::Store;
use std::path::PathBuf;
use std::sync::Arc;

/// The global options: where the compile cache and the store are.
pub struct Globals {
    /// Directory of precompiled components (`--cache-dir`).
    pub cache_dir: Option<PathBuf>,
    /// The store (`--store`, `KEEL_STORE`).
    pub store: Option<PathBuf>,
}

impl Globals {
    /// Opens the store; a store that cannot be opened is a usage error.
    pub fn store(&self) -> Result<Store, Failure> {
        keel_ops::open(self.store.as_deref()).map_err(|e| fail(exit::USAGE, e))
    }

    /// The runtime, compiling into (and loading from) the cache directory.
    pub fn runtime(&self) -> Result<Arc<Runtime>, Failure> {
        Ok(Arc::new(
            Runtime::new(self.runtime_options()).context("starting the runtime")?,
        ))
    }

    pub fn runtime_options(&self) -> RuntimeOptions {
        let mut options = RuntimeOptions::default();
        if self.cache_dir.is_some() {
            options.cache_dir = self.cache_dir.clone();
        }
        options
    }
}
