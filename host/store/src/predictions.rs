//! Predictions by row id: every row a pipeline answered, findable by
//! `(pipeline, id)` (and version) with its audit record (seq and hash), its
//! time and the columns the pipeline's performance monitors need, so labels
//! that arrive later can be joined to the exact prediction they are about.
//!
//! Layout: tree `predictions` maps `pipeline \0 id \0 version` to
//! `seq u64 BE ‖ row u32 BE ‖ record hash ‖ JSON`, and `prediction_seqs` maps
//! `seq ‖ row` back to that key. The caller encodes the JSON (off the audit
//! committer's thread); the committer stamps the seq and hash it assigns and
//! writes the rows in the same transaction as their audit record, so a
//! prediction is durable exactly when its record is, at no extra flush.
//! Records pruned under the audit cap take their predictions with them
//! through `prediction_seqs` (a range scan below the chain's new base).
//!
//! A second prediction of the same id by the same version replaces the first
//! (the newest answer is the one a label is about); the older row's entry in
//! `prediction_seqs` then points at a key whose seq differs, and pruning
//! leaves such a key alone.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, Transactional, TransactionalTree};

use crate::{
    Store, Trees,
    error::{Result, StoreError},
    layout::{
        self, AUDIT_HASH_LEN, PREDICTION_PREFIX_LEN, USAGE_PREDICTIONS_KEY, prediction_id_prefix,
        prediction_key, prediction_seq_key,
    },
    usage::bump,
};

/// Prediction rows removed per transaction when pruning.
const PRUNE_BATCH: usize = 4096;

/// One row a pipeline answered, as the caller hands it to the store with
/// the row's audit record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPrediction {
    /// The row id: the pipeline's id column, or `<request-id>:<row>`.
    pub id: String,
    /// Row index within the record's batch.
    pub row: u32,
    /// The stored columns (prediction, scores, segments); empty when the
    /// pipeline has no performance monitor.
    pub values: serde_json::Map<String, serde_json::Value>,
}

/// A stored prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The row id.
    pub id: String,
    /// The pipeline version that made it.
    pub version: String,
    /// Its audit record's seq.
    pub seq: u64,
    /// Row index within that record's batch.
    pub row: u32,
    /// Its audit record's hash.
    pub record_hash: String,
    /// Its audit record's id.
    pub record: String,
    /// When it was made (the record's time, RFC 3339 UTC).
    pub time: String,
    /// The stored columns.
    pub values: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct Body {
    record: String,
    time: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    values: serde_json::Map<String, serde_json::Value>,
}

/// A prediction encoded for the committer: key and value, the value's seq
/// and hash still blank until [`Encoded::stamp`].
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

impl Encoded {
    /// Fills in the audit record's seq and hash.
    pub(crate) fn stamp(&mut self, seq: u64, hash: &str) {
        self.value[..8].copy_from_slice(&seq.to_be_bytes());
        let h = hash.as_bytes();
        if h.len() == AUDIT_HASH_LEN {
            self.value[12..PREDICTION_PREFIX_LEN].copy_from_slice(h);
        }
    }
}

/// Encodes the predictions of one audit record (`record`, at `time`).
pub(crate) fn encode(
    pipeline: &str,
    version: &str,
    record: &str,
    time: &str,
    rows: Vec<NewPrediction>,
) -> Result<Vec<Encoded>> {
    let mut out = Vec::with_capacity(rows.len());
    for p in rows {
        crate::id::validate_id(&p.id).map_err(|_| StoreError::BadName {
            what: "prediction id",
            value: p.id.clone(),
            reason: "must be 1 to 128 bytes without whitespace or control characters",
        })?;
        let mut value = vec![0u8; PREDICTION_PREFIX_LEN];
        value[8..12].copy_from_slice(&p.row.to_be_bytes());
        serde_json::to_writer(
            &mut value,
            &Body {
                record: record.to_owned(),
                time: time.to_owned(),
                values: p.values,
            },
        )?;
        out.push(Encoded {
            key: prediction_key(pipeline, &p.id, version),
            value,
        });
    }
    Ok(out)
}

/// Writes stamped predictions inside the audit group's transaction; returns
/// the change in bytes stored (a replaced prediction gives its bytes back).
pub(crate) fn write_in(
    predictions: &TransactionalTree,
    seqs: &TransactionalTree,
    rows: &[Encoded],
) -> std::result::Result<i64, sled::transaction::UnabortableTransactionError> {
    let mut delta = 0i64;
    for p in rows {
        let (seq, row) = seq_row(&p.value);
        delta += p.value.len() as i64;
        if let Some(old) = predictions.insert(p.key.as_slice(), p.value.as_slice())? {
            delta -= old.len() as i64;
        }
        seqs.insert(&prediction_seq_key(seq, row), p.key.as_slice())?;
    }
    Ok(delta)
}

fn seq_row(value: &[u8]) -> (u64, u32) {
    let mut s = [0u8; 8];
    let mut r = [0u8; 4];
    if value.len() >= 12 {
        s.copy_from_slice(&value[..8]);
        r.copy_from_slice(&value[8..12]);
    }
    (u64::from_be_bytes(s), u32::from_be_bytes(r))
}

