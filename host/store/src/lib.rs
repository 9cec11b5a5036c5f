//! keel-store: Keel's embedded store on sled — plugins by digest, versioned tags and pipelines,
//! the tamper-evident audit chain with group commit, payloads under retention, monitor state,
//! predictions by row id and the label chain, and the daemon's admin log and traffic settings.
//!
//! It knows nothing of wasmtime: the runtime hands it bytes, digests and
//! records. One [`Store`] handle (cheap to clone, `Send + Sync`) is the only
//! way in; a store directory can be open in one process at a time.
//!
//! Encoding: values are JSON (serde_json). The audit chain hashes the exact
//! bytes stored, never a re-serialization, so verification does not depend on
//! JSON being canonical across versions (or on float round-tripping).
//!
//! # Layers
//!
//! Modules import only modules of earlier layers (no import cycle); a new
//! tree goes in the lowest layer that has everything it needs:
//!
//! 0. `layout` — file names, tree names, key encodings.
//! 1. `digest`, `lifecycle` — leaf values the error type names ([`Digest`], [`State`]).
//! 2. `error` — [`StoreError`], [`ChainError`], parsing the leaf values, the decode helper.
//! 3. `id`, `time` — record ids, name checks, RFC 3339 timestamps.
//! 4. `chain`, `usage`, `wal`, `predictions` — hash-chain heads, framing and the walk; usage
//!    counters; the audit write-ahead log; predictions by row id (written with their records).
//! 5. `audit`, `payload`, `registry`, `monitor`, `trust` — the records and blobs the store keeps.
//! 6. `cap`, `labels` — the audit store under its size cap (prunes payloads, records and their
//!    predictions); the label chain and the newest label of each row id.
//! 7. `sync`, `export`, `admin` — shipping chains to a central store, exports, the daemon's admin log.
//!
//! This file, the [`Store`] handle, opens the trees and wires the layers
//! together (it hands the committer the cap's enforcement, for instance).

// One direction only: a module imports modules of earlier layers, never of
// its own or a later one (`python3 tools/cycles.py host/store/src` checks it).
// lib.rs, the handle, sits on top and wires the layers together.

// Layer 0: names on disk.
pub mod layout;
// Layer 1: leaf values the error type names.
mod digest;
mod lifecycle;
// Layer 2: the error type.
mod error;
// Layer 3: ids, names and timestamps.
mod id;
mod time;
// Layer 4: hash chains and the usage counters; the audit write-ahead log file.
mod chain;
mod predictions;
mod usage;
pub mod wal;
// Layer 5: what the store keeps.
mod audit;
mod monitor;
mod payload;
mod registry;
mod trust;
// Layer 6: the audit store under its size cap; labels joined to predictions.
mod cap;
mod labels;
// Layer 7: what is built on the audit log.
mod admin;
mod export;
mod sync;

use std::{
    fs::{File, OpenOptions},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

pub use admin::AdminEntry;
pub use audit::{
    AuditFilter, AuditIter, AuditRecord, AuditStats, FindingEntry, ModelEntry, MonitorVerdict,
    Outcome, PipelineRef, Receipt, Severity, StageEntry, StageRole,
};
pub use cap::{AuditUsage, PruneReport};
pub use chain::{GENESIS_HASH, Skip, SyncCursor, VerifyReport};
pub use digest::Digest;
pub use error::{ChainBreak, ChainError, Result, StoreError};
pub use export::{OPENLINEAGE_PRODUCER, OPENLINEAGE_SCHEMA_URL, openlineage_event};
pub use id::{new_record_id, run_uuid};
pub use labels::{LabelEntry, LabelOutcome, LabelReport, NewLabel, StoredLabel};
pub use lifecycle::State;
pub use monitor::MonitorReport;
pub use payload::{ExpireReport, PayloadStatus, Retention};
pub use predictions::{NewPrediction, Prediction};
pub use registry::{
    PipelinePlugin, PipelineRecord, PluginMeta, PluginTag, Purpose, ResolvedPlugin,
    compare_versions, digest_pipeline, split_reference,
};
pub use sync::{IngestReport, NodeChain, RawRecord, validate_node_id};
pub use time::{format_rfc3339, now_rfc3339, parse_rfc3339};
pub use trust::TrustedKey;

use chain::{Head, read_head};
use error::io_err;

/// The on-disk format this build reads and writes, stamped in the `meta` tree.
pub const FORMAT_VERSION: u32 = 1;

/// Environment variable naming the store directory.
pub const STORE_ENV: &str = "KEEL_STORE";

/// Knobs for [`Store::open_with`]; [`Default`] is what [`Store::open`] uses.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Upper bound of sled's page cache. Small by default: edge machines are small,
    /// and the hot data (tags, the audit tail) is tiny.
    pub cache_capacity_bytes: u64,
    /// After sled's flush, also `fdatasync` its data file. sled 0.34 makes a
    /// flush stable with `sync_file_range` on Linux, which does not persist the
    /// file's size or the drive's write cache; this closes that gap for power
    /// loss. Group commit pays it once per group.
    pub sync_data: bool,
    /// Make audit groups durable through a write-ahead log of this many bytes
    /// (`audit.wal`, zero-filled once) instead of a sled flush per group; see
    /// [`wal`]. `None`: no log (one-shot commands, which append a record or
    /// two, gain nothing from it). A log left by an earlier open is replayed
    /// either way.
    pub audit_wal_bytes: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_capacity_bytes: 64 << 20,
            sync_data: true,
            audit_wal_bytes: None,
        }
    }
}

