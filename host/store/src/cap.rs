//! The audit store under a size cap: what records, their predictions and
//! payloads take, and the retention that keeps them under it — the least
//! recently stored payloads go first, then the oldest records with their
//! predictions, whose last hash is kept as the chain's base so what remains
//! still verifies.
//!
//! Usage is counted, not measured: `meta/usage_audit` and
//! `meta/usage_payloads` are updated in the same sled transactions that write
//! records and payloads, so checking the cap after an audit group costs two
//! reads, not a scan. (sled's own `size_on_disk` counts log segments that are
//! reclaimed lazily; it says little about what retention can free.) A store
//! written before the counters existed is counted once, when it is opened.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, Transactional};

use crate::{
    Durability, Store, Trees,
    audit::audit_base,
    chain::{Head, Skip, read_head, split_value, synced_to},
    error::{Result, StoreError, decode},
    layout::{
        self, AUDIT_BASE_KEY, AUDIT_CAP_KEY, USAGE_AUDIT_KEY, USAGE_PAYLOADS_KEY,
        USAGE_PREDICTIONS_KEY, seq_key,
    },
    payload::PayloadInfo,
    predictions,
    usage::{bump, get_u64},
};

/// Below the cap by this fraction after pruning, so a store at its cap does
/// not prune again on every append.
const LOW_WATER_DIVISOR: u64 = 10;

/// Records pruned per transaction: bounds one transaction's size.
const PRUNE_BATCH: usize = 1024;

/// What the audit store takes, against its cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditUsage {
    /// Bytes of stored audit records.
    pub record_bytes: u64,
    /// Bytes of payloads present (expired ones take nothing).
    pub payload_bytes: u64,
    /// Bytes of stored predictions (see [`crate::Prediction`]).
    pub prediction_bytes: u64,
    /// The cap, if one is set.
    pub cap_bytes: Option<u64>,
    /// The oldest record still held (records before it were pruned).
    pub first_seq: u64,
    /// The next seq to be appended: records held are `first_seq..next_seq`.
    pub next_seq: u64,
    /// How far the furthest central store has this chain (`keel sync push`), if any has.
    pub synced_to: Option<u64>,
}

impl AuditUsage {
    /// Records, their predictions and payloads together: what the cap bounds.
    pub fn total_bytes(&self) -> u64 {
        self.record_bytes + self.payload_bytes + self.prediction_bytes
    }
}

/// What one enforcement of the cap removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PruneReport {
    /// Payloads whose bytes were removed (their records keep the digests).
    pub payloads: u64,
    /// Bytes of those payloads.
    pub payload_bytes: u64,
    /// Records removed from the start of the chain.
    pub records: u64,
    /// Bytes of those records.
    pub record_bytes: u64,
    /// Predictions of those records removed with them.
    #[serde(default)]
    pub predictions: u64,
    /// Bytes of those predictions.
    #[serde(default)]
    pub prediction_bytes: u64,
    /// Of those records, how many no central store had received.
    pub unsynced_records: u64,
}

impl PruneReport {
    fn add(&mut self, o: &PruneReport) {
        self.payloads += o.payloads;
        self.payload_bytes += o.payload_bytes;
        self.records += o.records;
        self.record_bytes += o.record_bytes;
        self.predictions += o.predictions;
        self.prediction_bytes += o.prediction_bytes;
        self.unsynced_records += o.unsynced_records;
    }

    /// Whether anything was removed.
    pub fn is_empty(&self) -> bool {
        self.payloads == 0 && self.records == 0
    }
}

