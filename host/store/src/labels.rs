//! Labels: the ground truth that arrives after a prediction, joined to it by
//! row id, kept append-only and tamper-evident.
//!
//! Why a chain of their own (tree `labels`, head `meta/labels_head`), not
//! records in the audit chain: the audit chain is the daemon's hot path, one
//! record per request under group commit, and its records are pruned under
//! the cap; labels arrive in bulk at other times (an import of a million
//! rows, a feedback call of a thousand) and must outlive the cap's pruning of
//! old requests, since the newest label of an old prediction is what the
//! realized performance is computed from. So each accepted batch of labels
//! is one entry of a separate hash chain (verified like the admin log, by
//! [`Store::verify_labels`]), and every label in it names the audit record
//! hash of each prediction it is about, which ties the two chains together:
//! rewriting a label, or the prediction it names, breaks a chain.
//!
//! Tree `label_index` maps `pipeline \0 id` to the newest label of that id;
//! it is what the join reads, and is written in the same transaction as the
//! entry. The truth is about the row, not about a version: with no version
//! given, a label applies to every version that predicted the id (a shadow
//! and its primary alike); with one, only that version's prediction matches.
//!
//! Sending the same truth twice is a no-op (not recorded again); a different
//! truth for the same id is recorded as a correction and replaces the index
//! entry (the newest counts). A label whose id matches no prediction is
//! recorded in the entry's `unmatched` list and counted, never indexed.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, Transactional};

use crate::{
    Store,
    chain::{Head, Link, VerifyReport, chain_hash, join_value, read_head, walk_chain},
    error::{Result, StoreError, decode},
    id::validate_name,
    layout::{self, LABELS_HEAD_KEY, label_key, seq_key},
    predictions,
    time::{now_rfc3339, parse_rfc3339},
};

/// One label as it arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLabel {
    /// The row id of the prediction it is about.
    pub id: String,
    /// The truth (a class, a boolean, a number).
    pub truth: serde_json::Value,
    /// When the truth was observed (RFC 3339), if the sender knows.
    pub observed_at: Option<String>,
}

/// What became of one label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelOutcome {
    /// A first label for its id.
    Accepted,
    /// The same truth as the id's newest label: nothing recorded.
    Duplicate,
    /// A different truth for a labelled id: recorded, and now the one that counts.
    Correction,
    /// No stored prediction has this id: recorded as unmatched, not joined.
    Unmatched,
}

/// What a call of [`Store::append_labels`] came to; durable on return.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LabelReport {
    /// First labels of their ids.
    pub accepted: u64,
    /// Same truth again: no-ops.
    pub duplicates: u64,
    /// Different truth for a labelled id.
    pub corrections: u64,
    /// Ids that match no prediction.
    pub unmatched: Vec<String>,
    /// Each label's outcome, in input order.
    #[serde(skip)]
    pub outcomes: Vec<LabelOutcome>,
    /// The label chain entry written, if anything was recorded.
    pub entry: Option<u64>,
}

/// The newest label of an id, as the join reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLabel {
    /// The truth.
    pub truth: serde_json::Value,
    /// When it was observed, if the sender said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
    /// When it was recorded (RFC 3339 UTC).
    pub time: String,
    /// The label chain entry that recorded it.
    pub entry: u64,
    /// Corrections recorded for this id so far.
    #[serde(default)]
    pub corrections: u64,
}

/// One label as its chain entry records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryLabel {
    /// Row id.
    pub id: String,
    /// The truth.
    pub truth: serde_json::Value,
    /// When it was observed, if the sender said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
    /// Audit record hash of each prediction of this id it was joined to.
    pub predictions: Vec<String>,
    /// Whether it replaced a different truth.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub correction: bool,
}

/// One entry of the label chain: a batch of labels recorded together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelEntry {
    /// Position in the label chain, from 0, contiguous.
    pub seq: u64,
    /// When it was recorded (RFC 3339 UTC).
    pub time: String,
    /// The pipeline the labels are about.
    pub pipeline: String,
    /// The version they were restricted to, if one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where they came from (a file, `daemon`).
    pub source: String,
    /// Accepted labels and corrections.
    pub labels: Vec<EntryLabel>,
    /// Ids that matched no prediction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched: Vec<String>,
    /// Hash of the previous entry ([`crate::GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// `hex(sha256(prev_hash || body))`; not part of the stored body.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl Link for LabelEntry {
    fn seq(&self) -> u64 {
        self.seq
    }
    fn prev_hash(&self) -> &str {
        &self.prev_hash
    }
    fn id(&self) -> Option<String> {
        None
    }
    fn set_hash(&mut self, hash: String) {
        self.hash = hash;
    }
}

/// A label matched to its predictions, before the transaction classifies it.
struct Matched<'a> {
    label: &'a NewLabel,
    hashes: Vec<String>,
}

