//! The audit log: one hash-chained record per pipeline invocation, made durable by a
//! group-commit thread before `append` returns, with queries and chain verification.
//!
//! Layout: tree `audit` maps the big-endian seq to `hash || body`, where
//! `body` is the record's JSON without its `hash` field (but with `seq` and
//! `prev_hash`) and `hash = hex(sha256(prev_hash || body))`. The exact stored
//! bytes are hashed, so verification never depends on re-serializing. Tree
//! `audit_ids` maps ids to seqs, and `meta/audit_head` holds the next seq and
//! the last hash; all three are written in one sled transaction per group, so
//! a crash leaves either the whole group or none of it, and deleting the last
//! record is detected too.
//!
//! Group commit: appenders queue their records to one committer thread. It
//! takes everything queued, assigns seqs and hashes in queue order, writes
//! them in one transaction, flushes once and then answers every appender.
//! While it flushes, new records queue up and form the next group, so N
//! concurrent appenders cost about one flush per group, not one per record.
//! With the audit write-ahead log on ([`crate::StoreOptions::audit_wal_bytes`]),
//! a group is made durable by one frame of that log instead of sled's flush
//! (see [`crate::wal`]); sled is flushed only when the log wraps.

use std::{
    collections::HashSet,
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::SystemTime,
};

use serde::{Deserialize, Serialize};

use crate::{
    Durability, Store, Trees,
    chain::{
        Head, Link, Skip, VerifyReport, chain_hash, decode_value, join_value, read_head, walk_chain,
    },
    digest::Digest,
    error::{ChainBreak, Result, StoreError, decode},
    id::{new_record_id, validate_id},
    layout::{self, AUDIT_BASE_KEY, decode_seq_key, seq_key},
    time::{now_rfc3339, parse_rfc3339},
    usage::bump,
    wal::{Frame, Row, Wal},
};

/// A group is capped so that one transaction stays a reasonable size; the
/// rest of the queue simply forms the next group.
const MAX_GROUP_RECORDS: usize = 4096;

/// How an invocation, or one stage of it, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Succeeded.
    Ok,
    /// The plugin returned an error value.
    Error,
    /// The plugin trapped; the instance was discarded.
    Trap,
    /// The CPU deadline (epoch or fuel) ran out.
    Timeout,
    /// Validators rejected the data.
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

impl std::str::FromStr for Outcome {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ok" => Ok(Outcome::Ok),
            "error" => Ok(Outcome::Error),
            "trap" => Ok(Outcome::Trap),
            "timeout" => Ok(Outcome::Timeout),
            "rejected" => Ok(Outcome::Rejected),
            _ => Err(StoreError::BadName {
                what: "outcome",
                value: s.to_owned(),
                reason: "expected ok, error, trap, timeout or rejected",
            }),
        }
    }
}

/// What part a plugin plays in a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageRole {
    /// A transform or model in the main chain.
    Stage,
    /// A validator of a stage's output.
    Validator,
    /// A monitor observing the data.
    Monitor,
}

/// Severity of a validator finding (the contract's `severity` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Suspicious.
    Warning,
    /// A violation.
    Error,
}

/// The pipeline version an invocation ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineRef {
    /// Pipeline name.
    pub name: String,
    /// Pipeline version.
    pub version: String,
    /// Pipeline digest (see [`Store::put_pipeline`]).
    pub digest: Digest,
}

/// One plugin call within an invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageEntry {
    /// Stage name in the pipeline spec.
    pub name: String,
    /// Stage, validator or monitor.
    pub role: StageRole,
    /// Plugin name.
    pub plugin: String,
    /// Plugin version.
    pub plugin_version: String,
    /// Component digest that actually ran.
    pub plugin_digest: Digest,
    /// Digest of the stage's configuration.
    pub config_digest: Digest,
    /// Wall time of the call.
    pub duration_us: u64,
    /// Fuel consumed, when fuel metering is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_used: Option<u64>,
    /// Peak linear memory of the instance, when known.
    #[serde(default)]
    pub peak_memory_bytes: Option<u64>,
    /// How the call ended.
    pub outcome: Outcome,
    /// The error, trap or timeout message.
    #[serde(default)]
    pub error: Option<String>,
    /// Models the stage could load through `wasi:nn`, with their digests.
    /// Absent in records written before models existed, and omitted when
    /// empty so those records' hashes still verify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelEntry>,
}

/// A model one stage could load, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The name the plugin loaded it by.
    pub name: String,
    /// Its stored version (`None` for a model file named by path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// sha256 of the model file.
    pub digest: Digest,
}

