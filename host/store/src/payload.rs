//! Payloads (input/output batches) stored by digest, deduplicated, under a retention policy per
//! pipeline, and expired by age without touching the audit chain (records keep their digests).

use std::{fmt, str::FromStr, time::SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{
    Store, Trees,
    digest::Digest,
    error::{Result, StoreError, decode},
    id::validate_name,
    layout::{self, USAGE_PAYLOADS_KEY},
    time::{format_rfc3339, from_unix_nanos, unix_nanos},
    usage::bump,
};

/// Which payloads of a pipeline's invocations are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "kebab-case")]
pub enum Retention {
    /// Every input and output.
    #[default]
    All,
    /// A deterministic fraction of invocations, chosen from the record id
    /// (so a replay, or another host, makes the same choice).
    Sample {
        /// Fraction kept, in `[0, 1]`.
        rate: f64,
    },
    /// Only digests, in the audit records; no payload bytes.
    DigestsOnly,
}

impl Retention {
    /// Whether the payloads of the invocation `record_id` are kept.
    pub fn keeps_payloads(&self, record_id: &str) -> bool {
        match *self {
            Retention::All => true,
            Retention::DigestsOnly => false,
            Retention::Sample { rate } => sample_point(record_id) < rate,
        }
    }

    fn validate(self) -> Result<Self> {
        match self {
            Retention::Sample { rate } if !(0.0..=1.0).contains(&rate) => {
                Err(StoreError::BadRetention(self.to_string()))
            }
            _ => Ok(self),
        }
    }
}

/// A uniform point in `[0, 1)` derived from the record id: 53 bits of
/// sha256, the precision of an f64 mantissa.
fn sample_point(record_id: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(b"keel-sample\0");
    h.update(record_id.as_bytes());
    let hash = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::All => f.write_str("all"),
            Retention::Sample { rate } => write!(f, "sample:{rate}"),
            Retention::DigestsOnly => f.write_str("digests-only"),
        }
    }
}

impl FromStr for Retention {
    type Err = StoreError;

    /// `all`, `digests-only`, or `sample:RATE` (also `sample=RATE`).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "all" => Ok(Retention::All),
            "digests-only" => Ok(Retention::DigestsOnly),
            _ => {
                let rate = s
                    .strip_prefix("sample:")
                    .or_else(|| s.strip_prefix("sample="))
                    .and_then(|r| r.parse::<f64>().ok())
                    .ok_or_else(|| StoreError::BadRetention(s.to_owned()))?;
                Retention::Sample { rate }
                    .validate()
                    .map_err(|_| StoreError::BadRetention(s.to_owned()))
            }
        }
    }
}

/// Bookkeeping for one payload; kept after expiry as a tombstone so that
/// "expired" can be told apart from "never stored".
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PayloadInfo {
    pub(crate) size: u64,
    first_stored_ns: u64,
    /// Refreshed whenever the same bytes are stored again: expiry is by last use.
    pub(crate) last_stored_ns: u64,
    #[serde(default)]
    pub(crate) expired_at_ns: Option<u64>,
}

/// Whether a payload's bytes are available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadStatus {
    /// Bytes are stored.
    Present {
        /// Size in bytes.
        size: u64,
    },
    /// Bytes were stored, then expired.
    Expired {
        /// When (RFC 3339 UTC).
        at: String,
    },
    /// Never stored (e.g. retention was `digests-only` or the sample skipped it).
    NotStored,
}

/// What [`Store::expire_payloads`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpireReport {
    /// Payloads whose bytes were removed.
    pub payloads: u64,
    /// Bytes freed.
    pub bytes: u64,
}

