//! Store-and-forward of the audit chain: a node hands out its records exactly
//! as stored, and a central store keeps each node's chain in a tree of its own,
//! checking every record against its hash and the node's previous one before
//! it is kept.
//!
//! What makes a push resumable and idempotent is that the central store, not
//! the node, holds the cursor: a node asks where its chain ends there and
//! sends from that seq; a record the central store already holds is
//! recognised by seq and hash and counted as a duplicate, never kept twice;
//! a batch is kept whole or not at all (one sled transaction). A node that
//! pruned records before they were shipped says so (its chain's base), and the
//! central store records the gap with the hash kept for it, so the rest still
//! verifies there and the loss is visible rather than silent.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, Transactional};

use crate::{
    Store,
    audit::AuditRecord,
    chain::{
        GENESIS_HASH, Head, Skip, SyncCursor, VerifyReport, chain_hash, decode_value, join_value,
        split_value, walk_chain,
    },
    error::{Result, StoreError, decode},
    id::new_record_id,
    layout::{self, AUDIT_HASH_LEN, NODE_ID_KEY, SYNC_NODE_TREE_PREFIX, seq_key, sync_cursor_key},
    time::now_rfc3339,
};

/// One audit record as stored: what a node ships and a central store checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRecord {
    /// Its seq in the node's chain.
    pub seq: u64,
    /// `hex(sha256(prev_hash || body))`.
    pub hash: String,
    /// The record's JSON exactly as stored (hashed byte for byte).
    pub body: String,
}

/// A node's chain as a central store holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeChain {
    /// The node's id.
    pub node: String,
    /// The next seq expected from it.
    pub next_seq: u64,
    /// Hash of the last record held.
    pub head_hash: String,
    /// Records held.
    pub records: u64,
    /// Ranges the node pruned before shipping them.
    #[serde(default)]
    pub skips: Vec<Skip>,
    /// Records received again and recognised (retried transfers).
    #[serde(default)]
    pub duplicates: u64,
    /// Batches received.
    #[serde(default)]
    pub batches: u64,
    /// First and last time a batch arrived (RFC 3339 UTC).
    pub first_push: String,
    /// See `first_push`.
    pub last_push: String,
}

impl NodeChain {
    fn new(node: &str) -> NodeChain {
        let now = now_rfc3339();
        NodeChain {
            node: node.to_owned(),
            next_seq: 0,
            head_hash: GENESIS_HASH.to_owned(),
            records: 0,
            skips: Vec::new(),
            duplicates: 0,
            batches: 0,
            first_push: now.clone(),
            last_push: now,
        }
    }

    /// Records the node pruned before they reached this store.
    pub fn lost(&self) -> u64 {
        self.skips.iter().map(|s| s.to - s.from).sum()
    }
}

/// What one batch did on the central store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Records kept.
    pub accepted: u64,
    /// Records it already held (same seq, same hash).
    pub duplicates: u64,
    /// Records skipped over because the node had pruned them.
    pub lost: u64,
    /// The next seq it expects from the node.
    pub next_seq: u64,
    /// Hash of the last record it holds.
    pub head_hash: String,
}

