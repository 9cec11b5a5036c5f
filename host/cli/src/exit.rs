//! Exit codes (documented in the README, one test per code in
//! tests/all/newcomer.rs) and the error that carries one: usage errors, bad
//! data, plugin failures and broken integrity exit apart. What the user named
//! wrongly — an argument, a spec, a plugin that does not exist or is no
//! plugin, a format this build cannot read or write — is a usage error,
//! whichever command meets it.

use keel_data::io::ReadError;
use keel_runtime::RuntimeError;

pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const BAD_DATA: u8 = 3;
pub const PLUGIN: u8 = 4;
pub const INTEGRITY: u8 = 5;
pub const DRIFT: u8 = 6;

/// An error with the exit code it maps to.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            code: FAILURE,
            error: e.into(),
        }
    }
}

pub fn fail(code: u8, error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code,
        error: error.into(),
    }
}

/// A data file that could not be read: a format this keel does not know or
/// was built without is a usage error; a file that is missing, unreadable
/// or wrong inside is bad data.
pub fn read_failure(e: ReadError) -> Failure {
    fail(read_code(&e), e)
}

fn read_code(e: &ReadError) -> u8 {
    match e {
        ReadError::UnknownFormat { .. } | ReadError::Unsupported { .. } => USAGE,
        _ => BAD_DATA,
    }
}

/// Bad data passed up as `anyhow`: exit 3, or 2 when a [`ReadError`] in its
/// chain says the format is one this keel cannot read ([`read_failure`]).
pub fn data_failure(e: anyhow::Error) -> Failure {
    let code = e
        .chain()
        .find_map(|c| c.downcast_ref::<ReadError>())
        .map_or(BAD_DATA, read_code);
    fail(code, e)
}

/// A plugin file that could not be loaded: one that is missing, is not a
/// component, or needs what this host does not grant is a usage error; one
/// that failed while describing itself is a plugin failure.
pub fn plugin_failure(e: RuntimeError) -> Failure {
    fail(plugin_code(&e), e)
}

/// The exit code of a plugin that could not be loaded or started.
pub fn plugin_code(e: &RuntimeError) -> u8 {
    match e {
        RuntimeError::Metadata { .. } | RuntimeError::Call(_) | RuntimeError::Sandbox { .. } => {
            PLUGIN
        }
        RuntimeError::Engine(_) | RuntimeError::Cache { .. } => FAILURE,
        _ => USAGE,
    }
}

/// [`plugin_failure`] for an error passed up as `anyhow`: a [`Usage`] error,
/// else the code of the [`RuntimeError`] in its chain, else a plugin failure.
pub fn plugin_error(e: anyhow::Error) -> Failure {
    let code = if is_usage(&e) {
        USAGE
    } else {
        e.chain()
            .find_map(|c| c.downcast_ref::<RuntimeError>())
            .map_or(PLUGIN, plugin_code)
    };
    fail(code, e)
}

/// Marks an error deep in a command as the user's to fix (exit 2) where the
/// command's code passes `anyhow` errors up; see [`is_usage`].
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `e` as a [`Usage`] error, its context kept in the message.
pub fn usage(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Usage(format!("{e:#}")))
}

/// Whether `e` is, or was caused by, a [`Usage`] error.
pub fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Usage>())
}
