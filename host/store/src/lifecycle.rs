//! The lifecycle state shared by plugin, model and pipeline versions.
//!
//! A leaf, like the digest module: the store's error type names states, so
//! this module does not name it back. Parsing (`FromStr`) fails with
//! [`StoreError::BadName`](crate::StoreError::BadName); that impl lives in the
//! error module, on top of [`State::from_name`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// Lifecycle of a plugin version. Any state may follow any other, except that
/// [`State::Retired`] is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Added, not yet in use: usable by new pipelines, e.g. for shadow runs.
    Staged,
    /// In use.
    #[default]
    Active,
    /// Still usable; new pipelines should move off it.
    Deprecated,
    /// Cannot be used by a new pipeline version; its records stay and replay still works.
    Retired,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Staged => "staged",
            State::Active => "active",
            State::Deprecated => "deprecated",
            State::Retired => "retired",
        })
    }
}

impl State {
    /// The state spelled `s` (as [`Display`](fmt::Display) writes it), if any.
    pub(crate) fn from_name(s: &str) -> Option<State> {
        match s {
            "staged" => Some(State::Staged),
            "active" => Some(State::Active),
            "deprecated" => Some(State::Deprecated),
            "retired" => Some(State::Retired),
            _ => None,
        }
    }
}
