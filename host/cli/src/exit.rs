//! Exit codes (documented in the README) and the error that carries one:
//! usage errors, bad data, plugin failures and broken integrity exit apart.

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