/// Decodes a stored prediction under `key`.
pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<Prediction> {
    let corrupt = |reason: String| StoreError::Corrupt {
        tree: layout::PREDICTIONS,
        reason,
    };
    let mut parts = key.splitn(3, |b| *b == 0);
    let (_, id, version) = match (parts.next(), parts.next(), parts.next()) {
        (Some(p), Some(i), Some(v)) => (p, i, v),
        _ => return Err(corrupt("a key without pipeline, id and version".into())),
    };
    if value.len() < PREDICTION_PREFIX_LEN {
        return Err(corrupt(format!("a value of {} bytes", value.len())));
    }
    let (seq, row) = seq_row(value);
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| corrupt(e.to_string()));
    let body: Body = serde_json::from_slice(&value[PREDICTION_PREFIX_LEN..])
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(Prediction {
        id: text(id)?,
        version: text(version)?,
        seq,
        row,
        record_hash: text(&value[12..PREDICTION_PREFIX_LEN])?,
        record: body.record,
        time: body.time,
        values: body.values,
    })
}

/// The audit record hash of each stored prediction of row `id` of
/// `pipeline` (of `version` only, if given), read without decoding the rest:
/// what a label is joined by.
pub(crate) fn record_hashes(
    trees: &Trees,
    pipeline: &str,
    version: Option<&str>,
    id: &str,
) -> Result<Vec<String>> {
    let hash = |v: &[u8]| -> Result<String> {
        v.get(12..PREDICTION_PREFIX_LEN)
            .and_then(|h| std::str::from_utf8(h).ok())
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Corrupt {
                tree: layout::PREDICTIONS,
                reason: format!("the prediction of {id:?} has no record hash"),
            })
    };
    match version {
        Some(v) => trees
            .predictions
            .get(prediction_key(pipeline, id, v))?
            .map(|v| hash(&v))
            .into_iter()
            .collect(),
        None => trees
            .predictions
            .scan_prefix(prediction_id_prefix(pipeline, id))
            .map(|e| hash(&e?.1))
            .collect(),
    }
}

/// Removes the predictions of audit records below seq `below` (pruned
/// records); returns how many and their bytes. Safe to run again: it starts
/// from what is left.
pub(crate) fn prune(trees: &Trees, below: u64) -> Result<(u64, u64)> {
    let (mut count, mut bytes) = (0u64, 0u64);
    loop {
        let batch: Vec<(sled::IVec, sled::IVec)> = trees
            .prediction_seqs
            .range(..prediction_seq_key(below, 0))
            .take(PRUNE_BATCH)
            .collect::<std::result::Result<_, _>>()?;
        if batch.is_empty() {
            return Ok((count, bytes));
        }
        let freed = (&trees.predictions, &trees.prediction_seqs, &trees.meta).transaction(
            |(preds, seqs, meta)| {
                let mut freed = 0u64;
                let mut n = 0u64;
                for (seq_key, key) in &batch {
                    seqs.remove(seq_key)?;
                    let Some(v) = preds.get(key)? else { continue };
                    // A newer prediction of the same id keeps its key.
                    if v.len() >= 12 && v[..12] == seq_key[..] {
                        preds.remove(key)?;
                        freed += v.len() as u64;
                        n += 1;
                    }
                }
                bump(
                    meta,
                    USAGE_PREDICTIONS_KEY,
                    -i64::try_from(freed).unwrap_or(i64::MAX),
                )?;
                Ok::<_, ConflictableTransactionError<StoreError>>((n, freed))
            },
        )?;
        count += freed.0;
        bytes += freed.1;
    }
}

impl Store {
    /// Every version's prediction of row `id` of `pipeline`.
    pub fn predictions_of(&self, pipeline: &str, id: &str) -> Result<Vec<Prediction>> {
        self.trees()
            .predictions
            .scan_prefix(prediction_id_prefix(pipeline, id))
            .map(|e| {
                let (k, v) = e?;
                decode(&k, &v)
            })
            .collect()
    }

    /// The prediction of row `id` by `pipeline@version`.
    pub fn prediction(
        &self,
        pipeline: &str,
        version: &str,
        id: &str,
    ) -> Result<Option<Prediction>> {
        self.trees()
            .predictions
            .get(prediction_key(pipeline, id, version))?
            .map(|v| decode(&prediction_key(pipeline, id, version), &v))
            .transpose()
    }

    /// Calls `each` on every stored prediction of `pipeline` (of `version`
    /// only, if given), in id order.
    pub fn for_each_prediction(
        &self,
        pipeline: &str,
        version: Option<&str>,
        mut each: impl FnMut(Prediction) -> Result<()>,
    ) -> Result<()> {
        let mut prefix = pipeline.as_bytes().to_vec();
        prefix.push(0);
        for e in self.trees().predictions.scan_prefix(&prefix) {
            let (k, v) = e?;
            if let Some(want) = version
                && !k.ends_with(want.as_bytes())
            {
                continue;
            }
            let p = decode(&k, &v)?;
            if version.is_none_or(|want| p.version == want) {
                each(p)?;
            }
        }
        Ok(())
    }

    /// Whether any prediction of `pipeline` is stored.
    pub fn has_predictions(&self, pipeline: &str) -> Result<bool> {
        let mut prefix = pipeline.as_bytes().to_vec();
        prefix.push(0);
        Ok(self
            .trees()
            .predictions
            .scan_prefix(&prefix)
            .next()
            .transpose()?
            .is_some())
    }
}
