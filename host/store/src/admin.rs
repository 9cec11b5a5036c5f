//! The daemon's admin log — who changed what, when, and how it ended — as a
//! hash chain of its own, and the daemon's per-pipeline traffic settings
//! (stored as given; the store does not interpret them).

use crate::audit::{GENESIS_HASH, VerifyReport, chain_hash, split_value};
use crate::error::{Result, StoreError};
use crate::layout::{self, ADMIN_HEAD_KEY, AUDIT_HASH_LEN, decode_seq_key, seq_key};
use crate::time::now_rfc3339;
use crate::{Store, decode};
use serde::{Deserialize, Serialize};

/// One admin action. `seq`, `prev_hash` and `hash` are assigned on append;
/// an empty `time` gets the append time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminEntry {
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub time: String,
    /// Token name, or `signal:SIGHUP`, `local`, `anonymous`.
    pub actor: String,
    /// E.g. `plugin.add`, `pipeline.deploy`, `traffic.set`, `traffic.promote`.
    pub action: String,
    /// E.g. `scaler@1.2.0`, `penguins`.
    pub target: String,
    #[serde(default)]
    pub detail: serde_json::Value,
    /// `ok`, or the error.
    pub outcome: String,
    #[serde(default)]
    pub prev_hash: String,
    /// `hex(sha256(prev_hash || body))`; not part of the stored body.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Head {
    next_seq: u64,
    hash: String,
}

fn corrupt(reason: String) -> StoreError {
    StoreError::Corrupt {
        tree: layout::ADMIN_LOG,
        reason,
    }
}

fn decode_entry(v: &[u8]) -> Result<AdminEntry> {
    let (hash, body) = split_value(v).map_err(|b| corrupt(b.to_string()))?;
    let mut e: AdminEntry = serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))?;
    e.hash = hash.to_owned();
    Ok(e)
}

impl Store {
    /// Appends an admin entry; durable on return. Concurrent callers are
    /// serialised by a transaction on the head, so seqs stay contiguous.
    pub fn append_admin(&self, entry: AdminEntry) -> Result<AdminEntry> {
        use sled::transaction::{ConflictableTransactionError, Transactional};
        let t = self.trees();
        let time = if entry.time.is_empty() {
            now_rfc3339()
        } else {
            entry.time.clone()
        };
        let written = (&t.admin_log, &t.meta).transaction(|(log, meta)| {
            let head: Head = match meta.get(ADMIN_HEAD_KEY)? {
                Some(h) => serde_json::from_slice(&h).map_err(|e| {
                    ConflictableTransactionError::Abort(corrupt(format!("admin head: {e}")))
                })?,
                None => Head {
                    next_seq: 0,
                    hash: GENESIS_HASH.to_owned(),
                },
            };
            let mut e = entry.clone();
            e.seq = head.next_seq;
            e.time = time.clone();
            e.prev_hash = head.hash.clone();
            e.hash = String::new();
            let body = serde_json::to_vec(&e)
                .map_err(|x| ConflictableTransactionError::Abort(StoreError::from(x)))?;
            let hash = chain_hash(&e.prev_hash, &body);
            let mut value = Vec::with_capacity(AUDIT_HASH_LEN + body.len());
            value.extend_from_slice(hash.as_bytes());
            value.extend_from_slice(&body);
            log.insert(&seq_key(e.seq), value)?;
            let next = Head {
                next_seq: e.seq + 1,
                hash: hash.clone(),
            };
            let next = serde_json::to_vec(&next)
                .map_err(|x| ConflictableTransactionError::Abort(StoreError::from(x)))?;
            meta.insert(ADMIN_HEAD_KEY, next)?;
            e.hash = hash;
            Ok(e)
        })?;
        self.durability().sync()?;
        Ok(written)
    }

    /// The newest `limit` entries, newest first.
    pub fn admin_log(&self, limit: usize) -> Result<Vec<AdminEntry>> {
        let mut out = Vec::new();
        for item in self.trees().admin_log.iter().rev().take(limit) {
            let (_, v) = item?;
            out.push(decode_entry(&v)?);
        }
        Ok(out)
    }

    /// Walks the admin chain: seqs contiguous, each entry's hash over its
    /// bytes, each `prev_hash` the previous hash, the head the last hash.
    pub fn verify_admin(&self) -> Result<VerifyReport> {
        let t = self.trees();
        let head: Option<Head> = match t.meta.get(ADMIN_HEAD_KEY)? {
            Some(h) => Some(decode(layout::META, &h)?),
            None => None,
        };
        let end = head.as_ref().map_or(0, |h| h.next_seq);
        let mut expected = 0u64;
        let mut prev = GENESIS_HASH.to_owned();
        let broken =
            |seq: u64, why: String| Err(corrupt(format!("admin log broken at seq {seq}: {why}")));
        for item in t.admin_log.range(..seq_key(end)) {
            let (k, v) = item?;
            let Some(seq) = decode_seq_key(&k) else {
                return broken(expected, format!("key of {} bytes", k.len()));
            };
            if seq != expected {
                return broken(expected, "entry is missing (deleted)".into());
            }
            let (stored, body) = match split_value(&v) {
                Ok(x) => x,
                Err(b) => return broken(seq, b.to_string()),
            };
            if chain_hash(&prev, body) != stored {
                return broken(seq, "content does not match its hash (edited)".into());
            }
            let e: AdminEntry = match serde_json::from_slice(body) {
                Ok(e) => e,
                Err(x) => return broken(seq, format!("undecodable: {x}")),
            };
            if e.seq != seq || e.prev_hash != prev {
                return broken(seq, "entries were moved or swapped".into());
            }
            prev = stored.to_owned();
            expected += 1;
        }
        if expected != end {
            return broken(expected, "entry is missing (deleted)".into());
        }
        if let Some(h) = &head
            && h.hash != prev
        {
            return broken(
                end.saturating_sub(1),
                "the head does not match the last entry".into(),
            );
        }
        Ok(VerifyReport {
            records: expected,
            head_hash: prev,
        })
    }

