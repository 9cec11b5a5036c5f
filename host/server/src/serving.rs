//! One deployed pipeline version loaded for serving: its pool of instance
//! sets, admission control (bounded concurrency and queue), the execution of
//! a request down to its durable audit record, and its monitors, fed off the
//! request path on a thread of their own.

use crate::config::Limits;
use crate::metrics::{Labels, Metrics, version_labels};
use keel_data::io::{BatchWriter, Format};
use keel_data::{Batch, DataType};
use keel_ops::Resolver;
use keel_ops::monitor_state::{
    SaveError, Saved, record_window, save_monitor_state, saved_monitor_state,
};
use keel_runtime::Runtime;
use keel_runtime::pipeline::{LiveMonitors, MonitorState, Pipeline, PluginDirs, Processed, Worker};
use keel_store::{AuditRecord, Digest, FindingEntry, Outcome, Store};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a version could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{name}@{version}: {message}")]
pub struct LoadFailure {
    pub name: String,
    pub version: String,
    pub message: String,
}

/// What executing one request came to.
#[derive(Debug)]
pub struct Executed {
    pub outcome: Outcome,
    pub output: Option<Batch>,
    pub error: Option<String>,
    pub failed_stage: Option<String>,
    /// Findings of validators (all severities).
    pub findings: Vec<FindingEntry>,
    pub rows_rejected: usize,
    /// The audit record's sequence number once durable.
    pub seq: Option<u64>,
    /// The record could not be made durable: the answer must be an error.
    pub audit_error: Option<String>,
    pub output_digest: Option<Digest>,
    /// Shadow runs: whether the answer equals the primary's.
    pub identical: Option<bool>,
}

/// Batches tapped at monitor points by one request.
type Taps = Vec<(usize, Batch)>;

/// The point of a tap that is joined prediction + label rows, not stage output.
const LABELS_TAP: usize = usize::MAX;

/// Named, typed columns.
pub type Columns = [(String, DataType)];

/// A request that ran, with its record not yet durable.
pub struct Prepared {
    record: AuditRecord,
    executed: Executed,
    taps: Option<Taps>,
    /// The input bytes, when the retention policy keeps them.
    payload: Option<Vec<u8>>,
    /// The rows answered, by id, stored with the record.
    predictions: Vec<keel_store::NewPrediction>,
}

/// Longest call that may run on an async thread (see [`Version::run`]).
pub const INLINE_LIMIT: Duration = Duration::from_millis(2);

/// Calls, all shorter than [`INLINE_LIMIT`], before a version's requests run
/// on the async threads.
pub const INLINE_AFTER: u32 = 100;

