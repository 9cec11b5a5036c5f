//! One place builds the `Store` a plugin runs in, as Spin's `StoreBuilder`
//! does: the sandboxed host state (WASI with no authority beyond the
//! directories granted, the models the stage names), the memory limiter,
//! and the epoch deadline that turns `timeout_ms` into a trap. Plugin
//! instances, the metadata read of a freshly loaded plugin and `wasi:cli`
//! command guests all get theirs here.

use crate::engine::Runtime;
use crate::nn::StageModel;
use crate::sandbox::{Grant, HostState, Limits};
use wasmtime::Store;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// The sandbox of one instance, set up step by step; [`StoreBuilder::build`]
/// makes the store.
pub(crate) struct StoreBuilder<'a> {
    label: &'a str,
    limits: &'a Limits,
    grants: &'a [Grant],
    models: &'a [StageModel],
    command: Option<(&'a [String], MemoryOutputPipe)>,
    deadline_ms: u64,
}

impl<'a> StoreBuilder<'a> {
    /// A sandbox for `label` (`plugin@stage`, or where a plugin came from)
    /// within `limits`: nothing granted, no models, and a first deadline of
    /// `limits.timeout_ms`.
    pub(crate) fn new(label: &'a str, limits: &'a Limits) -> StoreBuilder<'a> {
        StoreBuilder {
            label,
            limits,
            grants: &[],
            models: &[],
            command: None,
            deadline_ms: limits.timeout_ms,
        }
    }

    /// Directories the guest may open (host paths already resolved).
    pub(crate) fn grants(mut self, grants: &'a [Grant]) -> StoreBuilder<'a> {
        self.grants = grants;
        self
    }

    /// Models the guest may load by name through `wasi:nn`.
    pub(crate) fn models(mut self, models: &'a [StageModel]) -> StoreBuilder<'a> {
        self.models = models;
        self
    }

    /// A `wasi:cli` command guest: `args` as its arguments and its stdout
    /// captured in `stdout` (stderr still goes to `tracing`).
    pub(crate) fn command(
        mut self,
        args: &'a [String],
        stdout: MemoryOutputPipe,
    ) -> StoreBuilder<'a> {
        self.command = Some((args, stdout));
        self
    }

    /// The CPU deadline of the first call, when it is not the limits' own.
    pub(crate) fn deadline_ms(mut self, ms: u64) -> StoreBuilder<'a> {
        self.deadline_ms = ms;
        self
    }

    /// The store, its limiter installed and its deadline armed. Fails only
    /// when a granted directory cannot be opened.
    pub(crate) fn build(self, rt: &Runtime) -> Result<Store<HostState>, String> {
        let mut state = HostState::build(self.label, self.limits, self.grants, self.command)?;
        if !self.models.is_empty() {
            state.grant_models(self.models);
        }
        let mut store = Store::new(&rt.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(Runtime::ticks_for(self.deadline_ms));
        Ok(store)
    }
}