/// A handle on an open store. Clones share the same database and committer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// The open trees, shared with the committer thread.
#[derive(Clone)]
pub(crate) struct Trees {
    pub(crate) db: sled::Db,
    pub(crate) meta: sled::Tree,
    pub(crate) plugins: sled::Tree,
    pub(crate) tags: sled::Tree,
    pub(crate) models: sled::Tree,
    pub(crate) model_tags: sled::Tree,
    pub(crate) pipelines: sled::Tree,
    pub(crate) audit: sled::Tree,
    pub(crate) audit_ids: sled::Tree,
    pub(crate) payloads: sled::Tree,
    pub(crate) payload_info: sled::Tree,
    pub(crate) retention: sled::Tree,
    pub(crate) monitor_state: sled::Tree,
    pub(crate) monitor_reports: sled::Tree,
    pub(crate) compiled: sled::Tree,
    pub(crate) admin_log: sled::Tree,
    pub(crate) serving: sled::Tree,
    pub(crate) sync_nodes: sled::Tree,
    pub(crate) predictions: sled::Tree,
    pub(crate) prediction_seqs: sled::Tree,
    pub(crate) labels: sled::Tree,
    pub(crate) label_index: sled::Tree,
    /// What enforcing the audit cap removed and nobody has been told of yet;
    /// its lock lets one enforcement run at a time.
    pub(crate) pruned: Arc<Mutex<cap::PruneReport>>,
}

/// Makes everything written so far durable: sled's flush, then (optionally) an
/// `fdatasync` of its data file.
/// With the audit write-ahead log on, it also collects the payloads stored
/// since the last audit group, which the next group's frame carries.
#[derive(Clone)]
pub(crate) struct Durability {
    db: sled::Db,
    data_file: Option<Arc<File>>,
    data_path: PathBuf,
    unlogged: Option<Arc<Mutex<Unlogged>>>,
}

/// Payloads written to sled but not yet to the write-ahead log.
#[derive(Default)]
struct Unlogged {
    payloads: Vec<Vec<u8>>,
    bytes: usize,
    /// Something was not kept here (too big, or a frame failed): the next
    /// group must flush sled rather than log.
    overflow: bool,
}

/// Payloads up to this much per audit group ride in its log frame; beyond
/// it (a big batch run's input) the group flushes sled instead.
const MAX_LOGGED_PAYLOAD_BYTES: usize = 1 << 20;

impl Durability {
    pub(crate) fn sync(&self) -> Result<()> {
        self.db.flush()?;
        if let Some(f) = &self.data_file {
            f.sync_data().map_err(io_err(&self.data_path))?;
        }
        Ok(())
    }

    fn unlogged(&self) -> Option<std::sync::MutexGuard<'_, Unlogged>> {
        // A poisoned lock still holds valid data: a Vec and two counters.
        self.unlogged
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Notes payload bytes just written to sled, for the next audit frame.
    pub(crate) fn note_payload(&self, bytes: &[u8]) {
        if let Some(mut u) = self.unlogged() {
            if u.overflow || u.bytes + bytes.len() > MAX_LOGGED_PAYLOAD_BYTES {
                u.overflow = true;
            } else {
                u.bytes += bytes.len();
                u.payloads.push(bytes.to_vec());
            }
        }
    }

    /// The payloads to log with the next group, and whether some were not kept.
    pub(crate) fn take_unlogged(&self) -> (Vec<Vec<u8>>, bool) {
        match self.unlogged() {
            Some(mut u) => {
                let taken = std::mem::take(&mut *u);
                (taken.payloads, taken.overflow)
            }
            None => (Vec::new(), false),
        }
    }

    /// Makes the next group flush sled instead of logging.
    pub(crate) fn mark_unlogged(&self) {
        if let Some(mut u) = self.unlogged() {
            u.overflow = true;
        }
    }
}