/// Counts what an older store holds, once, if its counters are missing.
/// Runs at open, before anything can write.
pub(crate) fn ensure_usage(trees: &Trees) -> Result<()> {
    if trees.meta.get(USAGE_AUDIT_KEY)?.is_none() {
        let mut bytes = 0u64;
        for entry in trees.audit.iter() {
            bytes += entry?.1.len() as u64;
        }
        trees.meta.insert(USAGE_AUDIT_KEY, &bytes.to_be_bytes())?;
    }
    if trees.meta.get(USAGE_PAYLOADS_KEY)?.is_none() {
        let mut bytes = 0u64;
        for entry in trees.payload_info.iter() {
            let info: PayloadInfo = decode(layout::PAYLOAD_INFO, &entry?.1)?;
            if info.expired_at_ns.is_none() {
                bytes += info.size;
            }
        }
        trees
            .meta
            .insert(USAGE_PAYLOADS_KEY, &bytes.to_be_bytes())?;
    }
    if trees.meta.get(USAGE_PREDICTIONS_KEY)?.is_none() {
        let mut bytes = 0u64;
        for entry in trees.predictions.iter() {
            bytes += entry?.1.len() as u64;
        }
        trees
            .meta
            .insert(USAGE_PREDICTIONS_KEY, &bytes.to_be_bytes())?;
    }
    // Predictions of records pruned by a run that stopped half way.
    if let Some(base) = audit_base(&trees.meta)? {
        predictions::prune(trees, base.to)?;
    }
    Ok(())
}

fn usage(trees: &Trees) -> Result<AuditUsage> {
    let meta = &trees.meta;
    let head = read_head(meta, layout::AUDIT_HEAD_KEY)?.unwrap_or_else(Head::genesis);
    Ok(AuditUsage {
        record_bytes: get_u64(meta, USAGE_AUDIT_KEY)?.unwrap_or(0),
        payload_bytes: get_u64(meta, USAGE_PAYLOADS_KEY)?.unwrap_or(0),
        prediction_bytes: get_u64(meta, USAGE_PREDICTIONS_KEY)?.unwrap_or(0),
        cap_bytes: get_u64(meta, AUDIT_CAP_KEY)?,
        first_seq: audit_base(meta)?.map_or(0, |b| b.to),
        next_seq: head.next_seq,
        synced_to: synced_to(meta)?,
    })
}

/// Brings the store under its cap, if it has one and is over it: payloads
/// least recently stored first, then records from the start of the chain
/// (never the newest, whose hash is the head). Safe while records and
/// payloads are written: every removal is its own transaction that re-reads
/// what it removes. One enforcement runs at a time; with `take`, the report
/// also holds what enforcements after audit groups removed since the last
/// report was taken (the committer may have got there first).
pub(crate) fn enforce(trees: &Trees, durability: &Durability, take: bool) -> Result<PruneReport> {
    // A poisoned lock still holds a valid report of counters.
    let mut pending = trees
        .pruned
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let report = enforce_locked(trees, durability)?;
    pending.add(&report);
    Ok(if take {
        std::mem::take(&mut *pending)
    } else {
        report
    })
}

/// What the audit committer runs after every group it made durable:
/// enforcement there only logs, nobody waits for its report.
pub(crate) fn enforce_after_group(trees: &Trees, durability: &Durability) {
    if let Err(e) = enforce(trees, durability, false) {
        tracing::error!(error = %e, "enforcing the audit store's cap failed");
    }
}

