//! Keel runtime.