/// One validator finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingEntry {
    /// Validator stage name.
    pub validator: String,
    /// Rule identifier.
    pub rule: String,
    /// Column concerned, if any.
    #[serde(default)]
    pub column: Option<String>,
    /// Row concerned (index in the invocation's input), if any.
    #[serde(default)]
    pub row: Option<u64>,
    /// Severity.
    pub severity: Severity,
    /// Message for humans.
    pub message: String,
}

/// One monitor's verdict on the invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorVerdict {
    /// Monitor stage name.
    pub monitor: String,
    /// Whether it raised an alert.
    pub alert: bool,
    /// One line for humans.
    pub summary: String,
    /// Its metrics, as reported.
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// The window the verdict is about (windowed monitors), as the host describes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<serde_json::Value>,
}

/// One pipeline invocation. `seq`, `prev_hash` and `hash` are assigned by the
/// store on append (whatever the caller put there is overwritten); an empty
/// `id` gets a fresh [`new_record_id`], an empty `time` the commit time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Unique id (ULID by default; any id the caller supplies, if unique).
    pub id: String,
    /// Position in the chain, from 0, contiguous.
    #[serde(default)]
    pub seq: u64,
    /// When the invocation happened (RFC 3339 UTC).
    #[serde(default)]
    pub time: String,
    /// The pipeline version that ran.
    pub pipeline: PipelineRef,
    /// Every plugin call, in execution order.
    #[serde(default)]
    pub stages: Vec<StageEntry>,
    /// Overall outcome.
    pub outcome: Outcome,
    /// Overall error message, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Digest of the input batch.
    pub input_digest: Digest,
    /// Digest of the output batch, if there was one.
    #[serde(default)]
    pub output_digest: Option<Digest>,
    /// Rows in.
    #[serde(default)]
    pub rows_in: u64,
    /// Rows out.
    #[serde(default)]
    pub rows_out: u64,
    /// Validator findings.
    #[serde(default)]
    pub findings: Vec<FindingEntry>,
    /// Monitor verdicts.
    #[serde(default)]
    pub monitor_verdicts: Vec<MonitorVerdict>,
    /// Alerts raised by monitors during the invocation, with their deliveries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<serde_json::Value>,
    /// How the daemon routed a served request (stable, canary, pinned,
    /// shadow — with the request it shadows and how the answers compare).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<serde_json::Value>,
    /// Hash of the previous record ([`GENESIS_HASH`](crate::GENESIS_HASH) for the first).
    #[serde(default)]
    pub prev_hash: String,
    /// `hex(sha256(prev_hash || body))`; not part of the stored body.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl AuditRecord {
    /// A record with a fresh id, the current time, outcome ok and no stages;
    /// fill in the rest before appending.
    pub fn new(pipeline: PipelineRef, input_digest: Digest) -> Self {
        AuditRecord {
            id: new_record_id(),
            seq: 0,
            time: now_rfc3339(),
            pipeline,
            stages: Vec::new(),
            outcome: Outcome::Ok,
            error: None,
            input_digest,
            output_digest: None,
            rows_in: 0,
            rows_out: 0,
            findings: Vec::new(),
            monitor_verdicts: Vec::new(),
            alerts: Vec::new(),
            serving: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }
}

/// What the store answers once a record is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Assigned sequence number.
    pub seq: u64,
    /// The record's id (generated if the caller left it empty).
    pub id: String,
    /// The record's chain hash.
    pub hash: String,
}

/// Counters of the group committer since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditStats {
    /// Records made durable.
    pub records: u64,
    /// Groups committed, i.e. flushes (sled flush + fdatasync) paid for them.
    pub flushes: u64,
}

/// Selects records for [`Store::audit_log`]; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this pipeline (by name).
    pub pipeline: Option<String>,
    /// Only records at or after this time.
    pub since: Option<SystemTime>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// At most this many (the newest).
    pub limit: Option<usize>,
}

impl Link for AuditRecord {
    fn seq(&self) -> u64 {
        self.seq
    }
    fn prev_hash(&self) -> &str {
        &self.prev_hash
    }
    fn id(&self) -> Option<String> {
        Some(self.id.clone())
    }
    fn set_hash(&mut self, hash: String) {
        self.hash = hash;
    }
}

/// The pruned prefix of the audit chain, if records were ever pruned.
pub(crate) fn audit_base(meta: &sled::Tree) -> Result<Option<Skip>> {
    meta.get(AUDIT_BASE_KEY)?
        .map(|v| decode(layout::META, &v))
        .transpose()
}

