//! The audit log: one hash-chained record per pipeline invocation, made durable by a
//! group-commit thread before `append` returns (`commit`), with queries and chain verification.
//!
//! Layout: tree `audit` maps the big-endian seq to `hash || body`, where
//! `body` is the record's JSON without its `hash` field (but with `seq` and
//! `prev_hash`) and `hash = hex(sha256(prev_hash || body))`. The exact stored
//! bytes are hashed, so verification never depends on re-serializing. Tree
//! `audit_ids` maps ids to seqs, and `meta/audit_head` holds the next seq and
//! the last hash; all three are written in one sled transaction per group, so
//! a crash leaves either the whole group or none of it, and deleting the last
//! record is detected too.

mod commit;

pub(crate) use commit::{AfterGroup, Committer, write_rows};

use std::{fmt, time::SystemTime};

use serde::{Deserialize, Serialize};

use crate::{
    Store,
    chain::{Link, Skip, VerifyReport, decode_value, read_head, walk_chain},
    digest::Digest,
    error::{ChainBreak, Result, StoreError, decode},
    id::new_record_id,
    layout::{self, AUDIT_BASE_KEY, decode_seq_key, seq_key},
    time::{now_rfc3339, parse_rfc3339},
};

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
    /// An explanation of another record's prediction (`keel explain
    /// --record`): the record explained (`explains`), its row, the output
    /// column, method, link, seed, nsamples, the background's rows and
    /// digest, and the digest of the values. Absent from other records, so
    /// their bodies (and chain hashes) are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<serde_json::Value>,
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
            explanation: None,
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
    /// All records in seq order; `.rev()` for newest first.
    pub fn audit_iter(&self) -> AuditIter {
        AuditIter {
            inner: self.trees().audit.iter(),
        }
    }

    /// Records with seq below `before` (all when `None`) in seq order;
    /// `.rev()` for newest first: a page of the log starts at `before`
    /// without reading the records after it.
    pub fn audit_before(&self, before: Option<u64>) -> AuditIter {
        let inner = match before {
            Some(b) => self.trees().audit.range(..seq_key(b)),
            None => self.trees().audit.iter(),
        };
        AuditIter { inner }
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
