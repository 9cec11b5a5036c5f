//! The usage counters in `meta`: bytes of audit records and of payloads,
//! bumped inside the same sled transactions that write them, so the audit
//! store's cap is checked with two reads, not a scan.

use sled::transaction::{TransactionalTree, UnabortableTransactionError};

use crate::error::Result;

/// A counter as stored: big-endian u64 (anything else reads as absent).
fn decode_u64(v: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(v).ok().map(u64::from_be_bytes)
}

/// The counter (or other big-endian u64) under `key`, if set.
pub(crate) fn get_u64(meta: &sled::Tree, key: &[u8]) -> Result<Option<u64>> {
    Ok(meta.get(key)?.and_then(|v| decode_u64(&v)))
}

/// Adds `delta` to the usage counter `key` inside a transaction.
pub(crate) fn bump(
    meta: &TransactionalTree,
    key: &[u8],
    delta: i64,
) -> std::result::Result<(), UnabortableTransactionError> {
    let current = meta.get(key)?.and_then(|v| decode_u64(&v)).unwrap_or(0);
    let next = if delta >= 0 {
        current.saturating_add(delta.unsigned_abs())
    } else {
        current.saturating_sub(delta.unsigned_abs())
    };
    meta.insert(key, &next.to_be_bytes())?;
    Ok(())
}
