//! The store's error type: one `thiserror` enum so the CLI and daemon can match on what went wrong,
//! and the chain errors it carries. It names only leaf types (digests, lifecycle states).

use std::{fmt, path::PathBuf, str::FromStr, sync::Arc};

use crate::{digest::Digest, lifecycle::State};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store was written by a build with another on-disk format.
    #[error(
        "store at {path} has format version {found}, but this build of keel reads format version {expected}"
    )]
    FormatMismatch {
        /// Version stamped in the store.
        found: u32,
        /// Version this build understands ([`crate::FORMAT_VERSION`]).
        expected: u32,
        /// The store directory.
        path: PathBuf,
    },
    /// Another process (or another handle in this one) has the store open.
    #[error(
        "store at {path} is in use by another process (its lock is held); stop that process or use another store directory"
    )]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// Neither `KEEL_STORE` nor a platform data directory is available.
    #[error("no store directory: set KEEL_STORE or pass a directory explicitly")]
    NoDataDir,
    /// A file-system operation on the store directory failed.
    #[error("i/o on {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// sled reported an error.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A value in a tree could not be decoded: the store is damaged or was written by something else.
    #[error("corrupt entry in tree `{tree}`: {reason}")]
    Corrupt {
        /// Tree name.
        tree: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// JSON encoding or decoding failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A string is not of the form `sha256:<64 lowercase hex digits>`.
    #[error("invalid digest {0:?}: expected sha256:<64 hex digits>")]
    BadDigest(String),
    /// A reference is not of the form `NAME@VERSION`.
    #[error("invalid reference {0:?}: expected NAME@VERSION")]
    BadReference(String),
    /// A name or version contains characters the store does not accept.
    #[error("invalid {what} {value:?}: {reason}")]
    BadName {
        /// "name", "version", "id", …
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// No plugin bytes are stored under this digest.
    #[error("no plugin stored with digest {0}")]
    UnknownDigest(Digest),
    /// No tag `name@version`.
    #[error("unknown plugin {name}@{version}")]
    UnknownPlugin {
        /// Plugin name.
        name: String,
        /// Plugin version.
        version: String,
    },
    /// A tag already points to another digest: released versions are immutable.
    #[error(
        "plugin {name}@{version} already points to {existing}; versions are immutable, publish a new version instead of {requested}"
    )]
    TagImmutable {
        /// Plugin name.
        name: String,
        /// Plugin version.
        version: String,
        /// Digest the tag points to.
        existing: Digest,
        /// Digest the caller asked for.
        requested: Digest,
    },
    /// The plugin version is retired and cannot be used by a new pipeline version.
    #[error("plugin {name}@{version} is retired and cannot be used by a new pipeline version")]
    Retired {
        /// Plugin name.
        name: String,
        /// Plugin version.
        version: String,
    },
    /// Retired is a final state.
    #[error(
        "plugin {name}@{version} is retired; retirement is final, it cannot become {requested}"
    )]
    RetiredIsFinal {
        /// Plugin name.
        name: String,
        /// Plugin version.
        version: String,
        /// State asked for.
        requested: State,
    },
    /// No model bytes are stored under this digest.
    #[error("no model stored with digest {0}")]
    UnknownModelDigest(Digest),
    /// No model tag `name@version`.
    #[error("unknown model {name}@{version} (add it with `keel model add`)")]
    UnknownModel {
        /// Model name.
        name: String,
        /// Model version.
        version: String,
    },
    /// A model tag already points to another file: versions are immutable.
    #[error(
        "model {name}@{version} already points to {existing}; versions are immutable, add a new version instead of {requested}"
    )]
    ModelTagImmutable {
        /// Model name.
        name: String,
        /// Model version.
        version: String,
        /// Digest the tag points to.
        existing: Digest,
        /// Digest the caller asked for.
        requested: Digest,
    },
    /// The model version is retired and cannot be used by a new pipeline run.
    #[error("model {name}@{version} is retired and cannot be used by a new pipeline version")]
    ModelRetired {
        /// Model name.
        name: String,
        /// Model version.
        version: String,
    },
    /// Retired is a final state, for models too.
    #[error("model {name}@{version} is retired; retirement is final, it cannot become {requested}")]
    ModelRetiredIsFinal {
        /// Model name.
        name: String,
        /// Model version.
        version: String,
        /// State asked for.
        requested: State,
    },
    /// No such pipeline (or pipeline version).
    #[error("unknown pipeline {0}")]
    UnknownPipeline(String),
    /// A retired pipeline version cannot change state again.
    #[error(
        "pipeline {name}@{version} is retired; retirement is final, it cannot become {requested} (deploy a new version)"
    )]
    PipelineRetiredIsFinal {
        /// Pipeline name.
        name: String,
        /// Pipeline version.
        version: String,
        /// State asked for.
        requested: State,
    },
    /// A pipeline version is already deployed with another digest.
    #[error(
        "pipeline {name}@{version} is already deployed with digest {existing}; versions are immutable, deploy a new version (this spec has digest {requested})"
    )]
    PipelineImmutable {
        /// Pipeline name.
        name: String,
        /// Pipeline version.
        version: String,
        /// Digest already stored.
        existing: Digest,
        /// Digest of the spec offered.
        requested: Digest,
    },
    /// An audit record id is already used.
    #[error("audit record id {0:?} already exists")]
    DuplicateId(String),
    /// A timestamp could not be parsed.
    #[error(
        "invalid time {0:?}: expected RFC 3339 (e.g. 2026-01-31T12:00:00Z) or a date (2026-01-31)"
    )]
    BadTime(String),
    /// A retention policy is malformed.
    #[error(
        "invalid retention policy {0:?}: expected all, digests-only or sample:RATE with 0 <= RATE <= 1"
    )]
    BadRetention(String),
    /// The audit committer could not make a group of records durable; none of them is acknowledged.
    #[error("audit commit failed: {0}")]
    CommitFailed(Arc<StoreError>),
    /// The audit committer thread is gone (it only stops when the store is dropped, or after a panic).
    #[error("the audit committer has stopped")]
    CommitterGone,
    /// The audit chain is broken.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The admin log's chain is broken (the first bad entry; entries have no id).
    #[error("admin log broken at seq {}: {}", .0.seq, .0.reason)]
    AdminChain(ChainError),
    /// The label chain is broken (the first bad entry; entries have no id).
    #[error("label chain broken at seq {}: {}", .0.seq, .0.reason)]
    LabelChain(ChainError),
    /// A central store refused a node's batch: nothing of it was kept.
    #[error("node {node}, record {seq}: {reason}")]
    SyncConflict {
        /// The node whose chain it is.
        node: String,
        /// The record concerned.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// No chain of this node is held here.
    #[error("no audit chain of node {0:?} is held in this store")]
    UnknownNode(String),
    /// A node's chain, as held by a central store, is broken.
    #[error("node {node}: {error}")]
    NodeChain {
        /// The node.
        node: String,
        /// The first bad record.
        error: ChainError,
    },
    /// Writing an export failed.
    #[error("writing export: {0}")]
    Export(#[source] std::io::Error),
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

/// The first bad record found by [`Store::verify`](crate::Store::verify).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError {
    /// Sequence number of the bad (or missing) record.
    pub seq: u64,
    /// Its id, when the record could be read.
    pub id: Option<String>,
    /// What is wrong.
    pub reason: ChainBreak,
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "audit chain broken at seq {}", self.seq)?;
        if let Some(id) = &self.id {
            write!(f, " (id {id})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ChainError {}

/// Why a record breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// No record with this seq, though later ones (or the head) exist.
    #[error("record is missing (deleted)")]
    Missing,
    /// The record stored under this seq says it has another one.
    #[error("the record stored here has seq {found}: records were moved or swapped")]
    Reordered {
        /// The seq written inside the record.
        found: u64,
    },
    /// The record's content does not match its hash.
    #[error("content does not match its hash (edited)")]
    Edited,
    /// The record's `prev_hash` is not the previous record's hash.
    #[error(
        "prev_hash does not match the previous record's hash (the previous record was edited and re-hashed)"
    )]
    BrokenLink,
    /// The id index does not point back at this record.
    #[error("the id index does not point to this record")]
    IndexMismatch,
    /// The record cannot be decoded at all.
    #[error("cannot decode: {0}")]
    Undecodable(String),
    /// The head (next seq and last hash) disagrees with the records.
    #[error("the chain head disagrees with the records: {0}")]
    HeadMismatch(String),
}

// Parsing the leaf values fails with a `StoreError`, which their modules
// cannot name (this one names them), so those impls live here.

impl FromStr for Digest {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        Digest::checked(s).ok_or_else(|| StoreError::BadDigest(s.to_owned()))
    }
}

impl TryFrom<String> for Digest {
    type Error = StoreError;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl FromStr for State {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        State::from_name(s).ok_or_else(|| StoreError::BadName {
            what: "state",
            value: s.to_owned(),
            reason: "expected staged, active, deprecated or retired",
        })
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}

/// Decodes a JSON value from a tree, naming the tree on failure.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    tree: &'static str,
    bytes: &[u8],
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })
}