impl Store {
    /// Records labels of `pipeline` (of `version` only, if given) from
    /// `source`: joins each to its predictions, classifies it (accepted,
    /// duplicate, correction, unmatched) against the newest label of its id,
    /// and appends one label chain entry for everything but duplicates.
    /// Durable on return. Fails before recording anything on a bad
    /// `observed_at` or id.
    pub fn append_labels(
        &self,
        pipeline: &str,
        version: Option<&str>,
        source: &str,
        labels: &[NewLabel],
    ) -> Result<LabelReport> {
        validate_name("pipeline name", pipeline)?;
        let time = now_rfc3339();
        let mut matched = Vec::with_capacity(labels.len());
        for l in labels {
            if let Some(t) = &l.observed_at {
                parse_rfc3339(t)?;
            }
            let hashes = predictions::record_hashes(self.trees(), pipeline, version, &l.id)?;
            matched.push(Matched { label: l, hashes });
        }
        let report = self.record_labels(pipeline, version, source, &time, &matched)?;
        if report.entry.is_some() {
            self.durability().sync()?;
        }
        Ok(report)
    }

    fn record_labels(
        &self,
        pipeline: &str,
        version: Option<&str>,
        source: &str,
        time: &str,
        matched: &[Matched<'_>],
    ) -> Result<LabelReport> {
        let abort = |e: StoreError| ConflictableTransactionError::Abort(e);
        let t = self.trees();
        let report = (&t.labels, &t.label_index, &t.meta).transaction(|(log, index, meta)| {
            let head = match meta.get(LABELS_HEAD_KEY)? {
                Some(h) => decode::<Head>(layout::META, &h).map_err(abort)?,
                None => Head::genesis(),
            };
            let mut report = LabelReport::default();
            let mut entry = LabelEntry {
                seq: head.next_seq,
                time: time.to_owned(),
                pipeline: pipeline.to_owned(),
                version: version.map(str::to_owned),
                source: source.to_owned(),
                labels: Vec::new(),
                unmatched: Vec::new(),
                prev_hash: head.hash.clone(),
                hash: String::new(),
            };
            for m in matched {
                let l = m.label;
                if m.hashes.is_empty() {
                    report.outcomes.push(LabelOutcome::Unmatched);
                    report.unmatched.push(l.id.clone());
                    entry.unmatched.push(l.id.clone());
                    continue;
                }
                let key = label_key(pipeline, &l.id);
                let old: Option<StoredLabel> = match index.get(&key)? {
                    Some(v) => Some(decode(layout::LABEL_INDEX, &v).map_err(abort)?),
                    None => None,
                };
                let outcome = match &old {
                    Some(o) if o.truth == l.truth => LabelOutcome::Duplicate,
                    Some(_) => LabelOutcome::Correction,
                    None => LabelOutcome::Accepted,
                };
                report.outcomes.push(outcome);
                match outcome {
                    LabelOutcome::Duplicate => {
                        report.duplicates += 1;
                        continue;
                    }
                    LabelOutcome::Correction => report.corrections += 1,
                    _ => report.accepted += 1,
                }
                let stored = StoredLabel {
                    truth: l.truth.clone(),
                    observed_at: l.observed_at.clone(),
                    time: time.to_owned(),
                    entry: entry.seq,
                    corrections: old.map_or(0, |o| o.corrections)
                        + u64::from(outcome == LabelOutcome::Correction),
                };
                let v = serde_json::to_vec(&stored).map_err(|e| abort(e.into()))?;
                index.insert(key, v)?;
                entry.labels.push(EntryLabel {
                    id: l.id.clone(),
                    truth: l.truth.clone(),
                    observed_at: l.observed_at.clone(),
                    predictions: m.hashes.clone(),
                    correction: outcome == LabelOutcome::Correction,
                });
            }
            if entry.labels.is_empty() && entry.unmatched.is_empty() {
                return Ok(report);
            }
            let body = serde_json::to_vec(&entry).map_err(|e| abort(e.into()))?;
            let hash = chain_hash(&entry.prev_hash, &body);
            log.insert(&seq_key(entry.seq), join_value(&hash, &body))?;
            let next = Head {
                next_seq: entry.seq + 1,
                hash,
            };
            let next = serde_json::to_vec(&next).map_err(|e| abort(e.into()))?;
            meta.insert(LABELS_HEAD_KEY, next)?;
            report.entry = Some(entry.seq);
            Ok(report)
        })?;
        Ok(report)
    }

    /// The newest label of row `id` of `pipeline`.
    pub fn label(&self, pipeline: &str, id: &str) -> Result<Option<StoredLabel>> {
        self.trees()
            .label_index
            .get(label_key(pipeline, id))?
            .map(|v| decode(layout::LABEL_INDEX, &v))
            .transpose()
    }

    /// Label chain entries from `from` on, oldest first.
    pub fn label_entries(&self, from: u64) -> Result<Vec<LabelEntry>> {
        self.trees()
            .labels
            .range(seq_key(from)..)
            .map(|e| crate::chain::decode_value(layout::LABELS, &e?.1))
            .collect()
    }

    /// Walks the label chain as [`Store::verify`] walks the audit chain and
    /// returns the first bad entry as [`StoreError::LabelChain`].
    pub fn verify_labels(&self) -> Result<VerifyReport> {
        let t = self.trees();
        let head = || read_head(&t.meta, LABELS_HEAD_KEY);
        walk_chain::<LabelEntry>(&t.labels, &head, &[], |_, _| Ok(None))?
            .map_err(StoreError::LabelChain)
    }
}
