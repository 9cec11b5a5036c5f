//! The lifecycle state shared by plugin, model and pipeline versions.
//!
//! A leaf, like the digest module: the store's error type names states, so a
//! spelling that is not one is a [`BadState`], which converts into
//! [`StoreError::BadName`](crate::StoreError::BadName).

use std::{fmt, str::FromStr};

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

impl FromStr for State {
    type Err = BadState;

    fn from_str(s: &str) -> Result<Self, BadState> {
        match s {
            "staged" => Ok(State::Staged),
            "active" => Ok(State::Active),
            "deprecated" => Ok(State::Deprecated),
            "retired" => Ok(State::Retired),
            _ => Err(BadState(s.to_owned())),
        }
    }
}

/// A string that is not a lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid state {0:?}: {reason}", reason = BadState::EXPECTED)]
pub struct BadState(pub(crate) String);

impl BadState {
    /// What a state may be spelled as.
    pub(crate) const EXPECTED: &'static str = "expected staged, active, deprecated or retired";

    /// The string that was refused.
    pub fn value(&self) -> &str {
        &self.0
    }
}