fn decode_record(v: &[u8]) -> Result<AuditRecord> {
    decode_value(layout::AUDIT, v)
}

struct Request {
    records: Vec<AuditRecord>,
    reply: Reply,
}

/// Where a request's outcome goes: a caller blocked on a channel, or a
/// callback run on the committer thread (for async callers, which must not
/// hold a thread while the group is flushed).
enum Reply {
    Channel(mpsc::SyncSender<Result<Vec<Receipt>>>),
    Callback(Box<dyn FnOnce(Result<Vec<Receipt>>) + Send>),
}

impl Reply {
    fn send(self, r: Result<Vec<Receipt>>) {
        match self {
            Reply::Channel(tx) => {
                let _ = tx.send(r);
            }
            Reply::Callback(f) => f(r),
        }
    }
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    flushes: AtomicU64,
}

/// What the committer runs after each group it made durable, once every
/// appender of the group has its answer. The store passes the audit cap's
/// enforcement, which sits above this module.
pub(crate) type AfterGroup = Box<dyn FnMut() + Send>;

/// Handle on the committer thread; dropping it drains the queue and joins the thread.
pub(crate) struct Committer {
    tx: Option<mpsc::Sender<Request>>,
    handle: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Committer {
    pub(crate) fn start(
        trees: Trees,
        durability: Durability,
        wal: Option<Wal>,
        after_group: AfterGroup,
    ) -> Result<Committer> {
        let head = read_head(&trees.meta, layout::AUDIT_HEAD_KEY)?.unwrap_or_else(Head::genesis);
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            trees,
            durability,
            wal,
            next_seq: head.next_seq,
            head_hash: head.hash,
            counters: counters.clone(),
            after_group,
        };
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("keel-audit-commit".into())
            .spawn(move || worker.run(rx))
            .map_err(|source| StoreError::Io {
                path: "<audit committer thread>".into(),
                source,
            })?;
        Ok(Committer {
            tx: Some(tx),
            handle: Some(handle),
            counters,
        })
    }

    fn submit(&self, records: Vec<AuditRecord>) -> Result<Vec<Receipt>> {
        let tx = self.tx.as_ref().ok_or(StoreError::CommitterGone)?;
        let (reply, answer) = mpsc::sync_channel(1);
        tx.send(Request {
            records,
            reply: Reply::Channel(reply),
        })
        .map_err(|_| StoreError::CommitterGone)?;
        answer.recv().map_err(|_| StoreError::CommitterGone)?
    }

    fn submit_with(
        &self,
        records: Vec<AuditRecord>,
        done: Box<dyn FnOnce(Result<Vec<Receipt>>) + Send>,
    ) {
        let request = Request {
            records,
            reply: Reply::Callback(done),
        };
        match self.tx.as_ref() {
            Some(tx) => {
                if let Err(mpsc::SendError(r)) = tx.send(request) {
                    r.reply.send(Err(StoreError::CommitterGone));
                }
            }
            None => request.reply.send(Err(StoreError::CommitterGone)),
        }
    }

