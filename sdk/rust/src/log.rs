//! Logging to the host: lines end up in the host's `tracing` output, tagged
//! with plugin and stage.

use crate::bindings::transform::keel::plugin::host::{self, Level};

/// Logs at debug level.
pub fn debug(message: &str) {
    host::log(Level::Debug, message);
}
/// Logs at info level.
pub fn info(message: &str) {
    host::log(Level::Info, message);
}
/// Logs at warn level.
pub fn warn(message: &str) {
    host::log(Level::Warn, message);
}
/// Logs at error level.
pub fn error(message: &str) {
    host::log(Level::Error, message);
}
