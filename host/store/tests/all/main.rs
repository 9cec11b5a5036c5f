//! keel-store's integration tests on real sled stores, in one test binary.
//! A new test goes in the module of the store area it exercises; a test of
//! one module's internals stays a unit test in `src/`. Run one area with
//! `cargo test -p keel-store --test all <module>::`.
//!
//! - `common`: helpers (a realistic audit record, raw access to the sled database)
//! - `admin`: the admin log chain, serving settings, pipeline versions, older stores
//! - `audit`: the audit chain: appends, queries, tamper detection, group commit, exports
//! - `process`: a second process: SIGKILL crash consistency, the cross-process lock
//! - `registry`: plugins, payloads, retention, monitor state, opening a store
//! - `sync`: the size cap, and node chains on a central store

mod common;

mod admin;
mod audit;
mod feedback;
mod process;
mod registry;
mod sync;
