//! Per-instance host state and the sandbox around each plugin: WASI with no
//! ambient authority, a memory cap, virtual clocks and seeded randomness
//! (so a replay sees the same "time" and "random" numbers), and guest output
//! routed to `tracing`.

use crate::bindings::host;
use rand::SeedableRng;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Bytes of guest log output kept per instance before lines are dropped;
/// a chatty or hostile plugin must not fill the host's logs or memory.
const LOG_BUDGET: usize = 1 << 20;

/// Per-stage limits, from the pipeline spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear-memory cap per instance, in MiB.
    #[serde(default = "Limits::default_memory_mb")]
    pub memory_mb: u64,
    /// CPU deadline per call, in milliseconds.
    #[serde(default = "Limits::default_timeout_ms")]
    pub timeout_ms: u64,
    /// Maximum rows one call may return.
    #[serde(default = "Limits::default_max_output_rows")]
    pub max_output_rows: u64,
}

impl Limits {
    fn default_memory_mb() -> u64 {
        256
    }
    fn default_timeout_ms() -> u64 {
        10_000
    }
    fn default_max_output_rows() -> u64 {
        10_000_000
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_mb: Limits::default_memory_mb(),
            timeout_ms: Limits::default_timeout_ms(),
            max_output_rows: Limits::default_max_output_rows(),
        }
    }
}

/// A directory a stage may read (or, if asked, write).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Directory on the host (relative paths are relative to the spec file).
    pub host: PathBuf,
    /// Where the guest sees it, e.g. `/data`.
    pub guest: String,
    /// Read-only unless `true`.
    #[serde(default)]
    pub writable: bool,
}

/// Raised by the limiter when a plugin asks for more memory than its cap;
/// recognised later to report the limit by name.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("memory limit: the plugin asked for {desired} bytes, cap is {cap} bytes")]
pub struct MemoryLimitExceeded {
    pub desired: usize,
    pub cap: usize,
}

/// Enforces the memory cap and records peak use.
#[derive(Debug)]
pub struct Limiter {
    cap: usize,
    peak: usize,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            // An error (not `Ok(false)`) traps at once: a Rust guest would
            // otherwise abort with an opaque "unreachable".
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired,
                cap: self.cap,
            }));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// A virtual clock: starts at a fixed instant and advances a microsecond per
/// reading, so guest code sees time move (loops waiting on it end, and the
/// CPU deadline catches them) but every replay sees the same values.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock {
    nanos: Arc<AtomicU64>,
}

/// 2020-01-01T00:00:00Z: a fixed "now" for the virtual wall clock.
const VIRTUAL_EPOCH_SECS: u64 = 1_577_836_800;

impl VirtualClock {
    fn tick(&self) -> u64 {
        self.nanos.fetch_add(1_000, Ordering::Relaxed)
    }
    fn reset(&self) {
        self.nanos.store(0, Ordering::Relaxed);
    }
}

impl wasmtime_wasi::HostWallClock for VirtualClock {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }
    fn now(&self) -> Duration {
        Duration::from_secs(VIRTUAL_EPOCH_SECS) + Duration::from_nanos(self.tick())
    }
}

impl wasmtime_wasi::HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.tick()
    }
}

/// A seeded generator the host reseeds before each call.
#[derive(Clone)]
pub struct SeededRng {
    inner: Arc<Mutex<rand::rngs::StdRng>>,
}

impl SeededRng {
    fn new(seed: u64) -> SeededRng {
        SeededRng {
            inner: Arc::new(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed))),
        }
    }
    fn reseed(&self, seed: u64) {
        if let Ok(mut g) = self.inner.lock() {
            *g = rand::rngs::StdRng::seed_from_u64(seed);
        }
    }
}