/// Checks a node id: it names a tree and sits in URLs.
pub fn validate_node_id(node: &str) -> Result<()> {
    let reason = if node.is_empty() {
        Some("must not be empty")
    } else if node.len() > 128 {
        Some("must be at most 128 bytes")
    } else if !node
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some("may hold only ASCII letters, digits, '-', '_' and '.'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::BadName {
            what: "node id",
            value: node.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn conflict(node: &str, seq: u64, reason: String) -> StoreError {
    StoreError::SyncConflict {
        node: node.to_owned(),
        seq,
        reason,
    }
}

/// A record's own claims, checked before any transaction: its body is a
/// record naming this seq, and its hash is the hash of its body.
fn check_record(node: &str, r: &RawRecord) -> Result<AuditRecord> {
    let rec: AuditRecord = serde_json::from_str(&r.body)
        .map_err(|e| conflict(node, r.seq, format!("the body is not an audit record: {e}")))?;
    if rec.seq != r.seq {
        return Err(conflict(
            node,
            r.seq,
            format!("the body says it is record {}", rec.seq),
        ));
    }
    if chain_hash(&rec.prev_hash, r.body.as_bytes()) != r.hash {
        return Err(conflict(
            node,
            r.seq,
            "the body does not match its hash (edited in transit or on the node)".into(),
        ));
    }
    Ok(rec)
}

impl Store {
    /// This store's node id, made (`node-` and a ULID) and kept on first use.
    pub fn node_id(&self) -> Result<String> {
        let meta = &self.trees().meta;
        if let Some(v) = meta.get(NODE_ID_KEY)? {
            return String::from_utf8(v.to_vec()).map_err(|e| StoreError::Corrupt {
                tree: layout::META,
                reason: format!("node_id is not UTF-8: {e}"),
            });
        }
        let id = format!("node-{}", new_record_id().to_ascii_lowercase());
        self.set_node_id(&id)?;
        Ok(id)
    }

    /// Names this store's chain on central stores. Changing it after a push
    /// makes the next push start a new chain there.
    pub fn set_node_id(&self, node: &str) -> Result<()> {
        validate_node_id(node)?;
        self.trees().meta.insert(NODE_ID_KEY, node.as_bytes())?;
        self.durability().sync()
    }

    /// Up to `max_records` records from `from` on, exactly as stored, stopping
    /// before `max_bytes` of bodies (but always at least one record).
    pub fn audit_raw(
        &self,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<RawRecord>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in self.trees().audit.range(seq_key(from)..) {
            let (k, v) = entry?;
            if out.len() >= max_records || (!out.is_empty() && bytes + v.len() > max_bytes) {
                break;
            }
            let corrupt = |reason: String| StoreError::Corrupt {
                tree: layout::AUDIT,
                reason,
            };
            let seq = layout::decode_seq_key(&k)
                .ok_or_else(|| corrupt(format!("key of {} bytes", k.len())))?;
            let (hash, body) =
                split_value(&v).map_err(|b| corrupt(format!("record {seq}: {b}")))?;
            let body = std::str::from_utf8(body)
                .map_err(|e| corrupt(format!("record {seq} is not UTF-8: {e}")))?;
            bytes += v.len();
            out.push(RawRecord {
                seq,
                hash: hash.to_owned(),
                body: body.to_owned(),
            });
        }
        Ok(out)
    }

    /// What central store `central` last said it holds of this chain.
    pub fn sync_cursor(&self, central: &str) -> Result<Option<SyncCursor>> {
        self.trees()
            .meta
            .get(sync_cursor_key(central))?
            .map(|v| decode(layout::META, &v))
            .transpose()
    }

    /// Remembers what `central` said it holds (for `keel audit cap`, which
    /// tells pruned records that were shipped from ones that were not).
    pub fn set_sync_cursor(&self, central: &str, cursor: &SyncCursor) -> Result<()> {
        self.trees()
            .meta
            .insert(sync_cursor_key(central), serde_json::to_vec(cursor)?)?;
        self.durability().sync()
    }

    fn node_tree(&self, node: &str) -> Result<sled::Tree> {
        validate_node_id(node)?;
        Ok(self
            .trees()
            .db
            .open_tree(format!("{SYNC_NODE_TREE_PREFIX}{node}"))?)
    }

    /// The chain of `node` as this (central) store holds it.
    pub fn node_chain(&self, node: &str) -> Result<Option<NodeChain>> {
        validate_node_id(node)?;
        self.trees()
            .sync_nodes
            .get(node.as_bytes())?
            .map(|v| decode(layout::SYNC_NODES, &v))
            .transpose()
    }

    /// Every node's chain held here, by node id.
    pub fn node_chains(&self) -> Result<Vec<NodeChain>> {
        self.trees()
            .sync_nodes
            .iter()
            .map(|e| decode(layout::SYNC_NODES, &e?.1))
            .collect()
    }

    /// Keeps a batch of `node`'s records, in seq order, all or none. A record
    /// already held (same seq and hash) counts as a duplicate; the next one
    /// must chain onto the last held. `base` is the node's pruned prefix: if
    /// the batch starts where it ends, past what is held here, the gap is
    /// kept as a [`Skip`]. Anything else — a different record under a held
    /// seq, a hole, a broken link — is [`StoreError::SyncConflict`] and
    /// nothing of the batch is kept.
    pub fn ingest_node_records(
        &self,
        node: &str,
        base: Option<&Skip>,
        records: &[RawRecord],
    ) -> Result<IngestReport> {
        let tree = self.node_tree(node)?;
        let checked = records
            .iter()
            .map(|r| check_record(node, r))
            .collect::<Result<Vec<_>>>()?;
        let nodes = &self.trees().sync_nodes;
        let abort = ConflictableTransactionError::Abort;
        let report = (&tree, nodes).transaction(|(tree, nodes)| {
            let mut chain = match nodes.get(node.as_bytes())? {
                Some(v) => decode::<NodeChain>(layout::SYNC_NODES, &v).map_err(abort)?,
                None => NodeChain::new(node),
            };
            let mut report = IngestReport {
                accepted: 0,
                duplicates: 0,
                lost: 0,
                next_seq: 0,
                head_hash: String::new(),
            };
            for (r, rec) in records.iter().zip(&checked) {
                if r.seq < chain.next_seq {
                    match tree.get(seq_key(r.seq))? {
                        Some(v) if v.get(..AUDIT_HASH_LEN) == Some(r.hash.as_bytes()) => {
                            report.duplicates += 1;
                            continue;
                        }
                        Some(_) => {
                            return Err(abort(conflict(
                                node,
                                r.seq,
                                "this store holds a different record under this seq: another store is pushing under the same node id".into(),
                            )));
                        }
                        None => {
                            return Err(abort(conflict(
                                node,
                                r.seq,
                                "the node said earlier it had pruned this record".into(),
                            )));
                        }
                    }
                }
                if r.seq > chain.next_seq {
                    let declared = base.filter(|b| {
                        b.to == r.seq && b.prev_hash == rec.prev_hash && b.from <= chain.next_seq
                    });
                    let Some(b) = declared else {
                        return Err(abort(conflict(
                            node,
                            r.seq,
                            format!(
                                "this store expects record {} next: records {}..{} are missing",
                                chain.next_seq, chain.next_seq, r.seq
                            ),
                        )));
                    };
                    report.lost += r.seq - chain.next_seq;
                    chain.skips.push(Skip {
                        from: chain.next_seq,
                        to: r.seq,
                        prev_hash: b.prev_hash.clone(),
                    });
                    chain.next_seq = r.seq;
                    chain.head_hash.clone_from(&b.prev_hash);
                }
                if rec.prev_hash != chain.head_hash {
                    return Err(abort(conflict(
                        node,
                        r.seq,
                        format!(
                            "its prev_hash {} is not the hash {} of the record before it here",
                            rec.prev_hash, chain.head_hash
                        ),
                    )));
                }
                tree.insert(&seq_key(r.seq), join_value(&r.hash, r.body.as_bytes()))?;
                chain.next_seq = r.seq + 1;
                chain.head_hash.clone_from(&r.hash);
                chain.records += 1;
                report.accepted += 1;
            }
            chain.duplicates += report.duplicates;
            chain.batches += 1;
            chain.last_push = now_rfc3339();
            let v = serde_json::to_vec(&chain).map_err(|e| abort(e.into()))?;
            nodes.insert(node.as_bytes(), v)?;
            report.next_seq = chain.next_seq;
            report.head_hash = chain.head_hash;
            Ok(report)
        })?;
        self.durability().sync()?;
        Ok(report)
    }

    /// Walks `node`'s chain as held here, as [`Store::verify`] walks the local one.
    pub fn verify_node(&self, node: &str) -> Result<VerifyReport> {
        let Some(chain) = self.node_chain(node)? else {
            return Err(StoreError::UnknownNode(node.to_owned()));
        };
        let tree = self.node_tree(node)?;
        let head = || {
            Ok(self.node_chain(node)?.map(|c| Head {
                next_seq: c.next_seq,
                hash: c.head_hash,
            }))
        };
        walk_chain::<AuditRecord>(&tree, &head, &chain.skips, |_, _| Ok(None))?.map_err(|e| {
            StoreError::NodeChain {
                node: node.to_owned(),
                error: e,
            }
        })
    }

    /// `node`'s record `seq`, as held here.
    pub fn node_record(&self, node: &str, seq: u64) -> Result<Option<AuditRecord>> {
        let tree = self.node_tree(node)?;
        tree.get(seq_key(seq))?
            .map(|v| decode_value(layout::SYNC_NODES, &v))
            .transpose()
    }
}

impl NodeChain {
    /// Whether a record of the node's chain sits in a range it pruned.
    pub fn pruned(&self, seq: u64) -> bool {
        self.skips.iter().any(|s| (s.from..s.to).contains(&seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids() {
        for ok in ["node-01jx", "edge.box_7", "A-1"] {
            validate_node_id(ok).unwrap();
        }
        for bad in ["", "a/b", "a b", "ü", &"x".repeat(129)] {
            assert!(validate_node_id(bad).is_err(), "{bad}");
        }
    }
}