    fn stats(&self) -> AuditStats {
        AuditStats {
            records: self.counters.records.load(Ordering::Relaxed),
            flushes: self.counters.flushes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Closing the queue ends the worker's loop once it has drained it.
        drop(self.tx.take());
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
        {
            tracing::error!("the audit committer thread panicked");
        }
    }
}

/// The committer thread's state: the only writer of the audit trees.
struct Worker {
    trees: Trees,
    durability: Durability,
    wal: Option<Wal>,
    next_seq: u64,
    head_hash: String,
    counters: Arc<Counters>,
    after_group: AfterGroup,
}

/// Records of one request, ready to write.
struct Prepared {
    rows: Vec<Row>,
    receipts: Vec<Receipt>,
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut queued = first.records.len();
            let mut group = vec![first];
            while queued < MAX_GROUP_RECORDS {
                match rx.try_recv() {
                    Ok(next) => {
                        queued += next.records.len();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            self.commit(group);
        }
    }

    fn commit(&mut self, group: Vec<Request>) {
        let (mut seq, mut prev) = (self.next_seq, self.head_hash.clone());
        let mut ids_in_group = HashSet::new();
        let mut accepted = Vec::with_capacity(group.len());
        let mut rows = Vec::new();
        for req in group {
            // A request is all-or-nothing: a bad record fails its own request only.
            match self.prepare(req.records, seq, &prev, &mut ids_in_group) {
                Ok(p) => {
                    if let Some(last) = p.receipts.last() {
                        seq = last.seq + 1;
                        prev.clone_from(&last.hash);
                    }
                    rows.extend(p.rows);
                    accepted.push((req.reply, p.receipts));
                }
                Err(e) => req.reply.send(Err(e)),
            }
        }
        if rows.is_empty() {
            return;
        }
        let n = rows.len() as u64;
        let head = Head {
            next_seq: seq,
            hash: prev,
        };
        let result = match write_rows(&self.trees, &rows, &head) {
            Ok(()) => {
                // The rows are in the trees now, durable or not: later groups chain onto them.
                self.next_seq = head.next_seq;
                self.head_hash.clone_from(&head.hash);
                self.make_durable(rows, head)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                self.counters.flushes.fetch_add(1, Ordering::Relaxed);
                self.counters.records.fetch_add(n, Ordering::Relaxed);
                for (reply, receipts) in accepted {
                    reply.send(Ok(receipts));
                }
                // After the answers: retention must not delay an acknowledgement.
                (self.after_group)();
            }
            Err(e) => {
                tracing::error!(error = %e, records = n, "audit group commit failed");
                let e = Arc::new(e);
                for (reply, _) in accepted {
                    reply.send(Err(StoreError::CommitFailed(e.clone())));
                }
            }
        }
    }

    fn prepare(
        &self,
        records: Vec<AuditRecord>,
        mut seq: u64,
        prev: &str,
        ids_in_group: &mut HashSet<String>,
    ) -> Result<Prepared> {
        let mut prev = prev.to_owned();
        let mut new_ids = HashSet::new();
        let mut out = Prepared {
            rows: Vec::with_capacity(records.len()),
            receipts: Vec::with_capacity(records.len()),
        };
        for mut rec in records {
            if rec.id.is_empty() {
                rec.id = new_record_id();
            }
            validate_id(&rec.id)?;
            if ids_in_group.contains(&rec.id)
                || new_ids.contains(&rec.id)
                || self.trees.audit_ids.contains_key(rec.id.as_bytes())?
            {
                return Err(StoreError::DuplicateId(rec.id));
            }
            if rec.time.is_empty() {
                rec.time = now_rfc3339();
            } else {
                parse_rfc3339(&rec.time)?;
            }
            rec.seq = seq;
            rec.prev_hash = prev;
            rec.hash = String::new();
            let body = serde_json::to_vec(&rec)?;
            let hash = chain_hash(&rec.prev_hash, &body);
            let value = join_value(&hash, &body);
            new_ids.insert(rec.id.clone());
            out.rows.push((seq, rec.id.clone(), value));
            out.receipts.push(Receipt {
                seq,
                id: rec.id,
                hash: hash.clone(),
            });
            prev = hash;
            seq += 1;
        }
        ids_in_group.extend(new_ids);
        Ok(out)
    }

    /// Makes a group written to the trees durable: a frame of the
    /// write-ahead log when there is one and it has room, else sled's flush.
    fn make_durable(&mut self, rows: Vec<Row>, head: Head) -> Result<()> {
        let Some(wal) = self.wal.as_mut() else {
            return self.durability.sync();
        };
        let (payloads, overflow) = self.durability.take_unlogged();
        let logged = if overflow {
            Ok(false)
        } else {
            wal.append(&Frame {
                rows,
                next_seq: head.next_seq,
                head_hash: head.hash,
                payloads,
            })
        };
        match logged {
            Ok(true) => Ok(()),
            Ok(false) => {
                // Full, or payloads too big to log: flush sled, which makes
                // everything so far durable, and start the log over.
                self.durability.sync()?;
                wal.wrap()
            }
            Err(e) => {
                // The payloads taken for this frame are not durable: the
                // next group flushes sled instead of trusting the log.
                self.durability.mark_unlogged();
                Err(e)
            }
        }
    }
}

/// Writes audit rows and the new head in one sled transaction.
pub(crate) fn write_rows(trees: &Trees, rows: &[Row], head: &Head) -> Result<()> {
    use sled::transaction::{ConflictableTransactionError, Transactional};
    let head = serde_json::to_vec(head)?;
    let bytes: usize = rows.iter().map(|(_, _, v)| v.len()).sum();
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    (&trees.audit, &trees.audit_ids, &trees.meta).transaction(|(audit, ids, meta)| {
        for (seq, id, value) in rows {
            audit.insert(&seq_key(*seq), value.as_slice())?;
            ids.insert(id.as_bytes(), &seq_key(*seq))?;
        }
        meta.insert(layout::AUDIT_HEAD_KEY, head.as_slice())?;
        bump(meta, layout::USAGE_AUDIT_KEY, bytes)?;
        Ok::<(), ConflictableTransactionError<StoreError>>(())
    })?;
    Ok(())
}

/// Iterates audit records in seq order (double-ended: `.rev()` for newest first).
pub struct AuditIter {
    inner: sled::Iter,
}

impl Iterator for AuditIter {
    type Item = Result<AuditRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|e| decode_record(&e?.1))
    }
}

