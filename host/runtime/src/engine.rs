//! The wasmtime engine as Keel configures it, the host linker, and the epoch
//! ticker that turns `timeout_ms` into CPU deadlines.

use crate::cache::Cache;
use crate::error::RuntimeError;
use crate::sandbox::HostState;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; `timeout_ms` is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Wasm stack a plugin call may use (wasmtime's default, named so a stack
/// overflow can say which limit it hit).
pub const MAX_WASM_STACK: usize = 512 << 10;

/// Engine options.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where precompiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling instance allocator (falls back to on-demand if the
    /// address-space reservation fails).
    pub pooling: bool,
    /// Instance slots in the pool.
    pub pool_instances: u32,
    /// Canonicalise NaN bit patterns (on by default: outputs and their
    /// digests then match across CPUs; the benchmark measures its cost).
    pub nan_canonicalization: bool,
    /// A directory of artifacts written by `keel compile` (`<hex digest>.cwasm`),
    /// looked up before the cache. Read-only: an artifact there that does not
    /// fit this engine is an error, never silently recompiled.
    pub precompiled_dir: Option<PathBuf>,
    /// The engine's target triple when it is not this machine, e.g. `pulley64`
    /// to run artifacts compiled for wasmtime's portable interpreter.
    pub target: Option<String>,
    /// Refuse to compile: every plugin must come precompiled (always the case
    /// in a build without the `compiler` feature).
    pub require_precompiled: bool,
}

impl Default for RuntimeOptions {
    fn default() -> RuntimeOptions {
        RuntimeOptions {
            cache_dir: std::env::var_os("KEEL_CACHE_DIR")
                .map(PathBuf::from)
                .or_else(|| dirs::cache_dir().map(|d| d.join("keel").join("compiled"))),
            // KEEL_POOLING=0: on-demand allocation, for hosts where reserving
            // the pool's address space (terabytes of PROT_NONE) is slow, as
            // under qemu-user, which tracks every reserved page.
            pooling: std::env::var_os("KEEL_POOLING").is_none_or(|v| v != "0"),
            pool_instances: 256,
            nan_canonicalization: true,
            precompiled_dir: None,
            target: None,
            require_precompiled: !cfg!(feature = "compiler"),
        }
    }
}

/// The instance pool. With `pagemap`, a slot's memory is reset by scanning
/// which pages the last instance touched and zeroing just those (up to 8 MiB)
/// instead of `madvise`: the next instance then takes no page faults and the
/// host no TLB shootdowns. Measured: fresh instance + 1-row call 55 → 31 µs.
fn pool(options: &RuntimeOptions, pagemap: bool) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    let n = options.pool_instances.max(8);
    pool.total_component_instances(n)
        .total_core_instances(n * 4)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .max_memories_per_component(4)
        .max_tables_per_component(8)
        .max_memory_size(4 << 30);
    if pagemap {
        pool.pagemap_scan(wasmtime::Enabled::Yes)
            .linear_memory_keep_resident(8 << 20)
            .table_keep_resident(1 << 20);
    }
    pool
}

struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The engine, linker and compile cache shared by every plugin of a process.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) cache: Cache,
    /// ONNX models by digest: parsed and optimised once per process.
    models: std::sync::Mutex<std::collections::HashMap<String, Arc<crate::nn::Model>>>,
    pooled: bool,
    _ticker: Ticker,
}

fn base_config(options: &RuntimeOptions) -> Result<Config, RuntimeError> {
    let mut c = Config::new();
    if let Some(target) = &options.target {
        c.target(target)
            .map_err(|e| RuntimeError::Engine(format!("target `{target}`: {e}")))?;
    }
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.max_wasm_stack(MAX_WASM_STACK);
    // Identical NaN bit patterns on every CPU keep outputs (and their digests)
    // reproducible. A runtime-only build checks the flag an artifact was
    // compiled with instead of setting it.
    #[cfg(feature = "compiler")]
    c.cranelift_nan_canonicalization(options.nan_canonicalization);
    // Async component support costs 50-100x on every sync call; plugins are sync.
    c.concurrency_support(false);
    #[cfg(feature = "compiler")]
    c.parallel_compilation(true);
    Ok(c)
}

/// The target names `keel compile --target` takes, and their triples.
pub const TARGETS: &[(&str, &str)] = &[
    ("x86_64", "x86_64-unknown-linux-gnu"),
    ("aarch64", "aarch64-unknown-linux-gnu"),
    ("pulley64", "pulley64"),
];

/// The triple for a `--target` name (a name from [`TARGETS`] or a full triple).
pub fn target_triple(name: &str) -> &str {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(name, |(_, t)| t)
}

/// This build's own target name, as [`TARGETS`] spells it.
pub fn host_target() -> &'static str {
    std::env::consts::ARCH
}

