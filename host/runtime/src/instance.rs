//! Live plugin instances. Each owns its own `Store` (so limits, clocks and a
//! trap stay with that one instance) and turns every way a call can end into
//! either a value or a [`CallError`] naming plugin, stage and limit.
//!
//! A returned error leaves the instance usable; a trap, timeout or limit
//! breach poisons it, and the owner must drop it and build a fresh one.

use crate::bindings::{monitor as mb, transform as tb, types as wit, validator as vb};
use crate::convert::{batch_from_wit, batch_to_wit};
use crate::engine::Runtime;
use crate::error::{CallError, Outcome};
use crate::plugin::{Plugin, PluginKind, Pre};
use crate::sandbox::{Grant, HostState, Limits, MemoryLimitExceeded};
use crate::store::StoreBuilder;
use keel_data::Batch;
use std::hash::{Hash, Hasher};
use wasmtime::component::ResourceAny;
use wasmtime::{Store, Trap};

/// A validator finding, as the WIT record defines it.
pub type Finding = wit::Finding;
/// A monitor report.
pub type Report = wit::Report;
pub use wit::{Metric, Severity};

/// Where an instance runs: plugin, stage name, limits, grants.
#[derive(Clone)]
pub struct Placement {
    pub plugin: Plugin,
    pub stage: String,
    pub limits: Limits,
    pub grants: Vec<Grant>,
    /// The stage's configuration as JSON text.
    pub config: String,
    /// Models the plugin may load through `wasi:nn` (`load-by-name`).
    pub models: Vec<crate::nn::StageModel>,
}

/// Derives a per-call seed so randomness depends only on what is being
/// processed (stage and row offset), never on scheduling.
pub fn call_seed(stage: &str, first_row: u64) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    stage.hash(&mut h);
    first_row.hash(&mut h);
    h.finish()
}

enum Bound {
    Transform(tb::TransformPlugin),
    Validator(vb::ValidatorPlugin),
    Monitor(mb::MonitorPlugin),
}

/// One live instance with its resource (transformer, checker or watcher).
pub struct Instance {
    store: Store<HostState>,
    bound: Bound,
    handle: ResourceAny,
    placement: Placement,
    poisoned: bool,
    calls: u64,
}

impl Instance {
    /// Instantiates `placement.plugin` in a fresh sandbox and creates its
    /// resource from the config and (for fitted plugins) `reference`.
    pub fn create(
        rt: &Runtime,
        placement: &Placement,
        reference: Option<&Batch>,
    ) -> Result<Instance, CallError> {
        let plugin = &placement.plugin;
        let fail = |outcome, message: String| CallError {
            plugin: plugin.name().to_string(),
            stage: placement.stage.clone(),
            call: "create",
            outcome,
            limit: None,
            column: None,
            message,
        };
        let label = format!("{}@{}", plugin.name(), placement.stage);
        let mut store = StoreBuilder::new(&label, &placement.limits)
            .grants(&placement.grants)
            .models(&placement.models)
            .build(rt)
            .map_err(|m| fail(Outcome::Error, m))?;
        store
            .data_mut()
            .prepare_call(call_seed(&placement.stage, 0));
        let bound = match plugin.pre() {
            Pre::Transform(p) => p.instantiate(&mut store).map(Bound::Transform),
            Pre::Validator(p) => p.instantiate(&mut store).map(Bound::Validator),
            Pre::Monitor(p) => p.instantiate(&mut store).map(Bound::Monitor),
        }
        .map_err(|e| classify(e, &store, placement, "instantiate"))?;
        let config = placement.config.as_str();
        let reference_wit = reference.cloned().map(batch_to_wit);
        let created = match &bound {
            Bound::Transform(b) => b.keel_plugin_transform().transformer().call_create(
                &mut store,
                config,
                reference_wit.as_ref(),
            ),
            Bound::Validator(b) => b.keel_plugin_validator().checker().call_create(
                &mut store,
                config,
                reference_wit.as_ref(),
            ),
            Bound::Monitor(b) => {
                let Some(r) = reference_wit.as_ref() else {
                    return Err(fail(
                        Outcome::Error,
                        "a monitor needs reference data: set `reference` on the pipeline or the monitor"
                            .into(),
                    ));
                };
                b.keel_plugin_monitor()
                    .watcher()
                    .call_create(&mut store, config, r)
            }
        };
        let handle = settle(created, &store, placement, "create")?;
        Ok(Instance {
            store,
            bound,
            handle,
            placement: placement.clone(),
            poisoned: false,
            calls: 0,
        })
    }

