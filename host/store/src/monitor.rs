//! Monitor state snapshots (so a restarted host resumes drift windows) and report history,
//! plus the cache of precompiled plugin artifacts.

use serde::{Deserialize, Serialize};

use crate::{
    Store,
    digest::Digest,
    error::{Result, StoreError, decode},
    id::validate_name,
    layout::{self, decode_seq_key},
    time::now_rfc3339,
};

/// One stored monitor report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorReport {
    /// Increasing number (unique in the store, not contiguous).
    pub seq: u64,
    /// When it was stored (RFC 3339 UTC).
    pub time: String,
    /// The report as the monitor produced it.
    pub report: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct StoredReport {
    time: String,
    report: serde_json::Value,
}

/// `pipeline \0 monitor \0`: names never contain NUL (validated), so prefixes cannot collide.
fn prefix(pipeline: &str, monitor: &str) -> Result<Vec<u8>> {
    validate_name("pipeline name", pipeline)?;
    validate_name("monitor name", monitor)?;
    let mut k = Vec::with_capacity(pipeline.len() + monitor.len() + 2);
    k.extend_from_slice(pipeline.as_bytes());
    k.push(0);
    k.extend_from_slice(monitor.as_bytes());
    k.push(0);
    Ok(k)
}

impl Store {
    /// Saves a monitor's state snapshot (replacing the previous one).
    pub fn put_monitor_state(&self, pipeline: &str, monitor: &str, bytes: &[u8]) -> Result<()> {
        self.trees()
            .monitor_state
            .insert(prefix(pipeline, monitor)?, bytes)?;
        Ok(())
    }

    /// A monitor's last saved state snapshot.
    pub fn monitor_state(&self, pipeline: &str, monitor: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .trees()
            .monitor_state
            .get(prefix(pipeline, monitor)?)?
            .map(|v| v.to_vec()))
    }

    /// Every saved monitor state as `(pipeline, monitor, bytes)`, sorted by pipeline and monitor.
    pub fn monitor_states(&self) -> Result<Vec<(String, String, Vec<u8>)>> {
        let mut out = Vec::new();
        for entry in self.trees().monitor_state.iter() {
            let (k, v) = entry?;
            let corrupt = || StoreError::Corrupt {
                tree: layout::MONITOR_STATE,
                reason: "key is not `pipeline \\0 monitor \\0`".into(),
            };
            let mut parts = k.split(|b| *b == 0);
            let (Some(p), Some(m)) = (parts.next(), parts.next()) else {
                return Err(corrupt());
            };
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| corrupt());
            out.push((text(p)?, text(m)?, v.to_vec()));
        }
        Ok(out)
    }

    /// Appends a report to a monitor's history and returns its seq.
    pub fn append_monitor_report(
        &self,
        pipeline: &str,
        monitor: &str,
        report: &serde_json::Value,
    ) -> Result<u64> {
        let mut key = prefix(pipeline, monitor)?;
        // sled's id generator is monotonic across restarts, so keys sort by append order.
        let seq = self.trees().db.generate_id()?;
        key.extend_from_slice(&seq.to_be_bytes());
        let value = serde_json::to_vec(&StoredReport {
            time: now_rfc3339(),
            report: report.clone(),
        })?;
        self.trees().monitor_reports.insert(key, value)?;
        Ok(seq)
    }

    /// A monitor's reports, newest first, at most `limit`.
    pub fn monitor_reports(
        &self,
        pipeline: &str,
        monitor: &str,
        limit: Option<usize>,
    ) -> Result<Vec<MonitorReport>> {
        let p = prefix(pipeline, monitor)?;
        let mut out = Vec::new();
        for entry in self
            .trees()
            .monitor_reports
            .scan_prefix(&p)
            .rev()
            .take(limit.unwrap_or(usize::MAX))
        {
            let (k, v) = entry?;
            let seq = decode_seq_key(&k[p.len()..]).ok_or_else(|| StoreError::Corrupt {
                tree: layout::MONITOR_REPORTS,
                reason: "key does not end in an 8-byte seq".into(),
            })?;
            let r: StoredReport = decode(layout::MONITOR_REPORTS, &v)?;
            out.push(MonitorReport {
                seq,
                time: r.time,
                report: r.report,
            });
        }
        Ok(out)
    }

    /// Caches a precompiled artifact of plugin `digest` for an engine
    /// (`engine_key`: whatever identifies compatible engines, e.g. wasmtime's
    /// precompile compatibility hash).
    pub fn put_compiled(&self, digest: &Digest, engine_key: &str, bytes: &[u8]) -> Result<()> {
        self.trees()
            .compiled
            .insert(compiled_key(digest, engine_key), bytes)?;
        Ok(())
    }

    /// A cached precompiled artifact.
    pub fn compiled(&self, digest: &Digest, engine_key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .trees()
            .compiled
            .get(compiled_key(digest, engine_key))?
            .map(|v| v.to_vec()))
    }
}

fn compiled_key(digest: &Digest, engine_key: &str) -> Vec<u8> {
    let mut k = digest.as_str().as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(engine_key.as_bytes());
    k
}