fn enforce_locked(trees: &Trees, durability: &Durability) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    let Some(cap) = get_u64(&trees.meta, AUDIT_CAP_KEY)? else {
        return Ok(report);
    };
    let mut used = usage(trees)?.total_bytes();
    if used <= cap {
        return Ok(report);
    }
    let low = cap - cap / LOW_WATER_DIVISOR;
    let mut present = Vec::new();
    for entry in trees.payload_info.iter() {
        let (key, v) = entry?;
        let info: PayloadInfo = decode(layout::PAYLOAD_INFO, &v)?;
        if info.expired_at_ns.is_none() {
            present.push((info.last_stored_ns, key));
        }
    }
    present.sort_unstable();
    for (_, key) in present {
        if used <= low {
            break;
        }
        if let Some(size) = trees.expire_payload(&key, None)? {
            report.payloads += 1;
            report.payload_bytes += size;
            used = used.saturating_sub(size);
        }
    }
    let synced = synced_to(&trees.meta)?.unwrap_or(0);
    while used > low {
        let Some((from, to, bytes)) = prune_records(trees, used - low)? else {
            break;
        };
        report.records += to - from;
        report.record_bytes += bytes;
        report.unsynced_records += to.saturating_sub(from.max(synced));
        used = used.saturating_sub(bytes);
        let (n, freed) = predictions::prune(trees, to)?;
        report.predictions += n;
        report.prediction_bytes += freed;
        used = used.saturating_sub(freed);
    }
    if !report.is_empty() {
        durability.sync()?;
        if report.records > 0 {
            tracing::warn!(
                records = report.records,
                unsynced = report.unsynced_records,
                payloads = report.payloads,
                cap,
                "audit store over its cap: oldest records pruned (their last hash is kept)"
            );
        } else {
            tracing::info!(
                payloads = report.payloads,
                bytes = report.payload_bytes,
                cap,
                "audit store over its cap: oldest payloads removed"
            );
        }
    }
    Ok(report)
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// Removes records from the start of the chain until `want` bytes are freed
/// or one transaction's worth is done, keeping the newest record. Returns the
/// seqs removed (`from..to`) and the bytes freed, or `None` if nothing can go.
fn prune_records(trees: &Trees, want: u64) -> Result<Option<(u64, u64, u64)>> {
    let abort = |e: StoreError| ConflictableTransactionError::Abort(e);
    let done =
        (&trees.audit, &trees.audit_ids, &trees.meta).transaction(|(audit, ids, meta)| {
            let base: Option<Skip> = match meta.get(AUDIT_BASE_KEY)? {
                Some(v) => Some(decode(layout::META, &v).map_err(abort)?),
                None => None,
            };
            let head: Head = match meta.get(layout::AUDIT_HEAD_KEY)? {
                Some(v) => decode(layout::META, &v).map_err(abort)?,
                None => return Ok(None),
            };
            let from = base.as_ref().map_or(0, |b| b.to);
            let (mut seq, mut freed, mut last_hash) = (from, 0u64, None);
            // The newest record stays: the head names its hash.
            while seq + 1 < head.next_seq && freed < want && (seq - from) < PRUNE_BATCH as u64 {
                let Some(v) = audit.get(seq_key(seq))? else {
                    return Err(abort(StoreError::Corrupt {
                        tree: layout::AUDIT,
                        reason: format!("record {seq} is missing; `keel audit verify` says more"),
                    }));
                };
                let (hash, body) = split_value(&v).map_err(|b| {
                    abort(StoreError::Corrupt {
                        tree: layout::AUDIT,
                        reason: format!("record {seq}: {b}"),
                    })
                })?;
                let id: IdOnly = decode(layout::AUDIT, body).map_err(abort)?;
                last_hash = Some(hash.to_owned());
                audit.remove(&seq_key(seq))?;
                ids.remove(id.id.as_bytes())?;
                freed += v.len() as u64;
                seq += 1;
            }
            let Some(prev_hash) = last_hash else {
                return Ok(None);
            };
            let skip = Skip {
                from: 0,
                to: seq,
                prev_hash,
            };
            let v = serde_json::to_vec(&skip).map_err(|e| abort(e.into()))?;
            meta.insert(AUDIT_BASE_KEY, v)?;
            let delta = i64::try_from(freed).unwrap_or(i64::MAX);
            bump(meta, USAGE_AUDIT_KEY, -delta)?;
            Ok(Some((from, seq, freed)))
        })?;
    Ok(done)
}

impl Store {
    /// What the audit records and payloads take, the cap, and where the chain starts.
    pub fn audit_usage(&self) -> Result<AuditUsage> {
        usage(self.trees())
    }

    /// Sets (or with `None` removes) the cap on what audit records and
    /// payloads may take, and enforces it at once. From then on it is
    /// enforced after every audit group.
    pub fn set_audit_cap(&self, cap_bytes: Option<u64>) -> Result<PruneReport> {
        let meta = &self.trees().meta;
        match cap_bytes {
            Some(c) => meta.insert(AUDIT_CAP_KEY, &c.to_be_bytes())?,
            None => meta.remove(AUDIT_CAP_KEY)?,
        };
        self.durability().sync()?;
        self.enforce_audit_cap()
    }

    /// Brings the store under its cap now (a no-op without one). The report
    /// also counts what was removed after audit groups since the last call.
    pub fn enforce_audit_cap(&self) -> Result<PruneReport> {
        enforce(self.trees(), self.durability(), true)
    }

    /// The audit chain's pruned prefix: records `0..to` are gone and record
    /// `to` chains onto `prev_hash`. `None` if nothing was ever pruned.
    pub fn audit_base(&self) -> Result<Option<Skip>> {
        audit_base(&self.trees().meta)
    }
}