/// A size as a counter delta (a payload is never near 2^63 bytes).
fn size_delta(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

fn abort<T>(
    e: StoreError,
) -> std::result::Result<T, sled::transaction::ConflictableTransactionError<StoreError>> {
    Err(sled::transaction::ConflictableTransactionError::Abort(e))
}

impl Store {
    /// Sets `pipeline`'s retention policy.
    pub fn set_retention(&self, pipeline: &str, retention: Retention) -> Result<()> {
        validate_name("pipeline name", pipeline)?;
        let retention = retention.validate()?;
        self.trees()
            .retention
            .insert(pipeline, serde_json::to_vec(&retention)?)?;
        self.durability().sync()
    }

    /// `pipeline`'s retention policy ([`Retention::All`] unless set).
    pub fn retention(&self, pipeline: &str) -> Result<Retention> {
        match self.trees().retention.get(pipeline)? {
            Some(v) => decode(layout::RETENTION, &v),
            None => Ok(Retention::All),
        }
    }

    /// Whether the payloads of invocation `record_id` of `pipeline` should be stored.
    pub fn keeps_payloads(&self, pipeline: &str, record_id: &str) -> Result<bool> {
        Ok(self.retention(pipeline)?.keeps_payloads(record_id))
    }

    /// Stores a payload and returns its digest. The same bytes are stored
    /// once; storing them again refreshes their age (and restores them if they
    /// had expired). Not flushed by itself: the audit append that references
    /// it flushes it too.
    pub fn put_payload(&self, bytes: &[u8]) -> Result<Digest> {
        let (digest, stored) = self.trees().put_payload(bytes)?;
        if stored {
            self.durability().note_payload(bytes);
        }
        Ok(digest)
    }

    /// The payload stored under `digest`, unless it expired or was never stored.
    pub fn payload(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        Ok(self
            .trees()
            .payloads
            .get(digest.as_str())?
            .map(|v| v.to_vec()))
    }

    /// Whether the payload `digest` is present, expired or was never stored.
    pub fn payload_status(&self, digest: &Digest) -> Result<PayloadStatus> {
        let Some(v) = self.trees().payload_info.get(digest.as_str())? else {
            return Ok(PayloadStatus::NotStored);
        };
        let info: PayloadInfo = decode(layout::PAYLOAD_INFO, &v)?;
        Ok(match info.expired_at_ns {
            Some(at) => PayloadStatus::Expired {
                at: format_rfc3339(from_unix_nanos(at)),
            },
            None => PayloadStatus::Present { size: info.size },
        })
    }

    /// Removes the bytes of every payload last stored before `older_than`.
    /// Audit records are untouched (they hold digests only), so the chain
    /// still verifies; [`Store::payload_status`] reports the payload expired.
    pub fn expire_payloads(&self, older_than: SystemTime) -> Result<ExpireReport> {
        let cutoff = unix_nanos(older_than);
        let t = self.trees();
        let mut report = ExpireReport::default();
        for entry in t.payload_info.iter() {
            let (key, v) = entry?;
            let info: PayloadInfo = decode(layout::PAYLOAD_INFO, &v)?;
            if info.expired_at_ns.is_some() || info.last_stored_ns >= cutoff {
                continue;
            }
            if let Some(size) = t.expire_payload(&key, Some(cutoff))? {
                report.payloads += 1;
                report.bytes += size;
            }
        }
        if report.payloads > 0 {
            self.durability().sync()?;
            tracing::info!(
                payloads = report.payloads,
                bytes = report.bytes,
                "payloads expired"
            );
        }
        Ok(report)
    }
}

impl Trees {
    /// Removes the bytes of payload `key`, leaving its tombstone, unless it
    /// is already expired or (with a `cutoff`) was stored again since.
    /// Returns the bytes freed.
    pub(crate) fn expire_payload(&self, key: &[u8], cutoff: Option<u64>) -> Result<Option<u64>> {
        use sled::transaction::Transactional;
        let now = unix_nanos(SystemTime::now());
        // Re-checked inside the transaction: a put may have refreshed it since the caller looked.
        let freed = (&self.payloads, &self.payload_info, &self.meta).transaction(
            |(payloads, infos, meta)| {
                let Some(v) = infos.get(key)? else {
                    return Ok(None);
                };
                let mut info = match decode::<PayloadInfo>(layout::PAYLOAD_INFO, &v) {
                    Ok(i) => i,
                    Err(e) => return abort(e),
                };
                if info.expired_at_ns.is_some() || cutoff.is_some_and(|c| info.last_stored_ns >= c)
                {
                    return Ok(None);
                }
                payloads.remove(key)?;
                info.expired_at_ns = Some(now);
                match serde_json::to_vec(&info) {
                    Ok(v) => infos.insert(key, v)?,
                    Err(e) => return abort(e.into()),
                };
                bump(meta, USAGE_PAYLOADS_KEY, -size_delta(info.size))?;
                Ok(Some(info.size))
            },
        )?;
        Ok(freed)
    }

    /// [`Store::put_payload`] on the trees; also says whether the bytes were
    /// written (new, or restored after expiry) rather than only refreshed.
    pub(crate) fn put_payload(&self, bytes: &[u8]) -> Result<(Digest, bool)> {
        use sled::transaction::Transactional;
        let digest = Digest::of(bytes);
        let key = digest.as_str().as_bytes();
        let now = unix_nanos(SystemTime::now());
        let t = self;
        // One transaction with expiry's, so an expiry racing this put cannot
        // remove bytes that were just stored again.
        let stored =
            (&t.payloads, &t.payload_info, &t.meta).transaction(|(payloads, info, meta)| {
                let (mut entry, store_bytes) = match info.get(key)? {
                    // Known: rewrite the bytes only if they had expired.
                    Some(v) => match decode::<PayloadInfo>(layout::PAYLOAD_INFO, &v) {
                        Ok(i) => {
                            let expired = i.expired_at_ns.is_some();
                            (i, expired)
                        }
                        Err(e) => return abort(e),
                    },
                    None => {
                        let fresh = PayloadInfo {
                            size: bytes.len() as u64,
                            first_stored_ns: now,
                            last_stored_ns: now,
                            expired_at_ns: None,
                        };
                        (fresh, true)
                    }
                };
                if store_bytes {
                    payloads.insert(key, bytes)?;
                    bump(meta, USAGE_PAYLOADS_KEY, size_delta(bytes.len() as u64))?;
                }
                entry.expired_at_ns = None;
                entry.last_stored_ns = now;
                match serde_json::to_vec(&entry) {
                    Ok(v) => info.insert(key, v)?,
                    Err(e) => return abort(e.into()),
                };
                Ok(store_bytes)
            })?;
        Ok((digest, stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        assert_eq!("all".parse::<Retention>().unwrap(), Retention::All);
        assert_eq!(
            "digests-only".parse::<Retention>().unwrap(),
            Retention::DigestsOnly
        );
        assert_eq!(
            "sample:0.25".parse::<Retention>().unwrap(),
            Retention::Sample { rate: 0.25 }
        );
        assert_eq!(
            "sample=1".parse::<Retention>().unwrap(),
            Retention::Sample { rate: 1.0 }
        );
        for bad in ["sample:1.5", "sample:-0.1", "sample:NaN", "some", "sample:"] {
            assert!(bad.parse::<Retention>().is_err(), "{bad}");
        }
        assert_eq!(Retention::Sample { rate: 0.25 }.to_string(), "sample:0.25");
        let json = serde_json::to_string(&Retention::Sample { rate: 0.5 }).unwrap();
        assert_eq!(json, r#"{"policy":"sample","rate":0.5}"#);
    }

    #[test]
    fn sampling_is_deterministic_and_near_rate() {
        let r = Retention::Sample { rate: 0.2 };
        let ids: Vec<String> = (0..20_000).map(|i| format!("rec-{i}")).collect();
        let first: Vec<bool> = ids.iter().map(|id| r.keeps_payloads(id)).collect();
        let second: Vec<bool> = ids.iter().map(|id| r.keeps_payloads(id)).collect();
        assert_eq!(first, second);
        let kept = first.iter().filter(|k| **k).count() as f64 / ids.len() as f64;
        assert!((kept - 0.2).abs() < 0.015, "kept fraction {kept}");
        assert!(
            ids.iter()
                .all(|id| Retention::Sample { rate: 1.0 }.keeps_payloads(id))
        );
        assert!(
            !ids.iter()
                .any(|id| Retention::Sample { rate: 0.0 }.keeps_payloads(id))
        );
    }
}
