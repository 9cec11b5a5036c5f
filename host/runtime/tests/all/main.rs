//! keel-runtime's integration tests: built components through the real
//! sandbox, in one test binary (wasmtime is linked once, not once per file).
//! A new test goes in the module of the area it exercises; a test of one
//! module's internals stays a unit test in `src/`. Run one area with
//! `cargo test -p keel-runtime --test all <module>::`.
//!
//! - `common`: helpers (guest component paths, a runtime with the shared compile cache, placements)
//! - `alert_sink`: the executor hands raised alerts to the caller's sink and keeps its answers
//! - `bias`: the bias-monitor component against counts from the data and the native algorithm
//! - `conformance`: the cross-language conformance suite (tests/conformance/)
//! - `performance`: the performance-monitor component, window by window, against `keel_algos::performance::analyse`
//! - `plugins`: every first-party plugin: metadata, config schema, each kind's calls
//! - `sandbox`: the hostile guest: limits, traps, grants; the host carries on
//! - `sdk_examples`: the Python, JavaScript and C SDK examples as components

mod common;

mod alert_sink;
mod bias;
mod conformance;
mod performance;
mod plugins;
mod sandbox;
mod sdk_examples;
