//! The daemon's admin log — who changed what, when, and how it ended — as a
//! hash chain of its own, and the daemon's per-pipeline traffic settings
//! (stored as given; the store does not interpret them).

use serde::{Deserialize, Serialize};

use crate::{
    Store,
    chain::{
        Head, Link, VerifyReport, chain_hash, decode_value, join_value, read_head, walk_chain,
    },
    error::{Result, StoreError, decode},
    id::validate_name,
    layout::{self, ADMIN_HEAD_KEY, seq_key},
    time::{now_rfc3339, parse_rfc3339},
};

/// One admin action of the daemon: who, what, when, and how it ended.
/// `seq`, `prev_hash` and `hash` are assigned on append (whatever the caller
/// put there is overwritten); an empty `time` gets the append time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminEntry {
    /// Position in the admin chain, from 0, contiguous.
    #[serde(default)]
    pub seq: u64,
    /// When it happened (RFC 3339 UTC).
    #[serde(default)]
    pub time: String,
    /// Token name, or `signal:SIGHUP`, `local`, `anonymous`.
    pub actor: String,
    /// E.g. `plugin.add`, `pipeline.deploy`, `traffic.set`, `traffic.promote`.
    pub action: String,
    /// E.g. `scaler@1.2.0`, `penguins`.
    pub target: String,
    /// Whatever else the daemon wants kept (the request's parameters, say).
    #[serde(default)]
    pub detail: serde_json::Value,
    /// `ok`, or the error.
    pub outcome: String,
    /// Hash of the previous entry ([`crate::GENESIS_HASH`] for the first).
    #[serde(default)]
    pub prev_hash: String,
    /// `hex(sha256(prev_hash || body))`; not part of the stored body.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl Link for AdminEntry {
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

impl Store {
    /// Appends an admin entry and returns it as stored (seq, time,
    /// `prev_hash` and hash filled in); durable on return. An empty `time`
    /// gets the append time, any other must be RFC 3339.
    ///
    /// Admin actions are rare, so there is no group commit: each append is
    /// one sled transaction over the entry and the head, which serialises
    /// concurrent callers (a conflicting one is retried against the new
    /// head), so seqs stay contiguous, and a crash keeps both or neither.
    pub fn append_admin(&self, entry: AdminEntry) -> Result<AdminEntry> {
        use sled::transaction::{ConflictableTransactionError, Transactional};
        let abort = |e: StoreError| ConflictableTransactionError::Abort(e);
        let t = self.trees();
        let time = if entry.time.is_empty() {
            now_rfc3339()
        } else {
            parse_rfc3339(&entry.time)?;
            entry.time.clone()
        };
        let written = (&t.admin_log, &t.meta).transaction(|(log, meta)| {
            let head = match meta.get(ADMIN_HEAD_KEY)? {
                Some(h) => decode::<Head>(layout::META, &h).map_err(abort)?,
                None => Head::genesis(),
            };
            let mut e = entry.clone();
            e.seq = head.next_seq;
            e.time.clone_from(&time);
            e.prev_hash = head.hash;
            e.hash = String::new();
            let body = serde_json::to_vec(&e).map_err(|x| abort(x.into()))?;
            let hash = chain_hash(&e.prev_hash, &body);
            log.insert(&seq_key(e.seq), join_value(&hash, &body))?;
            let next = Head {
                next_seq: e.seq + 1,
                hash: hash.clone(),
            };
            meta.insert(
                ADMIN_HEAD_KEY,
                serde_json::to_vec(&next).map_err(|x| abort(x.into()))?,
            )?;
            e.hash = hash;
            Ok(e)
        })?;
        self.durability().sync()?;
        Ok(written)
    }

    /// The newest `limit` entries, newest first.
    pub fn admin_log(&self, limit: usize) -> Result<Vec<AdminEntry>> {
        self.trees()
            .admin_log
            .iter()
            .rev()
            .take(limit)
            .map(|item| decode_value(layout::ADMIN_LOG, &item?.1))
            .collect()
    }

    /// Number of admin entries appended so far (the next seq).
    pub fn admin_len(&self) -> Result<u64> {
        Ok(read_head(&self.trees().meta, ADMIN_HEAD_KEY)?.map_or(0, |h| h.next_seq))
    }

    /// Walks the admin chain as [`Store::verify`] walks the audit chain and
    /// returns the first bad entry as [`StoreError::AdminChain`] (its
    /// [`ChainError::id`](crate::ChainError) is always `None`: entries are named by seq).
    pub fn verify_admin(&self) -> Result<VerifyReport> {
        let t = self.trees();
        let head = || read_head(&t.meta, ADMIN_HEAD_KEY);
        walk_chain::<AdminEntry>(&t.admin_log, &head, &[], |_, _| Ok(None))?
            .map_err(StoreError::AdminChain)
    }

    /// Saves the daemon's traffic settings of `pipeline` (a pipeline name,
    /// validated as [`Store::put_pipeline`] does), replacing any; durable on return.
    pub fn put_serving(&self, pipeline: &str, bytes: &[u8]) -> Result<()> {
        validate_name("pipeline name", pipeline)?;
        self.trees().serving.insert(pipeline.as_bytes(), bytes)?;
        self.durability().sync()
    }

    /// The traffic settings of `pipeline`, if any were saved.
    pub fn serving(&self, pipeline: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .trees()
            .serving
            .get(pipeline.as_bytes())?
            .map(|v| v.to_vec()))
    }

    /// Every pipeline's traffic settings, sorted by name (sled's byte order
    /// is `str` order for UTF-8).
    pub fn serving_all(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self.trees().serving.iter() {
            let (k, v) = item?;
            let name = String::from_utf8(k.to_vec()).map_err(|e| StoreError::Corrupt {
                tree: layout::SERVING,
                reason: format!("key is not UTF-8: {e}"),
            })?;
            out.push((name, v.to_vec()));
        }
        Ok(out)
    }
}