/// Monitors of a version and the thread that feeds them.
struct MonitorFeed {
    tx: Mutex<Option<crossbeam_channel::Sender<Taps>>>,
    live: Arc<Mutex<LiveMonitors>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A loaded pipeline version.
pub struct Version {
    pub name: String,
    pub version: String,
    /// The pipeline digest (what audit records name).
    pub digest: Digest,
    /// The canonical spec text as deployed.
    pub spec_text: String,
    /// Identity of monitor state (same as `keel run NAME@VERSION` uses).
    pub identity: String,
    pub pipeline: Arc<Pipeline>,
    /// Input columns and types (from the reference data), empty if unknown.
    pub inputs: Vec<(String, DataType)>,
    /// Output columns and types, empty if unknown.
    pub outputs: Vec<(String, DataType)>,
    pub limits: Limits,
    pool: Mutex<Vec<Worker<Arc<Pipeline>>>>,
    sets: AtomicUsize,
    permits: tokio::sync::Semaphore,
    /// Requests admitted (waiting or executing).
    admitted: AtomicUsize,
    /// A request once took longer than [`INLINE_LIMIT`]: run on blocking threads.
    slow: std::sync::atomic::AtomicBool,
    /// Calls shorter than [`INLINE_LIMIT`] so far (counted up to [`INLINE_AFTER`]).
    fast_calls: std::sync::atomic::AtomicU32,
    template: AuditRecord,
    /// What is stored of each answered row (its id, the monitored columns).
    pub plan: keel_ops::record::PredictionPlan,
    /// Stage names in order, for the per-stage latency metric.
    stage_names: Vec<String>,
    labels: Labels,
    stage_labels: Vec<Labels>,
    monitors: Option<MonitorFeed>,
    store: Store,
    metrics: Arc<Metrics>,
}

/// A request admitted to a version; released on drop.
pub struct Admission {
    version: Arc<Version>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.version.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Version {
    /// Loads `name@version` from the store: materialises its spec and
    /// reference files, compiles (or loads precompiled) plugins, fits the
    /// references, warms one instance set and resumes its monitors.
    pub fn load(
        rt: &Arc<Runtime>,
        store: &Store,
        metrics: &Arc<Metrics>,
        name: &str,
        version: &str,
        limits: Limits,
    ) -> Result<Arc<Version>, LoadFailure> {
        let fail = |message: String| LoadFailure {
            name: name.to_string(),
            version: version.to_string(),
            message,
        };
        let reference = format!("{name}@{version}");
        let record = store
            .get_pipeline(name, Some(version))
            .map_err(|e| fail(e.to_string()))?
            .ok_or_else(|| fail("not deployed".into()))?;
        let scratch = tempfile::tempdir().map_err(|e| fail(format!("scratch directory: {e}")))?;
        let (path, spec_text) = keel_ops::materialize(store, &reference, scratch.path())
            .map_err(|e| fail(format!("{e:#}")))?;
        let mut spec =
            keel_runtime::spec::PipelineSpec::load(&path).map_err(|e| fail(e.to_string()))?;
        // A daemon never reaches the end of its input: a monitor without a
        // window would never conclude, so it gets a tumbling window of rows.
        for m in &mut spec.monitors {
            if m.window.is_none() {
                m.window = Some(keel_runtime::window::WindowSpec {
                    rows: Some(limits.default_window_rows),
                    ..Default::default()
                });
            }
        }
        let resolver = Resolver {
            store: Some(store),
            dirs: PluginDirs::default(),
        };
        let pipeline = Arc::new(
            Pipeline::from_spec(rt.clone(), spec, &path, &resolver)
                .map_err(|e| fail(e.to_string()))?,
        );
        let inputs: Vec<(String, DataType)> = pipeline
            .input_schema()
            .map(|s| {
                s.fields
                    .iter()
                    .map(|f| (f.name.clone(), f.data_type))
                    .collect()
            })
            .unwrap_or_default();
        let outputs = pipeline.output_columns().unwrap_or_default();
        let mut worker = pipeline.shared_worker();
        pipeline
            .warm(&mut worker)
            .map_err(|e| fail(format!("warming up: {e}")))?;
        let template = keel_ops::record::template(&pipeline, &spec_text);
        if template.pipeline.digest != record.digest {
            // Both digests are over the same canonical text and plugins; a
            // difference means the store and this build disagree on either.
            tracing::warn!(pipeline = %reference, stored = %record.digest, computed = %template.pipeline.digest, "pipeline digest differs from the deployed one");
        }
        let identity = Digest::of(spec_text.as_bytes()).to_string();
        let labels = version_labels(name, version);
        let stage_names: Vec<String> = pipeline
            .plugins()
            .into_iter()
            .filter(|u| u.role == "stage")
            .map(|u| u.name)
            .collect();
        let stage_labels = stage_names
            .iter()
            .map(|s| {
                let mut l = labels.clone();
                l.push(("stage", s.clone()));
                l
            })
            .collect();
        let monitors = if pipeline.spec().monitors.is_empty() {
            None
        } else {
            Some(
                start_monitors(
                    &pipeline,
                    store,
                    metrics,
                    &identity,
                    &labels,
                    limits.monitor_queue,
                )
                .map_err(fail)?,
            )
        };
        metrics.instance_sets.get_or_create(&labels).set(1);
        Ok(Arc::new(Version {
            name: name.to_string(),
            version: version.to_string(),
            digest: record.digest,
            spec_text,
            identity,
            inputs,
            outputs,
            permits: tokio::sync::Semaphore::new(limits.concurrency),
            limits,
            pool: Mutex::new(vec![worker]),
            sets: AtomicUsize::new(1),
            admitted: AtomicUsize::new(0),
            slow: std::sync::atomic::AtomicBool::new(false),
            fast_calls: std::sync::atomic::AtomicU32::new(0),
            template,
            plan: keel_ops::record::PredictionPlan::of(pipeline.spec()),
            stage_names,
            labels,
            stage_labels,
            monitors,
            pipeline,
            store: store.clone(),
            metrics: metrics.clone(),
        }))
    }

    /// Labels of this version in metrics.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Admits a request if the version's queue has room (`None`: answer 503).
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let cap = self.limits.concurrency + self.limits.queue;
        let mut n = self.admitted.load(Ordering::Acquire);
        loop {
            if n >= cap {
                return None;
            }
            match self
                .admitted
                .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Some(Admission {
                        version: self.clone(),
                    });
                }
                Err(now) => n = now,
            }
        }
    }

    /// Waits for a free instance set, then runs the request on a blocking
    /// thread down to its durable audit record. Returns `None` if the
    /// permit could not be had (the daemon is shutting the version down).
    pub async fn run(
        self: &Arc<Self>,
        admission: &Admission,
        id: String,
        batch: Batch,
        serving: serde_json::Value,
    ) -> Option<Executed> {
        self.run_compared(admission, id, batch, serving, None).await
    }

    /// [`Version::run`] for a shadow: the answer is compared with the
    /// primary's and the comparison recorded with it.
    pub async fn run_compared(
        self: &Arc<Self>,
        _admission: &Admission,
        id: String,
        batch: Batch,
        serving: serde_json::Value,
        compare_with: Option<Batch>,
    ) -> Option<Executed> {
        let queued = self.metrics.queued.get_or_create(&self.labels).clone();
        queued.inc();
        let permit = self.permits.acquire().await;
        queued.dec();
        let permit = permit.ok()?;
        let busy = self.metrics.busy.get_or_create(&self.labels).clone();
        busy.inc();
        // Fast pipelines run right here: a thread hand-off would cost more
        // than the call. A version starts on blocking threads and moves here
        // after INLINE_AFTER calls all shorter than INLINE_LIMIT; one longer
        // call sends it back for good, so a slow plugin cannot keep stalling
        // the threads that accept and answer requests.
        let inline = !self.slow.load(Ordering::Acquire)
            && self.fast_calls.load(Ordering::Relaxed) >= INLINE_AFTER;
        let prepared = if !inline {
            let me = self.clone();
            tokio::task::spawn_blocking(move || {
                me.execute(&id, batch, serving, compare_with.as_ref())
            })
            .await
        } else {
            Ok(self.execute(&id, batch, serving, compare_with.as_ref()))
        };
        busy.dec();
        drop(permit);
        match prepared {
            Ok(p) => Some(self.record(p).await),
            Err(join) => Some(Executed {
                outcome: Outcome::Error,
                output: None,
                error: Some(format!("the request's thread failed: {join}")),
                failed_stage: None,
                findings: Vec::new(),
                rows_rejected: 0,
                seq: None,
                audit_error: Some("not recorded: the request's thread failed".into()),
                output_digest: None,
                identical: None,
            }),
        }
    }

    fn take_worker(&self) -> Worker<Arc<Pipeline>> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        pooled.unwrap_or_else(|| {
            let n = self.sets.fetch_add(1, Ordering::AcqRel) + 1;
            self.metrics
                .instance_sets
                .get_or_create(&self.labels)
                .set(n as i64);
            self.pipeline.shared_worker()
        })
    }

    fn put_worker(&self, w: Worker<Arc<Pipeline>>) {
        if let Ok(mut p) = self.pool.lock() {
            p.push(w);
        }
    }

    /// Runs one request through the pipeline and builds its audit record.
    pub fn execute(
        &self,
        id: &str,
        batch: Batch,
        mut serving: serde_json::Value,
        compare_with: Option<&Batch>,
    ) -> Prepared {
        let input_bytes = encode_jsonl(&batch);
        let input_digest = Digest::of(&input_bytes);
        let rows_in = batch.rows();
        let mut worker = self.take_worker();
        let started = Instant::now();
        let result = worker.process(batch, 0);
        let elapsed = started.elapsed();
        self.put_worker(worker);
        let mut record = self.template.clone();
        record.id = id.to_string();
        record.time = keel_store::now_rfc3339();
        record.input_digest = input_digest;
        record.rows_in = rows_in as u64;
        let mut identical = None;
        if let (Some(primary), Ok(p), Some(obj)) = (compare_with, &result, serving.as_object_mut())
        {
            let c = compare(primary, &p.output);
            identical = c.get("identical").and_then(|v| v.as_bool());
            obj.insert("compare".into(), c);
        }
        if !serving.is_null() {
            record.serving = Some(serving);
        }
        let mut executed = Executed {
            outcome: Outcome::Ok,
            output: None,
            error: None,
            failed_stage: None,
            findings: Vec::new(),
            rows_rejected: 0,
            seq: None,
            audit_error: None,
            output_digest: None,
            identical,
        };
        let mut predictions = Vec::new();
        let taps = match result {
            Ok(p) => {
                predictions = self.plan.rows(id, 0, &p.output);
                self.processed(&mut record, &mut executed, p)
            }
            Err(e) => {
                let ending = keel_ops::Ending {
                    outcome: e.error.outcome,
                    error: Some(e.error.to_string()),
                    failed_stage: Some(e.error.stage.clone()),
                };
                keel_ops::record::set_ending(&mut record, &ending);
                executed.outcome = record.outcome;
                executed.error = ending.error;
                executed.failed_stage = ending.failed_stage;
                None
            }
        };
        self.note_call_time(elapsed);
        let keep_payload = match self.store.keeps_payloads(&self.name, id) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the retention policy");
                false
            }
        };
        Prepared {
            record,
            executed,
            taps,
            payload: keep_payload.then_some(input_bytes),
            predictions,
        }
    }

    /// A request the pipeline answered: its record and answer get the output,
    /// findings and measures, the stage latency metric its stage times.
    /// Returns what it tapped for the monitors, if anything.
    fn processed(
        &self,
        record: &mut AuditRecord,
        executed: &mut Executed,
        p: Processed,
    ) -> Option<Taps> {
        let out_bytes = encode_jsonl(&p.output);
        let out_digest = Digest::of(&out_bytes);
        keel_ops::record::set_processed(record, &p, out_digest.clone());
        for (labels, t) in self.stage_labels.iter().zip(&p.stage_time) {
            self.metrics
                .stage_latency
                .get_or_create(labels)
                .observe(t.as_secs_f64());
        }
        executed.findings = record.findings.clone();
        executed.rows_rejected = p.rows_rejected;
        executed.output_digest = Some(out_digest);
        executed.output = Some(p.output);
        (!p.taps.is_empty()).then_some(p.taps)
    }

    /// Moves the version to blocking threads after a slow call, or counts a
    /// fast one towards running inline.
    fn note_call_time(&self, elapsed: Duration) {
        if elapsed > INLINE_LIMIT {
            if !self.slow.swap(true, Ordering::AcqRel) {
                tracing::info!(pipeline = %self.name, version = %self.version, elapsed_ms = elapsed.as_millis() as u64, "a request took long: this version's requests run on blocking threads from now on");
            }
        } else if self.fast_calls.load(Ordering::Relaxed) < INLINE_AFTER {
            self.fast_calls.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Makes a prepared request durable, then feeds the monitors. Holds no
    /// thread and no instance set while the group commit flushes, so every
    /// request waiting for the disk joins the same group.
    async fn record(&self, p: Prepared) -> Executed {
        let Prepared {
            record,
            mut executed,
            taps,
            payload,
            predictions,
        } = p;
        if let Some(bytes) = payload
            && let Err(e) = self.store.put_payload(&bytes)
        {
            tracing::error!(error = %e, "cannot store the request's input payload");
        }
        self.metrics.audit_pending.inc();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.store
            .append_predicted_with(record, predictions, move |r| {
                let _ = tx.send(r);
            });
        let appended = rx.await;
        self.metrics.audit_pending.dec();
        match appended {
            Ok(Ok(receipt)) => {
                self.metrics.audit_records.inc();
                executed.seq = Some(receipt.seq);
            }
            Ok(Err(e)) => executed.audit_error = Some(e.to_string()),
            Err(_) => executed.audit_error = Some("the audit committer stopped".into()),
        }
        // Monitors see what was answered, and only that.
        if let (Some(taps), Some(feed), None) = (taps, &self.monitors, &executed.audit_error) {
            let sent = feed
                .tx
                .lock()
                .ok()
                .and_then(|tx| tx.as_ref().map(|tx| tx.try_send(taps).is_ok()));
            if sent != Some(true) {
                self.metrics
                    .monitor_dropped
                    .get_or_create(&self.labels)
                    .inc();
            }
        }
        executed
    }

    /// Feeds stored predictions joined to newly accepted labels to the
    /// monitors with `feed = "labels"`, through the monitors' thread (so
    /// they see it in order with everything else). Blocks while the queue is
    /// full: labels are few calls of many rows, and must not be dropped.
    pub fn feed_labels(&self, joined: Batch) {
        let Some(feed) = &self.monitors else { return };
        let tx = feed.tx.lock().ok().and_then(|tx| tx.clone());
        let sent = tx.is_some_and(|tx| tx.send(vec![(LABELS_TAP, joined)]).is_ok());
        if !sent {
            self.metrics
                .monitor_dropped
                .get_or_create(&self.labels)
                .inc();
        }
    }

    /// Each monitor's current result (open window, alerts active), without
    /// closing anything.
    pub fn monitor_status(&self) -> Vec<serde_json::Value> {
        let Some(feed) = &self.monitors else {
            return Vec::new();
        };
        let Ok(mut live) = feed.live.lock() else {
            return Vec::new();
        };
        self.pipeline
            .conclude(&mut live, false)
            .into_iter()
            .map(|m| {
                serde_json::json!({
                    "monitor": m.name,
                    "at": m.at,
                    "window": m.window,
                    "report": m.report.as_ref().map(keel_ops::report_json),
                    "error": m.error,
                    "active_alerts": m.state.as_ref().map(|s| s.alerts.active.keys().cloned().collect::<Vec<_>>()),
                })
            })
            .collect()
    }

    /// Stops feeding monitors, waits for the queue to drain and saves their state.
    pub fn close(&self) {
        let Some(feed) = &self.monitors else {
            return;
        };
        if let Ok(mut tx) = feed.tx.lock() {
            tx.take();
        }
        let handle = feed.thread.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Requests admitted right now (waiting or executing).
    pub fn in_flight(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }

    /// Input and output columns, for model metadata.
    pub fn describe(&self) -> (&Columns, &Columns) {
        (&self.inputs, &self.outputs)
    }

    /// The deadline of a request.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.limits.request_timeout_ms)
    }

    /// Stage names in order.
    pub fn stages(&self) -> &[String] {
        &self.stage_names
    }
}

impl Drop for Version {
    fn drop(&mut self) {
        self.close();
    }
}

/// How a shadow's answer `b` differs from the primary's `a`: rows, columns
/// present in one only, and per common column the cells that differ and,
/// for numbers, the largest absolute difference.
pub fn compare(a: &Batch, b: &Batch) -> serde_json::Value {
    let names = |x: &Batch| {
        x.columns()
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    let (na, nb) = (names(a), names(b));
    let only_primary: Vec<&String> = na.iter().filter(|n| !nb.contains(n)).collect();
    let only_shadow: Vec<&String> = nb.iter().filter(|n| !na.contains(n)).collect();
    let mut columns = serde_json::Map::new();
    let mut identical = a.rows() == b.rows() && only_primary.is_empty() && only_shadow.is_empty();
    if a.rows() == b.rows() {
        for ca in a.columns() {
            let Some(cb) = b.column(&ca.name) else {
                continue;
            };
            let mut changed = 0u64;
            let mut max_abs: Option<f64> = None;
            for i in 0..a.rows() {
                let (va, vb) = (ca.value(i), cb.value(i));
                let same = match (&va, &vb) {
                    (keel_data::Value::F64(x), keel_data::Value::F64(y)) => {
                        x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
                    }
                    _ => va.to_string() == vb.to_string(),
                };
                if !same {
                    changed += 1;
                }
                if let (Some(x), Some(y)) = (numeric(&va), numeric(&vb)) {
                    let d = (x - y).abs();
                    if d.is_finite() {
                        max_abs = Some(max_abs.map_or(d, |m: f64| m.max(d)));
                    }
                }
            }
            if changed > 0 {
                identical = false;
            }
            columns.insert(
                ca.name.clone(),
                serde_json::json!({"changed": changed, "max_abs_diff": max_abs}),
            );
        }
    }
    serde_json::json!({
        "identical": identical,
        "rows": [a.rows(), b.rows()],
        "only_primary": only_primary,
        "only_shadow": only_shadow,
        "columns": columns,
    })
}

fn numeric(v: &keel_data::Value<'_>) -> Option<f64> {
    match v {
        keel_data::Value::F64(x) => Some(*x),
        keel_data::Value::S64(x) => Some(*x as f64),
        _ => None,
    }
}

/// A `Write` into a shared buffer (BatchWriter wants to own its sink).
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The batch as JSON Lines: the bytes whose digest the record keeps and
/// that `keel replay` reads back as the request's input.
pub fn encode_jsonl(batch: &Batch) -> Vec<u8> {
    let buf = SharedBuf::default();
    let mut w = BatchWriter::new(
        Box::new(buf.clone()),
        Format::JsonLines,
        std::path::Path::new("<request>"),
    );
    let ok = w.write(batch).and_then(|_| w.finish());
    if let Err(e) = ok {
        tracing::error!(error = %e, "encoding a batch as JSON Lines");
    }
    buf.0.lock().map(|v| v.clone()).unwrap_or_default()
}

/// Starts a version's monitors (resumed from the store) and their thread.
fn start_monitors(
    pipeline: &Arc<Pipeline>,
    store: &Store,
    metrics: &Arc<Metrics>,
    identity: &str,
    labels: &Labels,
    queue: usize,
) -> Result<MonitorFeed, String> {
    let name = pipeline.spec().name.clone();
    let mut resume: HashMap<String, MonitorState> = HashMap::new();
    for m in &pipeline.spec().monitors {
        match saved_monitor_state(store, &name, &m.name, identity) {
            Ok(Saved::Resumable(s)) => {
                resume.insert(m.name.clone(), s);
            }
            Ok(Saved::OtherVersion) => {
                tracing::info!(monitor = %m.name, "saved state is from another version; starting afresh")
            }
            Ok(Saved::Unreadable(e)) => {
                tracing::warn!(monitor = %m.name, error = %e, "saved state unreadable; starting afresh")
            }
            Ok(Saved::Nothing) => {}
            Err(e) => return Err(format!("reading monitor state: {e}")),
        }
    }
    let live = pipeline
        .live_monitors(&resume, keel_ops::alerts::sink())
        .map_err(|e| format!("starting monitors: {e}"))?;
    let live = Arc::new(Mutex::new(live));
    let (tx, rx) = crossbeam_channel::bounded::<Taps>(queue.max(1));
    let thread = {
        let live = live.clone();
        let pipeline = pipeline.clone();
        let store = store.clone();
        let metrics = metrics.clone();
        let identity = identity.to_string();
        let labels = labels.clone();
        std::thread::Builder::new()
            .name(format!("keel-monitors-{name}"))
            .spawn(move || {
                for taps in rx {
                    let Ok(mut live) = live.lock() else { return };
                    let now = keel_runtime::window::now_ms();
                    match taps.as_slice() {
                        [(LABELS_TAP, joined)] => pipeline.observe_labels(&mut live, joined, now),
                        _ => pipeline.observe(&mut live, &taps, now),
                    }
                    let closed = live.take_closed();
                    if closed.is_empty() {
                        continue;
                    }
                    record_closed(&pipeline, &store, &metrics, &labels, closed);
                    save_states(&pipeline, &store, &mut live, &identity);
                }
                if let Ok(mut live) = live.lock() {
                    save_states(&pipeline, &store, &mut live, &identity);
                }
            })
            .map_err(|e| format!("starting the monitor thread: {e}"))?
    };
    Ok(MonitorFeed {
        tx: Mutex::new(Some(tx)),
        live,
        thread: Mutex::new(Some(thread)),
    })
}

/// Closed windows go to the monitor history and the gauges; alerts to the counter.
fn record_closed(
    pipeline: &Pipeline,
    store: &Store,
    metrics: &Metrics,
    labels: &Labels,
    closed: Vec<(
        String,
        Vec<keel_runtime::window::WindowReport>,
        Vec<keel_runtime::alert::Alert>,
    )>,
) {
    let name = &pipeline.spec().name;
    let performance = performance_monitors(pipeline);
    for (monitor, windows, alerts) in closed {
        let mut ml = labels.clone();
        ml.push(("monitor", monitor.clone()));
        let is_performance = performance.contains(&monitor);
        for w in &windows {
            if let Err(e) = record_window(store, name, &monitor, w) {
                tracing::error!(monitor = %monitor, error = %e, "cannot record a closed window");
            }
            metrics.monitor_windows.get_or_create(&ml).inc();
            metrics
                .monitor_alert
                .get_or_create(&ml)
                .set(i64::from(w.report.alert));
            for x in &w.report.metrics {
                let mut l = ml.clone();
                l.push(("column", x.column.clone().unwrap_or_default()));
                l.push(("metric", x.name.clone()));
                metrics.monitor_value.get_or_create(&l).set(x.value);
            }
            if is_performance {
                metrics.performance.record(
                    &ml,
                    w.report.metrics.iter().map(|x| {
                        let judged = x.threshold.is_some().then_some(x.alert);
                        (x.column.as_deref(), x.name.as_str(), x.value, judged)
                    }),
                );
            }
        }
        for a in &alerts {
            metrics
                .alerts
                .get_or_create(&ml)
                .inc_by(a.raised.len().max(1) as u64);
            if let (Ok(v), Ok(mut recent)) = (serde_json::to_value(a), metrics.recent_alerts.lock())
            {
                recent.push_back(v);
                while recent.len() > crate::metrics::RECENT_ALERTS {
                    recent.pop_front();
                }
            }
        }
    }
}

/// The monitors of `pipeline` that run the `performance-monitor` plugin
/// (by the name its metadata declares, whatever file it came from): their
/// reports also feed the `keel_performance_*` gauges.
fn performance_monitors(pipeline: &Pipeline) -> Vec<String> {
    pipeline
        .plugins()
        .into_iter()
        .filter(|p| p.role == "monitor" && p.plugin == "performance-monitor")
        .map(|p| p.name)
        .collect()
}

fn save_states(pipeline: &Pipeline, store: &Store, live: &mut LiveMonitors, identity: &str) {
    let name = &pipeline.spec().name;
    for m in pipeline.conclude(live, false) {
        let Some(state) = m.state else { continue };
        match save_monitor_state(store, name, &m.name, state, identity) {
            Ok(()) => {}
            Err(SaveError::Encode(e)) => {
                tracing::error!(monitor = %m.name, error = %e, "cannot encode monitor state")
            }
            Err(SaveError::Store(e)) => {
                tracing::error!(monitor = %m.name, error = %e, "cannot save monitor state")
            }
        }
    }
}