impl DoubleEndedIterator for AuditIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|e| decode_record(&e?.1))
    }
}

impl Store {
    /// Appends one record and returns once it is durable (flushed to disk).
    pub fn append(&self, record: AuditRecord) -> Result<Receipt> {
        self.append_batch(vec![record])?
            .pop()
            .ok_or(StoreError::CommitterGone)
    }

    /// Appends one record without waiting: `done` runs (on the committer
    /// thread; keep it short) once the record is durable or has failed. For
    /// async callers: a thread is not held while the group is flushed, so
    /// more requests can join the group.
    pub fn append_with(
        &self,
        record: AuditRecord,
        done: impl FnOnce(Result<Receipt>) + Send + 'static,
    ) {
        self.committer().submit_with(
            vec![record],
            Box::new(move |r| done(r.and_then(|mut v| v.pop().ok_or(StoreError::CommitterGone)))),
        );
    }

    /// Appends records atomically (all or none), with consecutive seqs, and
    /// returns once they are durable.
    pub fn append_batch(&self, records: Vec<AuditRecord>) -> Result<Vec<Receipt>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.committer().submit(records)
    }

    /// Group-commit counters since this store was opened.
    pub fn audit_stats(&self) -> AuditStats {
        self.committer().stats()
    }

    /// All records in seq order; `.rev()` for newest first.
    pub fn audit_iter(&self) -> AuditIter {
        AuditIter {
            inner: self.trees().audit.iter(),
        }
    }

    /// Records matching `filter`, newest first.
    pub fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for rec in self.audit_iter().rev() {
            if out.len() >= limit {
                break;
            }
            let rec = rec?;
            if filter
                .pipeline
                .as_ref()
                .is_some_and(|p| *p != rec.pipeline.name)
                || filter.outcome.is_some_and(|o| o != rec.outcome)
            {
                continue;
            }
            if let Some(since) = filter.since
                && parse_rfc3339(&rec.time)? < since
            {
                continue;
            }
            out.push(rec);
        }
        Ok(out)
    }

    /// The record with this id.
    pub fn audit_get(&self, id: &str) -> Result<Option<AuditRecord>> {
        match self.trees().audit_ids.get(id.as_bytes())? {
            Some(seq) => {
                let seq = decode_seq_key(&seq).ok_or_else(|| StoreError::Corrupt {
                    tree: layout::AUDIT_IDS,
                    reason: format!("seq of {id:?} is not 8 bytes"),
                })?;
                self.audit_by_seq(seq)
            }
            None => Ok(None),
        }
    }

    /// The record with this seq.
    pub fn audit_by_seq(&self, seq: u64) -> Result<Option<AuditRecord>> {
        self.trees()
            .audit
            .get(seq_key(seq))?
            .map(|v| decode_record(&v))
            .transpose()
    }

    /// Number of records appended so far (the next seq).
    pub fn audit_len(&self) -> Result<u64> {
        Ok(read_head(&self.trees().meta, layout::AUDIT_HEAD_KEY)?.map_or(0, |h| h.next_seq))
    }

    /// Walks the whole chain and returns the first bad record as
    /// [`StoreError::Chain`]: a missing seq (deleted), a record under the
    /// wrong seq (moved or swapped), content not matching its hash (edited), a
    /// `prev_hash` not matching the previous hash (edited and re-hashed), an
    /// id index not pointing back, or a head that disagrees (tail deleted).
    pub fn verify(&self) -> Result<VerifyReport> {
        let t = self.trees();
        let head = || read_head(&t.meta, layout::AUDIT_HEAD_KEY);
        let skips = audit_base(&t.meta)?.into_iter().collect::<Vec<_>>();
        walk_chain::<AuditRecord>(&t.audit, &head, &skips, |rec, key| {
            let indexed = t.audit_ids.get(rec.id.as_bytes())?;
            Ok((indexed.as_deref() != Some(key)).then_some(ChainBreak::IndexMismatch))
        })?
        .map_err(StoreError::Chain)
    }
}
