//! Hash chains as stored: the head kept in `meta`, a record's framing
//! (`hash || body`), skipped ranges, how far a central store has the chain,
//! and the walk that verifies a chain. Shared by the audit log, the admin log
//! and a central store's copies of node chains; it knows none of their records.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{
    error::{ChainBreak, ChainError, Result, StoreError, decode},
    layout::{self, AUDIT_HASH_LEN, SYNC_CURSOR_PREFIX, decode_seq_key, seq_key},
};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A chain that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records walked.
    pub records: u64,
    /// Records before (or between) them that were pruned on purpose; their
    /// hashes were kept, so the rest still verifies.
    pub pruned: u64,
    /// Hash of the last record ([`GENESIS_HASH`] when empty). Keep it somewhere
    /// else to detect a wholesale rewrite of the chain.
    pub head_hash: String,
}

/// A chain head kept in `meta` (the audit chain's, and the admin log's under its own key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Head {
    pub(crate) next_seq: u64,
    pub(crate) hash: String,
}

impl Head {
    /// The head of a chain with no records yet.
    pub(crate) fn genesis() -> Head {
        Head {
            next_seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }
}

/// The head stored in `meta` under `key`; `None` before the first record.
pub(crate) fn read_head(meta: &sled::Tree, key: &[u8]) -> Result<Option<Head>> {
    meta.get(key)?.map(|v| decode(layout::META, &v)).transpose()
}

/// What [`walk_chain`] needs to know of a decoded body.
pub(crate) trait Link: serde::de::DeserializeOwned {
    fn seq(&self) -> u64;
    fn prev_hash(&self) -> &str;
    /// What names the record in a [`ChainError`] besides its seq, if anything.
    fn id(&self) -> Option<String>;
    /// Fills in the hash read from the stored value (it is not part of the body).
    fn set_hash(&mut self, hash: String);
}

/// Records a chain does not hold on purpose: `from..to` were pruned (the
/// audit store under its size cap) or never reached the central store (a node
/// pruned them before it synced), and the record at `to` chains onto
/// `prev_hash`, the hash of record `to - 1`, which was kept when they went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    /// First seq not held.
    pub from: u64,
    /// First seq held again.
    pub to: u64,
    /// Hash of record `to - 1`: what record `to` must name as its `prev_hash`.
    pub prev_hash: String,
}

/// How far a central store has this node's chain, as it last said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCursor {
    /// The next seq it expects.
    pub next_seq: u64,
    /// Hash of the last record it holds.
    pub head_hash: String,
    /// When it said so (RFC 3339 UTC).
    pub time: String,
}

/// The furthest seq any central store has acknowledged.
pub(crate) fn synced_to(meta: &sled::Tree) -> Result<Option<u64>> {
    let mut best = None;
    for entry in meta.scan_prefix(SYNC_CURSOR_PREFIX) {
        let cursor: SyncCursor = decode(layout::META, &entry?.1)?;
        best = best.max(Some(cursor.next_seq));
    }
    Ok(best)
}