struct Inner {
    // Field order is drop order: the committer is joined first (it holds
    // clones of the trees), then sled closes, and only then is the lock released.
    committer: audit::Committer,
    trees: Trees,
    durability: Durability,
    dir: PathBuf,
    /// Audit records the write-ahead log gave back at open.
    recovered: usize,
    _lock: File,
}

impl Store {
    /// Opens the store in `dir`, creating it if absent, with default options.
    ///
    /// Fails with [`StoreError::Locked`] at once if another process has it
    /// open, and with [`StoreError::FormatMismatch`] if it was written in
    /// another format version.
    pub fn open(dir: &Path) -> Result<Store> {
        Store::open_with(dir, StoreOptions::default())
    }

    /// [`Store::open`] with explicit options.
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock = take_lock(dir)?;
        let db_path = layout::db_path(dir);
        let fresh = !db_path.exists();
        let db = open_sled(dir, &db_path, &options)?;
        let trees = Trees::open(db)?;
        check_format(&trees.meta, dir)?;

        let data_path = db_path.join(layout::SLED_DATA_FILE);
        let data_file = if options.sync_data {
            Some(Arc::new(
                File::open(&data_path).map_err(io_err(&data_path))?,
            ))
        } else {
            None
        };
        let durability = Durability {
            db: trees.db.clone(),
            data_file,
            data_path,
            unlogged: options
                .audit_wal_bytes
                .map(|_| Arc::new(Mutex::new(Unlogged::default()))),
        };
        if fresh {
            // A new store must survive a crash right after creation: the
            // directory entries, not only the file contents.
            durability.sync()?;
            for d in [dir, db_path.as_path()] {
                File::open(d)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err(d))?;
            }
        }
        cap::ensure_usage(&trees)?;
        let (wal, recovered) = open_wal(dir, &trees, &durability, options.audit_wal_bytes)?;
        let after_group: audit::AfterGroup = {
            let (trees, durability) = (trees.clone(), durability.clone());
            Box::new(move || cap::enforce_after_group(&trees, &durability))
        };
        let committer =
            audit::Committer::start(trees.clone(), durability.clone(), wal, after_group)?;
        tracing::debug!(dir = %dir.display(), fresh, "store opened");
        Ok(Store {
            inner: Arc::new(Inner {
                committer,
                trees,
                durability,
                dir: dir.to_owned(),
                recovered,
                _lock: lock,
            }),
        })
    }

    /// The default store directory: `$KEEL_STORE`, else `<data dir>/keel/store`
    /// (e.g. `~/.local/share/keel/store` on Linux).
    pub fn default_dir() -> Result<PathBuf> {
        default_dir_from(std::env::var_os(STORE_ENV), dirs::data_dir())
    }

    /// The directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// How many audit records opening this store restored from the
    /// write-ahead log (acknowledged before a crash, not yet flushed by sled).
    pub fn recovered_from_wal(&self) -> usize {
        self.inner.recovered
    }

    /// Makes every write so far durable (audit appends already are when they return).
    pub fn flush(&self) -> Result<()> {
        self.inner.durability.sync()
    }

    pub(crate) fn trees(&self) -> &Trees {
        &self.inner.trees
    }

    pub(crate) fn committer(&self) -> &audit::Committer {
        &self.inner.committer
    }

    pub(crate) fn durability(&self) -> &Durability {
        &self.inner.durability
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Trees {
    fn open(db: sled::Db) -> Result<Trees> {
        let t = |name: &str| db.open_tree(name);
        Ok(Trees {
            meta: t(layout::META)?,
            plugins: t(layout::PLUGINS)?,
            tags: t(layout::TAGS)?,
            models: t(layout::MODELS)?,
            model_tags: t(layout::MODEL_TAGS)?,
            pipelines: t(layout::PIPELINES)?,
            audit: t(layout::AUDIT)?,
            audit_ids: t(layout::AUDIT_IDS)?,
            payloads: t(layout::PAYLOADS)?,
            payload_info: t(layout::PAYLOAD_INFO)?,
            retention: t(layout::RETENTION)?,
            monitor_state: t(layout::MONITOR_STATE)?,
            monitor_reports: t(layout::MONITOR_REPORTS)?,
            compiled: t(layout::COMPILED)?,
            admin_log: t(layout::ADMIN_LOG)?,
            serving: t(layout::SERVING)?,
            sync_nodes: t(layout::SYNC_NODES)?,
            predictions: t(layout::PREDICTIONS)?,
            prediction_seqs: t(layout::PREDICTION_SEQS)?,
            labels: t(layout::LABELS)?,
            label_index: t(layout::LABEL_INDEX)?,
            pruned: Arc::default(),
            db,
        })
    }
}

/// Replays what an earlier open left in the audit write-ahead log, makes it
/// durable in sled, and starts a new log if `bytes` asks for one (else
/// removes the old file).
fn open_wal(
    dir: &Path,
    trees: &Trees,
    durability: &Durability,
    bytes: Option<u64>,
) -> Result<(Option<wal::Wal>, usize)> {
    let path = dir.join(wal::WAL_FILE);
    let (frames, generation) = wal::Wal::recover(&path)?;
    let restored = replay_wal(trees, frames)?;
    if restored > 0 {
        durability.sync()?;
        tracing::info!(
            records = restored,
            "audit records restored from the write-ahead log"
        );
    }
    let wal = match bytes {
        Some(capacity) => Some(wal::Wal::start(
            &path,
            capacity,
            generation,
            durability.data_file.is_some(),
        )?),
        None => {
            if path.exists() {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
            }
            None
        }
    };
    Ok((wal, restored))
}

/// Writes into sled what the write-ahead log holds beyond sled's own audit
/// head (the groups acknowledged before a crash that sled had not flushed),
/// with the payloads they name. Returns the number of records restored.
fn replay_wal(trees: &Trees, frames: Vec<wal::Frame>) -> Result<usize> {
    let mut head = read_head(&trees.meta, layout::AUDIT_HEAD_KEY)?.unwrap_or_else(Head::genesis);
    let mut restored = 0;
    for frame in frames {
        for payload in &frame.payloads {
            trees.put_payload(payload)?;
        }
        let rows: Vec<wal::Row> = frame
            .rows
            .into_iter()
            .filter(|(seq, _, _)| *seq >= head.next_seq)
            .collect();
        let Some((first, _, _)) = rows.first() else {
            continue;
        };
        if *first != head.next_seq {
            return Err(wal::gap_error(head.next_seq, *first));
        }
        let predictions: Vec<predictions::Encoded> = frame
            .predictions
            .into_iter()
            .filter(|(_, v)| v.len() >= 8 && v[..8] >= head.next_seq.to_be_bytes()[..])
            .map(|(key, value)| predictions::Encoded { key, value })
            .collect();
        head = Head {
            next_seq: frame.next_seq,
            hash: frame.head_hash,
        };
        audit::write_rows(trees, &rows, &predictions, &head)?;
        restored += rows.len();
    }
    Ok(restored)
}

fn default_dir_from(env: Option<std::ffi::OsString>, data_dir: Option<PathBuf>) -> Result<PathBuf> {
    match env.filter(|v| !v.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => data_dir
            .map(|d| d.join("keel").join("store"))
            .ok_or(StoreError::NoDataDir),
    }
}

/// Takes the store's own advisory lock. This, not sled's internal lock, is
/// what tells "another process has it open" apart from anything else: its
/// failure mode is a typed `WouldBlock`, not an error message to parse.
fn take_lock(dir: &Path) -> Result<File> {
    let path = dir.join(layout::LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}

/// Opens sled. sled also flocks its data file; once we hold our own lock, the
/// only possible holder of sled's is a handle of this process that is still
/// closing (sled's I/O threads drop their file references a moment after the
/// `Db`), so a short bounded retry turns that race into success, never a hang.
fn open_sled(dir: &Path, db_path: &Path, options: &StoreOptions) -> Result<sled::Db> {
    let config = sled::Config::new()
        .path(db_path)
        .cache_capacity(options.cache_capacity_bytes);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if Instant::now() >= deadline {
                    return Err(StoreError::Locked {
                        path: dir.to_owned(),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn check_format(meta: &sled::Tree, dir: &Path) -> Result<()> {
    match meta.get(layout::FORMAT_VERSION_KEY)? {
        None => {
            meta.insert(layout::FORMAT_VERSION_KEY, &FORMAT_VERSION.to_be_bytes())?;
            Ok(())
        }
        Some(v) => {
            let found = <[u8; 4]>::try_from(v.as_ref())
                .map(u32::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    tree: layout::META,
                    reason: format!("format_version has {} bytes, expected 4", v.len()),
                })?;
            if found == FORMAT_VERSION {
                Ok(())
            } else {
                Err(StoreError::FormatMismatch {
                    found,
                    expected: FORMAT_VERSION,
                    path: dir.to_owned(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dir_prefers_keel_store_then_the_data_dir() {
        let data = Some(PathBuf::from("/home/u/.local/share"));
        assert_eq!(
            default_dir_from(Some("/srv/keel".into()), data.clone()).unwrap(),
            PathBuf::from("/srv/keel")
        );
        assert_eq!(
            default_dir_from(Some("".into()), data.clone()).unwrap(),
            PathBuf::from("/home/u/.local/share/keel/store")
        );
        assert_eq!(
            default_dir_from(None, data).unwrap(),
            PathBuf::from("/home/u/.local/share/keel/store")
        );
        assert!(matches!(
            default_dir_from(None, None),
            Err(StoreError::NoDataDir)
        ));
    }
}
