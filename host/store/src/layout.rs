//! The on-disk layout: file names, sled tree names and key encodings.
//!
//! Public so that tools (and the tamper tests) can open the raw sled database
//! the same way the store does; nothing else should write to these trees.

use std::path::{Path, PathBuf};

/// Sub-directory of the store directory that holds the sled database.
pub const DB_DIR: &str = "db";
/// File in the store directory locked exclusively while a [`crate::Store`] is open.
pub const LOCK_FILE: &str = "LOCK";
/// sled's data file inside [`DB_DIR`], synced by the store after each flush.
pub const SLED_DATA_FILE: &str = "db";

/// Tree `meta`: format version, the audit head and the admin log head.
pub const META: &str = "meta";
/// Tree `plugins`: digest → component bytes.
pub const PLUGINS: &str = "plugins";
/// Tree `tags`: `name@version` → JSON tag (digest, lifecycle state, metadata).
pub const TAGS: &str = "tags";
/// Tree `models`: digest → model file bytes (ONNX).
pub const MODELS: &str = "models";
/// Tree `model_tags`: `name@version` → JSON tag, as [`TAGS`] for plugins.
pub const MODEL_TAGS: &str = "model_tags";
/// Tree `pipelines`: `name@version` → JSON pipeline record.
pub const PIPELINES: &str = "pipelines";
/// Tree `audit`: big-endian u64 seq → `hash (64 hex bytes) || record JSON`.
pub const AUDIT: &str = "audit";
/// Tree `audit_ids`: record id → big-endian u64 seq.
pub const AUDIT_IDS: &str = "audit_ids";
/// Tree `payloads`: digest → payload bytes.
pub const PAYLOADS: &str = "payloads";
/// Tree `payload_info`: digest → JSON size, store and expiry times.
pub const PAYLOAD_INFO: &str = "payload_info";
/// Tree `retention`: pipeline name → JSON retention policy.
pub const RETENTION: &str = "retention";
/// Tree `monitor_state`: `pipeline \0 monitor` → snapshot bytes.
pub const MONITOR_STATE: &str = "monitor_state";
/// Tree `monitor_reports`: `pipeline \0 monitor \0 id(u64 BE)` → JSON report.
pub const MONITOR_REPORTS: &str = "monitor_reports";
/// Tree `compiled`: `digest \0 engine key` → precompiled artifact bytes.
pub const COMPILED: &str = "compiled";

/// Tree `admin_log`: big-endian u64 seq → `hash (64 hex bytes) || entry JSON`,
/// the daemon's admin actions, hash-chained like [`AUDIT`] but separately.
pub const ADMIN_LOG: &str = "admin_log";
/// Tree `serving`: pipeline name → the daemon's traffic settings (JSON, opaque to the store).
pub const SERVING: &str = "serving";
/// Tree `trusted_keys`: key id → JSON trusted key (the plugin signature policy; empty = none).
pub const TRUSTED_KEYS: &str = "trusted_keys";
/// Tree `signatures`: `digest \0 key id` → `.sig` text of a stored plugin's signature.
pub const SIGNATURES: &str = "signatures";

/// Tree `predictions`: `pipeline \0 id \0 version` → `seq u64 BE ‖ row u32 BE ‖
/// record hash (64 hex bytes) ‖ JSON` (time and the stored columns), one per
/// prediction row; see `predictions.rs`.
pub const PREDICTIONS: &str = "predictions";
/// Tree `prediction_seqs`: `seq u64 BE ‖ row u32 BE` → the [`PREDICTIONS`] key,
/// so pruning audit records `0..n` prunes their predictions by a range scan.
pub const PREDICTION_SEQS: &str = "prediction_seqs";
/// Tree `labels`: big-endian u64 seq → `hash (64 hex bytes) || entry JSON`,
/// the label chain (one entry per accepted batch of labels), hash-chained
/// like [`AUDIT`] but separately.
pub const LABELS: &str = "labels";
/// Tree `label_index`: `pipeline \0 id` → JSON of the newest label of that
/// id (what the join reads); derived from [`LABELS`].
pub const LABEL_INDEX: &str = "label_index";

/// Key in [`META`] holding the format version as a big-endian u32.
pub const FORMAT_VERSION_KEY: &[u8] = b"format_version";
/// Key in [`META`] holding the audit head (next seq and last hash) as JSON.
pub const AUDIT_HEAD_KEY: &[u8] = b"audit_head";