    /// Whether a trap or limit breach has made this instance unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Peak linear memory of this instance so far, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.store.data().peak_memory()
    }

    /// Calls made on this instance.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    fn begin(store: &mut Store<HostState>, placement: &Placement, calls: &mut u64, seed: u64) {
        *calls += 1;
        store.set_epoch_deadline(Runtime::ticks_for(placement.limits.timeout_ms));
        store.data_mut().prepare_call(seed);
    }

    fn finish<T>(
        &mut self,
        r: wasmtime::Result<Result<T, wit::Error>>,
        call: &'static str,
    ) -> Result<T, CallError> {
        let out = settle(r, &self.store, &self.placement, call);
        if let Err(e) = &out
            && e.outcome != Outcome::Error
        {
            self.poisoned = true;
        }
        out
    }

    fn wrong_kind(&self, call: &'static str, want: PluginKind) -> CallError {
        self.error(
            call,
            format!("is a {}, not a {want}", self.placement.plugin.kind()),
        )
    }

    fn error(&self, call: &'static str, message: String) -> CallError {
        CallError {
            plugin: self.placement.plugin.name().to_string(),
            stage: self.placement.stage.clone(),
            call,
            outcome: Outcome::Error,
            limit: None,
            column: None,
            message,
        }
    }

    /// Runs a transform on one batch. `seed` comes from [`call_seed`].
    pub fn process(&mut self, input: Batch, seed: u64) -> Result<Batch, CallError> {
        let Bound::Transform(b) = &self.bound else {
            return Err(self.wrong_kind("process", PluginKind::Transform));
        };
        Instance::begin(&mut self.store, &self.placement, &mut self.calls, seed);
        let wit_in = batch_to_wit(input);
        let r = b.keel_plugin_transform().transformer().call_process(
            &mut self.store,
            self.handle,
            &wit_in,
        );
        let out = self.finish(r, "process")?;
        self.check_output(out)
    }

    fn check_output(&mut self, out: wit::Batch) -> Result<Batch, CallError> {
        let max = self.placement.limits.max_output_rows;
        if u64::from(out.rows) > max {
            self.poisoned = true;
            let mut e = self.error(
                "process",
                format!("returned {} rows, more than allowed", out.rows),
            );
            e.limit = Some(format!("max_output_rows = {max}"));
            return Err(e);
        }
        batch_from_wit(out).map_err(|d| {
            // A batch that breaks the contract says the plugin is broken, not
            // the data: the instance is not trusted with another call.
            self.poisoned = true;
            self.error("process", format!("returned a malformed batch: {d}"))
        })
    }

    /// Runs a validator on one batch.
    pub fn validate(&mut self, input: Batch, seed: u64) -> Result<Vec<Finding>, CallError> {
        let Bound::Validator(b) = &self.bound else {
            return Err(self.wrong_kind("validate", PluginKind::Validator));
        };
        Instance::begin(&mut self.store, &self.placement, &mut self.calls, seed);
        let wit_in = batch_to_wit(input);
        let r = b.keel_plugin_validator().checker().call_validate(
            &mut self.store,
            self.handle,
            &wit_in,
        );
        self.finish(r, "validate")
    }

    /// Feeds one batch to a monitor.
    pub fn observe(&mut self, input: Batch, seed: u64) -> Result<(), CallError> {
        let Bound::Monitor(b) = &self.bound else {
            return Err(self.wrong_kind("observe", PluginKind::Monitor));
        };
        Instance::begin(&mut self.store, &self.placement, &mut self.calls, seed);
        let wit_in = batch_to_wit(input);
        let r =
            b.keel_plugin_monitor()
                .watcher()
                .call_observe(&mut self.store, self.handle, &wit_in);
        self.finish(r, "observe")
    }

    /// A monitor's report.
    pub fn report(&mut self) -> Result<Report, CallError> {
        let Bound::Monitor(b) = &self.bound else {
            return Err(self.wrong_kind("report", PluginKind::Monitor));
        };
        Instance::begin(&mut self.store, &self.placement, &mut self.calls, 0);
        let r = b
            .keel_plugin_monitor()
            .watcher()
            .call_report(&mut self.store, self.handle);
        self.finish(r, "report")
    }

    /// A monitor's state, to persist.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, CallError> {
        let Bound::Monitor(b) = &self.bound else {
            return Err(self.wrong_kind("snapshot", PluginKind::Monitor));
        };
        Instance::begin(&mut self.store, &self.placement, &mut self.calls, 0);
        let r = b
            .keel_plugin_monitor()
            .watcher()
            .call_snapshot(&mut self.store, self.handle);
        self.finish(r, "snapshot")
    }

    /// Restores a monitor's state from [`Instance::snapshot`].
    pub fn restore(&mut self, state: &[u8]) -> Result<(), CallError> {
        let Bound::Monitor(b) = &self.bound else {
            return Err(self.wrong_kind("restore", PluginKind::Monitor));
        };
        Instance::begin(&mut self.store, &self.placement, &mut self.calls, 0);
        let r = b
            .keel_plugin_monitor()
            .watcher()
            .call_restore(&mut self.store, self.handle, state);
        self.finish(r, "restore")
    }
}