impl rand::TryRng for SeededRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self
            .inner
            .lock()
            .map(|mut g| rand::Rng::next_u32(&mut *g))
            .unwrap_or(0))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self
            .inner
            .lock()
            .map(|mut g| rand::Rng::next_u64(&mut *g))
            .unwrap_or(0))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        if let Ok(mut g) = self.inner.lock() {
            rand::Rng::fill_bytes(&mut *g, dst);
        }
        Ok(())
    }
}

/// Guest stdout/stderr: complete lines become `tracing` events tagged with
/// the plugin, within a byte budget.
#[derive(Clone)]
pub struct GuestOutput {
    label: Arc<str>,
    stream: &'static str,
    state: Arc<Mutex<(Vec<u8>, usize)>>,
    last: Arc<Mutex<std::collections::VecDeque<String>>>,
}

impl GuestOutput {
    fn new(label: Arc<str>, stream: &'static str) -> GuestOutput {
        GuestOutput {
            label,
            stream,
            state: Arc::new(Mutex::new((Vec::new(), 0))),
            last: Arc::new(Mutex::new(std::collections::VecDeque::new())),
        }
    }

    fn accept(&self, bytes: &[u8]) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let (buf, used) = &mut *st;
        if *used >= LOG_BUDGET {
            return;
        }
        *used += bytes.len();
        buf.extend_from_slice(bytes);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if buf.len() > 4096 {
            let line: Vec<u8> = std::mem::take(buf);
            self.emit(&line);
        }
        if *used >= LOG_BUDGET {
            tracing::warn!(plugin = %self.label, "guest output budget of {LOG_BUDGET} bytes spent; further output dropped");
        }
    }

    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        tracing::info!(plugin = %self.label, stream = self.stream, "{text}");
        if !text.trim().is_empty()
            && let Ok(mut last) = self.last.lock()
        {
            if last.len() == 8 {
                last.pop_front();
            }
            last.push_back(text.chars().take(500).collect());
        }
    }

    /// What the guest last said that explains a failure: Rust's panic report
    /// (`panicked at …` and the message line after it) when there is one,
    /// else its last non-empty line, including a partial line still buffered.
    fn last_line(&self) -> Option<String> {
        let mut lines: Vec<String> = self
            .last
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default();
        if let Ok(st) = self.state.lock() {
            let partial = String::from_utf8_lossy(&st.0).trim().to_string();
            if !partial.is_empty() {
                lines.push(partial.chars().take(500).collect());
            }
        }
        if let Some(i) = lines.iter().rposition(|l| l.contains("panicked at")) {
            let detail = lines.get(i + 1).filter(|l| !l.starts_with("note: "));
            return Some(match detail {
                Some(d) => format!("{} {d}", lines[i]),
                None => lines[i].clone(),
            });
        }
        lines
            .into_iter()
            .rev()
            .find(|l| !l.starts_with("note: run with"))
    }
}