/// Walks the chain stored in `tree` (`seq -> hash || body`) whose head
/// `head()` reads, and returns the first break: a missing seq (deleted), a
/// record under the wrong seq (moved or swapped), content not matching its
/// hash (edited), a `prev_hash` not matching the previous hash (edited and
/// re-hashed), a head that disagrees (tail deleted, or records written behind
/// the store's back), or whatever `check` finds in a record that passed.
/// The ranges in `skips` (ascending) are jumped over, each with the hash that
/// was kept for it, so a pruned chain still verifies from where it starts.
///
/// Safe while appends run, provided a writer puts its records and the head in
/// one sled transaction (readers see it whole or not at all): it walks exactly
/// the records the head names at the start; later ones are left for the next run.
pub(crate) fn walk_chain<T: Link>(
    tree: &sled::Tree,
    head: &dyn Fn() -> Result<Option<Head>>,
    skips: &[Skip],
    mut check: impl FnMut(&T, &[u8]) -> Result<Option<ChainBreak>>,
) -> Result<std::result::Result<VerifyReport, ChainError>> {
    let first_head = head()?;
    let end = first_head.as_ref().map_or(0, |h| h.next_seq);
    let mut expected: u64 = 0;
    let mut prev = GENESIS_HASH.to_owned();
    let mut skipped: u64 = 0;
    let mut skips = skips.iter().peekable();
    let broken = |seq, id, reason| Ok(Err(ChainError { seq, id, reason }));
    // Jumps over a skip that starts where the walk is; returns whether it did.
    let mut jump = |expected: &mut u64, prev: &mut String, skipped: &mut u64| match skips
        .next_if(|s| s.from == *expected && s.to > s.from)
    {
        Some(s) => {
            *skipped += s.to - s.from;
            *expected = s.to;
            prev.clone_from(&s.prev_hash);
            true
        }
        None => false,
    };
    while jump(&mut expected, &mut prev, &mut skipped) {}
    for entry in tree.range(seq_key(expected)..seq_key(end.max(expected))) {
        let (k, v) = entry?;
        let Some(key_seq) = decode_seq_key(&k) else {
            return broken(
                expected,
                None,
                ChainBreak::Undecodable(format!("key of {} bytes", k.len())),
            );
        };
        if key_seq != expected {
            return broken(expected, None, ChainBreak::Missing);
        }
        let (stored_hash, body) = match split_value(&v) {
            Ok(x) => x,
            Err(reason) => return broken(expected, None, reason),
        };
        let rec: T = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return broken(expected, None, ChainBreak::Undecodable(e.to_string())),
        };
        let id = rec.id();
        if rec.seq() != key_seq {
            return broken(expected, id, ChainBreak::Reordered { found: rec.seq() });
        }
        // Hashing over the record's own prev_hash tells "edited" here apart
        // from "edited and re-hashed", which shows as a broken link at the next record.
        if chain_hash(rec.prev_hash(), body) != stored_hash {
            return broken(expected, id, ChainBreak::Edited);
        }
        if rec.prev_hash() != prev {
            return broken(expected, id, ChainBreak::BrokenLink);
        }
        if let Some(reason) = check(&rec, &k)? {
            return broken(expected, id, reason);
        }
        prev = stored_hash.to_owned();
        expected += 1;
        while jump(&mut expected, &mut prev, &mut skipped) {}
    }
    if expected < end {
        // The last records named by the head are gone.
        return broken(expected, None, ChainBreak::Missing);
    }
    if let Some(h) = &first_head
        && h.hash != prev
    {
        return broken(
            expected.saturating_sub(1),
            None,
            ChainBreak::HeadMismatch("the last record's hash is not the head hash".into()),
        );
    }
    // Records past the head were not written by the store. Read the last
    // key before the head: records only grow, so a legitimate last key is
    // always below the head read after it.
    if let Some((k, _)) = tree.last()? {
        let last = decode_seq_key(&k).unwrap_or(u64::MAX);
        let next = head()?.map_or(0, |h| h.next_seq);
        if last >= next {
            return broken(
                next,
                None,
                ChainBreak::HeadMismatch(format!(
                    "records continue past the head's next seq {next}"
                )),
            );
        }
    }
    Ok(Ok(VerifyReport {
        records: expected - skipped,
        pruned: skipped,
        head_hash: prev,
    }))
}

/// `hex(sha256(prev_hash || body))`.
pub(crate) fn chain_hash(prev_hash: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

/// Splits a stored value into its hash and body.
pub(crate) fn split_value(v: &[u8]) -> std::result::Result<(&str, &[u8]), ChainBreak> {
    if v.len() < AUDIT_HASH_LEN {
        return Err(ChainBreak::Undecodable(format!(
            "value of {} bytes has no hash prefix",
            v.len()
        )));
    }
    let (h, body) = v.split_at(AUDIT_HASH_LEN);
    let h = std::str::from_utf8(h)
        .map_err(|_| ChainBreak::Undecodable("hash prefix is not text".into()))?;
    Ok((h, body))
}

/// The stored value of a record: its hash, then its body.
pub(crate) fn join_value(hash: &str, body: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(AUDIT_HASH_LEN + body.len());
    value.extend_from_slice(hash.as_bytes());
    value.extend_from_slice(body);
    value
}

/// Decodes a stored value of `tree` into its record, hash filled in.
pub(crate) fn decode_value<T: Link>(tree: &'static str, v: &[u8]) -> Result<T> {
    let corrupt = |reason: String| StoreError::Corrupt { tree, reason };
    let (hash, body) = split_value(v).map_err(|b| corrupt(b.to_string()))?;
    let mut record: T = serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))?;
    record.set_hash(hash.to_owned());
    Ok(record)
}