/// Turns a call result into a value or a [`CallError`].
fn settle<T>(
    r: wasmtime::Result<Result<T, wit::Error>>,
    store: &Store<HostState>,
    placement: &Placement,
    call: &'static str,
) -> Result<T, CallError> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(CallError {
            plugin: placement.plugin.name().to_string(),
            stage: placement.stage.clone(),
            call,
            outcome: Outcome::Error,
            limit: None,
            column: e.column,
            message: format!("{}: {}", code_name(e.code), e.message),
        }),
        Err(e) => Err(classify(e, store, placement, call)),
    }
}

/// The WIT spelling of an error code.
pub fn code_name(c: wit::ErrorCode) -> &'static str {
    match c {
        wit::ErrorCode::InvalidConfig => "invalid-config",
        wit::ErrorCode::InvalidInput => "invalid-input",
        wit::ErrorCode::InvalidReference => "invalid-reference",
        wit::ErrorCode::InvalidState => "invalid-state",
        wit::ErrorCode::Internal => "internal",
    }
}

/// Classifies a trap: timeout, memory cap, stack overflow, or another trap.
fn classify(
    e: wasmtime::Error,
    store: &Store<HostState>,
    placement: &Placement,
    call: &'static str,
) -> CallError {
    let limits = &placement.limits;
    let (outcome, limit, message) = if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        (
            Outcome::Trap,
            Some(format!("memory_mb = {}", limits.memory_mb)),
            format!(
                "memory limit exceeded: the plugin asked for {} MiB",
                m.desired.div_ceil(1 << 20)
            ),
        )
    } else {
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => (
                Outcome::Timeout,
                Some(format!("timeout_ms = {}", limits.timeout_ms)),
                "deadline exceeded".to_string(),
            ),
            Some(Trap::StackOverflow) => (
                Outcome::Trap,
                Some(format!(
                    "wasm stack = {} KiB",
                    crate::engine::MAX_WASM_STACK >> 10
                )),
                "stack overflow (recursion too deep)".to_string(),
            ),
            Some(t) => {
                let said = store.data().last_stderr();
                let mut m = format!("{t}");
                if let Some(s) = said {
                    m.push_str(&format!(" (guest said: {s})"));
                }
                (Outcome::Trap, None, m)
            }
            None => (Outcome::Trap, None, format!("{e:#}")),
        }
    };
    CallError {
        plugin: placement.plugin.name().to_string(),
        stage: placement.stage.clone(),
        call,
        outcome,
        limit,
        column: None,
        message,
    }
}