impl wasmtime_wasi::cli::IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.accept(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[async_trait::async_trait]
impl wasmtime_wasi::p2::Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl wasmtime_wasi::p2::OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> wasmtime_wasi::p2::StreamResult<()> {
        self.accept(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> wasmtime_wasi::p2::StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> wasmtime_wasi::p2::StreamResult<usize> {
        Ok(64 * 1024)
    }
}

/// What lives in each plugin instance's `Store`.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    label: Arc<str>,
    clock: VirtualClock,
    rng: SeededRng,
    log_used: usize,
    stderr: GuestOutput,
    /// wasi:nn: no backend (so no `load` of raw bytes), only the graphs the
    /// stage names, preloaded and shared.
    #[cfg(feature = "nn")]
    nn: wasmtime_wasi_nn::wit::WasiNnCtx,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl host::Host for HostState {
    fn log(&mut self, level: host::Level, message: String) {
        if self.log_used >= LOG_BUDGET {
            return;
        }
        self.log_used += message.len();
        let plugin = &*self.label;
        match level {
            host::Level::Trace => tracing::trace!(plugin, "{message}"),
            host::Level::Debug => tracing::debug!(plugin, "{message}"),
            host::Level::Info => tracing::info!(plugin, "{message}"),
            host::Level::Warn => tracing::warn!(plugin, "{message}"),
            host::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl crate::bindings::types::Host for HostState {}

impl HostState {
    #[cfg(feature = "nn")]
    pub(crate) fn nn_view(&mut self) -> wasmtime_wasi_nn::wit::WasiNnView<'_> {
        wasmtime_wasi_nn::wit::WasiNnView::new(&mut self.table, &mut self.nn)
    }

    /// Makes `models` loadable by name (`wasi:nn` `load-by-name`) in this instance.
    #[cfg(feature = "nn")]
    pub fn grant_models(&mut self, models: &[crate::nn::StageModel]) {
        self.nn = nn_ctx(models);
    }

    /// Without the `nn` feature no model loads, so there is none to grant.
    #[cfg(not(feature = "nn"))]
    pub fn grant_models(&mut self, _models: &[crate::nn::StageModel]) {}
}

#[cfg(feature = "nn")]
fn nn_ctx(models: &[crate::nn::StageModel]) -> wasmtime_wasi_nn::wit::WasiNnCtx {
    wasmtime_wasi_nn::wit::WasiNnCtx::new(
        Vec::new(),
        wasmtime_wasi_nn::Registry::from(crate::nn::StageGraphs::new(models)),
    )
}

impl HostState {
    /// Builds the state for one instance of `label` (`plugin@stage`) with
    /// `limits` and the directories in `grants` (already resolved to absolute paths).
    pub fn new(label: &str, limits: &Limits, grants: &[Grant]) -> Result<HostState, String> {
        HostState::build(label, limits, grants, None)
    }

    /// The state of one instance; `command` makes it a `wasi:cli` command
    /// guest's: its arguments, and a captured stdout.
    pub(crate) fn build(
        label: &str,
        limits: &Limits,
        grants: &[Grant],
        command: Option<(&[String], wasmtime_wasi::p2::pipe::MemoryOutputPipe)>,
    ) -> Result<HostState, String> {
        let label: Arc<str> = Arc::from(label);
        let clock = VirtualClock::default();
        let rng = SeededRng::new(0);
        let stderr = GuestOutput::new(label.clone(), "stderr");
        let mut b = WasiCtxBuilder::new();
        match command {
            Some((args, stdout)) => {
                b.args(args).stdout(stdout);
            }
            None => {
                b.stdout(GuestOutput::new(label.clone(), "stdout"));
            }
        }
        b.stderr(stderr.clone())
            .wall_clock(clock.clone())
            .monotonic_clock(clock.clone())
            .secure_random(rng.clone())
            .insecure_random(rng.clone())
            .insecure_random_seed(0x6b65_656c)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for g in grants {
            let perms = if g.writable {
                wasmtime_wasi::FsPerms::ReadWrite
            } else {
                wasmtime_wasi::FsPerms::ReadOnly
            };
            b.preopened_dir(&g.host, &g.guest, perms)
                .map_err(|e| format!("cannot grant {}: {e}", g.host.display()))?;
        }
        let cap = usize::try_from(limits.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        Ok(HostState {
            wasi: b.build(),
            table: ResourceTable::new(),
            limiter: Limiter { cap, peak: 0 },
            label,
            clock,
            rng,
            log_used: 0,
            stderr,
            #[cfg(feature = "nn")]
            nn: nn_ctx(&[]),
        })
    }

    /// Makes the next call deterministic: the clock restarts and randomness
    /// is reseeded from `seed` (derived from pipeline, stage and row offset).
    pub fn prepare_call(&mut self, seed: u64) {
        self.clock.reset();
        self.rng.reseed(seed);
    }

    /// The guest's last line on stderr (e.g. its panic message).
    pub fn last_stderr(&self) -> Option<String> {
        self.stderr.last_line()
    }

    /// Peak linear memory seen, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.limiter.peak
    }
}