    /// Saves the daemon's traffic settings of `pipeline`; durable on return.
    pub fn put_serving(&self, pipeline: &str, bytes: &[u8]) -> Result<()> {
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

    /// Every pipeline's traffic settings, sorted by name.
    pub fn serving_all(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self.trees().serving.iter() {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn entry(i: u32) -> AdminEntry {
        AdminEntry {
            seq: 0,
            time: String::new(),
            actor: "ops".into(),
            action: "traffic.set".into(),
            target: format!("p{i}"),
            detail: serde_json::json!({"i": i}),
            outcome: "ok".into(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn entries_chain_survive_reopen_and_concurrent_appends_stay_contiguous() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            let a = s.append_admin(entry(0)).unwrap();
            assert_eq!(a.seq, 0);
            assert_eq!(a.prev_hash, GENESIS_HASH);
            std::thread::scope(|sc| {
                for t in 0..4 {
                    let s = s.clone();
                    sc.spawn(move || {
                        for i in 0..10 {
                            s.append_admin(entry(t * 100 + i)).unwrap();
                        }
                    });
                }
            });
            let log = s.admin_log(100).unwrap();
            assert_eq!(log.len(), 41);
            let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (0..41).rev().collect::<Vec<_>>());
            for w in log.windows(2) {
                assert_eq!(w[0].prev_hash, w[1].hash);
            }
            assert_eq!(s.verify_admin().unwrap().records, 41);
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.verify_admin().unwrap().records, 41);
        assert_eq!(s.admin_log(1).unwrap()[0].seq, 40);
    }

    #[test]
    fn an_edited_entry_is_found() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            for i in 0..3 {
                s.append_admin(entry(i)).unwrap();
            }
        }
        {
            let db = sled::open(layout::db_path(dir.path())).unwrap();
            let t = db.open_tree(layout::ADMIN_LOG).unwrap();
            let v = t.get(seq_key(1)).unwrap().unwrap();
            let text = String::from_utf8(v.to_vec())
                .unwrap()
                .replace("\"ops\"", "\"eve\"");
            t.insert(seq_key(1), text.as_bytes()).unwrap();
            db.flush().unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        let e = s.verify_admin().unwrap_err().to_string();
        assert!(e.contains("seq 1") && e.contains("edited"), "{e}");
    }

    #[test]
    fn serving_settings_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.serving("p").unwrap(), None);
        s.put_serving("p", b"{\"stable\":\"1\"}").unwrap();
        s.put_serving("a", b"{}").unwrap();
        assert_eq!(s.serving("p").unwrap().unwrap(), b"{\"stable\":\"1\"}");
        let all = s.serving_all().unwrap();
        assert_eq!(
            all.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["a", "p"]
        );
    }

    #[test]
    fn pipeline_versions_retire_and_old_records_read_as_active() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert!(
            s.set_pipeline_state("p", "1", crate::State::Retired)
                .is_err()
        );
        s.put_pipeline("p", "1", "name = \"p\"", &[]).unwrap();
        assert_eq!(
            s.get_pipeline("p", Some("1")).unwrap().unwrap().state,
            crate::State::Active
        );
        s.set_pipeline_state("p", "1", crate::State::Retired)
            .unwrap();
        let r = s.get_pipeline("p", Some("1")).unwrap().unwrap();
        assert_eq!(r.state, crate::State::Retired);
        // Redeploying the same version keeps it retired, and the digest is unchanged.
        let d = s.put_pipeline("p", "1", "name = \"p\"", &[]).unwrap();
        assert_eq!(d, r.digest);
        assert_eq!(
            s.get_pipeline("p", Some("1")).unwrap().unwrap().state,
            crate::State::Retired
        );
        assert!(
            s.set_pipeline_state("p", "1", crate::State::Active)
                .is_err()
        );
        let old: PipelineRecordOld = serde_json::from_str(r#"{"name":"p","version":"0","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","spec_toml":"","plugins":[],"added_at":""}"#).unwrap();
        assert_eq!(old.0.state, crate::State::Active);
    }

    #[derive(Deserialize)]
    #[serde(transparent)]
    struct PipelineRecordOld(crate::PipelineRecord);
}