/// Key in [`META`] holding the admin log head (next seq and last hash) as JSON.
pub const ADMIN_HEAD_KEY: &[u8] = b"admin_head";

/// Key in [`META`]: the audit chain's pruned prefix, as a JSON
/// [`crate::Skip`] from 0 (absent until records are first pruned).
pub const AUDIT_BASE_KEY: &[u8] = b"audit_base";
/// Key in [`META`]: the audit store's size cap in bytes, big-endian u64 (absent: no cap).
pub const AUDIT_CAP_KEY: &[u8] = b"audit_cap";
/// Key in [`META`]: bytes of audit record values stored, big-endian u64.
pub const USAGE_AUDIT_KEY: &[u8] = b"usage_audit";
/// Key in [`META`]: bytes of payloads present (not expired), big-endian u64.
pub const USAGE_PAYLOADS_KEY: &[u8] = b"usage_payloads";
/// Key in [`META`]: bytes of [`PREDICTIONS`] values stored, big-endian u64.
pub const USAGE_PREDICTIONS_KEY: &[u8] = b"usage_predictions";
/// Key in [`META`] holding the label chain's head (next seq and last hash) as JSON.
pub const LABELS_HEAD_KEY: &[u8] = b"labels_head";
/// Key in [`META`]: this store's node id, the name its audit chain has on a central store.
pub const NODE_ID_KEY: &[u8] = b"node_id";
/// Prefix of keys in [`META`]: `sync_cursor:URL` → JSON, how far that central store has this chain.
pub const SYNC_CURSOR_PREFIX: &[u8] = b"sync_cursor:";
/// Tree `sync_nodes` (on a central store): node id → JSON state of its chain.
pub const SYNC_NODES: &str = "sync_nodes";
/// Prefix of the per-node trees of a central store: `sync:NODE`, laid out as [`AUDIT`].
pub const SYNC_NODE_TREE_PREFIX: &str = "sync:";

/// Length of the hex hash that prefixes every value in [`AUDIT`] and [`ADMIN_LOG`].
pub const AUDIT_HASH_LEN: usize = 64;

/// Where the sled database of the store in `store_dir` lives.
pub fn db_path(store_dir: &Path) -> PathBuf {
    store_dir.join(DB_DIR)
}

/// The key of audit record or admin entry `seq` (big-endian, so sled's order is seq order).
pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Decodes an [`AUDIT`] or [`ADMIN_LOG`] key.
pub fn decode_seq_key(key: &[u8]) -> Option<u64> {
    key.try_into().ok().map(u64::from_be_bytes)
}

/// The key in [`META`] of what central store `central` said it holds of this chain.
pub(crate) fn sync_cursor_key(central: &str) -> Vec<u8> {
    let mut k = SYNC_CURSOR_PREFIX.to_vec();
    k.extend_from_slice(central.as_bytes());
    k
}

/// The key of a `name@version` entry in [`TAGS`] or [`PIPELINES`].
pub(crate) fn ref_key(name: &str, version: &str) -> String {
    format!("{name}@{version}")
}

/// Bytes before the JSON of a [`PREDICTIONS`] value: seq, row and record hash.
pub const PREDICTION_PREFIX_LEN: usize = 8 + 4 + AUDIT_HASH_LEN;

/// The key of prediction `id` of `pipeline@version` in [`PREDICTIONS`].
pub fn prediction_key(pipeline: &str, id: &str, version: &str) -> Vec<u8> {
    let mut k = prediction_id_prefix(pipeline, id);
    k.extend_from_slice(version.as_bytes());
    k
}

/// The prefix of every version's prediction `id` of `pipeline` in [`PREDICTIONS`].
pub fn prediction_id_prefix(pipeline: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(pipeline.len() + id.len() + 24);
    k.extend_from_slice(pipeline.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k
}

/// The key of label `id` of `pipeline` in [`LABEL_INDEX`], and the prefix of
/// the pipeline's predictions in [`PREDICTIONS`] when `id` is empty.
pub fn label_key(pipeline: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(pipeline.len() + id.len() + 1);
    k.extend_from_slice(pipeline.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

/// The key of row `row` of audit record `seq` in [`PREDICTION_SEQS`].
pub fn prediction_seq_key(seq: u64, row: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&seq.to_be_bytes());
    k[8..].copy_from_slice(&row.to_be_bytes());
    k
}