impl Runtime {
    /// Builds the engine, linker and ticker.
    pub fn new(options: RuntimeOptions) -> Result<Runtime, RuntimeError> {
        let (engine, pooled) = Self::build_engine(&options)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        crate::bindings::transform::TransformPlugin::add_to_linker::<_, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        // wasi:nn for model plugins; an instance sees only its stage's graphs.
        #[cfg(feature = "nn")]
        wasmtime_wasi_nn::wit::add_to_linker(&mut linker, HostState::nn_view)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let cache = Cache::new(
            options.cache_dir.clone(),
            options.precompiled_dir.clone(),
            !options.require_precompiled,
            options
                .target
                .clone()
                .unwrap_or_else(|| host_target().to_string()),
            &engine,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            let weak = engine.weak();
            std::thread::Builder::new()
                .name("keel-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        match weak.upgrade() {
                            Some(e) => e.increment_epoch(),
                            None => break,
                        }
                    }
                })
                .map_err(|e| RuntimeError::Engine(format!("cannot start epoch ticker: {e}")))?
        };
        Ok(Runtime {
            engine,
            linker,
            cache,
            models: Default::default(),
            pooled,
            _ticker: Ticker {
                stop,
                handle: Some(handle),
            },
        })
    }

    /// The fastest engine this machine allows: pooling with PAGEMAP_SCAN
    /// (Linux >= 6.7), else plain pooling, else on-demand allocation.
    fn build_engine(options: &RuntimeOptions) -> Result<(Engine, bool), RuntimeError> {
        if !options.pooling {
            return Ok((Self::on_demand(options)?, false));
        }
        for pagemap in [true, false] {
            let mut cfg = base_config(options)?;
            cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool(options, pagemap)));
            match Engine::new(&cfg) {
                Ok(e) => return Ok((e, true)),
                Err(e) if pagemap => {
                    tracing::debug!(error = %e, "PAGEMAP_SCAN unavailable; resetting memories with madvise");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pooling allocator unavailable (address-space reservation failed?); using on-demand allocation");
                }
            }
        }
        Ok((Self::on_demand(options)?, false))
    }

    fn on_demand(options: &RuntimeOptions) -> Result<Engine, RuntimeError> {
        Engine::new(&base_config(options)?).map_err(|e| RuntimeError::Engine(e.to_string()))
    }

    /// A compiler of components for `target` (a name from [`TARGETS`] or a
    /// triple) with this host's engine settings otherwise: the artifacts a
    /// runtime-only keel on that target loads (`keel compile`). One engine
    /// serves every component of a bundle.
    #[cfg(feature = "compiler")]
    pub fn precompiler(
        options: &RuntimeOptions,
        target: &str,
    ) -> Result<Precompiler, RuntimeError> {
        let options = RuntimeOptions {
            target: Some(target_triple(target).to_string()),
            ..options.clone()
        };
        // The same allocation strategy as the runtime that will load it:
        // the memory layout it implies is part of what an artifact assumes.
        let (engine, _) = Self::build_engine(&options)?;
        Ok(Precompiler { engine })
    }

    /// Whether the pooling allocator is in use.
    pub fn is_pooled(&self) -> bool {
        self.pooled
    }

    /// The engine (for embedders that need it, e.g. benchmarks).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The model in `bytes`, parsed and optimised on first use and shared
    /// after that (by digest), so every instance of every stage that names
    /// it reuses one graph.
    pub fn load_model(
        &self,
        bytes: &[u8],
        source: &str,
    ) -> Result<Arc<crate::nn::Model>, crate::nn::ModelError> {
        use sha2::Digest as _;
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
        if let Some(m) = self
            .models
            .lock()
            .ok()
            .and_then(|m| m.get(&digest).cloned())
        {
            return Ok(m);
        }
        let model = crate::nn::Model::load(bytes, source)?;
        tracing::debug!(%digest, source, "model loaded and optimised");
        if let Ok(mut m) = self.models.lock() {
            m.insert(digest, model.clone());
        }
        Ok(model)
    }

    /// Epoch ticks for a deadline of `ms` milliseconds.
    pub(crate) fn ticks_for(ms: u64) -> u64 {
        let tick = EPOCH_TICK.as_millis().max(1) as u64;
        ms.div_ceil(tick).max(1)
    }
}

/// Compiles components for one target ([`Runtime::precompiler`]).
#[cfg(feature = "compiler")]
pub struct Precompiler {
    engine: Engine,
}

#[cfg(feature = "compiler")]
impl Precompiler {
    /// The artifact of the component in `bytes`; `label` names it in errors.
    pub fn compile(&self, bytes: &[u8], label: &str) -> Result<Vec<u8>, RuntimeError> {
        self.engine
            .precompile_component(bytes)
            .map_err(|e| RuntimeError::Compile {
                plugin: label.to_string(),
                message: format!("{e:#}"),
            })
    }
}
