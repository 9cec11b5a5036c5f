//! The `keel` binary's integration tests: one test binary (linking the
//! wasmtime-heavy dependencies once, not once per file), one module per area.
//! A new test goes in the module of the command or area it exercises; a new
//! area gets a module here. Run one area with `cargo test -p keel --test all
//! <module>::`, e.g. `serve::`.
//!
//! - `common`: helpers (the `keel` binary with a store of its own, guest and example paths; `daemon`: a `keel serve` process; `chromium`: headless Chromium for HTML reports)
//! - `cli`: `keel run` end to end on the example, bad input, bad specs, failing plugins, exit codes
//! - `console`: `keel serve`'s `/ui` pages in headless Chromium, login, logout, CSRF, roles, an admin action from a form
//! - `edge`: `keel compile`, precompiled bundles, Pulley, bundles for another target
//! - `feedback_loop`: the outcome loop: served, labelled, alert, retraining job, candidate replayed on labelled rows
//! - `feedback`: `keel feedback import` and the daemon's feedback endpoint: labels joined to stored predictions
//! - `explain`: `keel explain` on penguins: additivity, JSON keys, kernel vs exact, HTML in Chromium, a recorded prediction
//! - `fuzz_regressions`: the fuzz harnesses over every committed seed and regression (fuzz/)
//! - `hostile`: misbehaving plugins through `keel run`: errors, exit 4, audit outcomes
//! - `monitors`: `keel drift`, monitor windows, alert webhooks and commands, monitor state
//! - `newcomer`: what a new user meets: closed pipes, failed runs and monitor state, exit codes, config typos, error and output wording
//! - `new_build`: `keel new` and `keel build` for every language and kind
//! - `performance`: `keel performance`: labels joined by id, realized metrics counted by hand, tasks, errors
//! - `performance_monitor`: the performance-monitor in a pipeline: estimates in windows, history, alerts
//! - `onnx`: ONNX models through wasi:nn, against onnxruntime, `keel model`
//! - `profile`: `keel profile` and its schema as the data-quality config
//! - `serve`: `keel serve` over HTTP: OIP v2, Triton's client, auth, limits, canary, metrics
//! - `supply_chain`: plugin signatures and the trust policy
//! - `sync`: `keel sync push` to a central daemon through a faulty proxy

mod common;

mod cli;
mod console;
mod edge;
mod explain;
mod feedback;
mod feedback_loop;
mod fuzz_regressions;
mod hostile;
mod monitors;
mod new_build;
mod newcomer;
mod onnx;
mod performance;
mod performance_monitor;
mod profile;
mod serve;
mod supply_chain;
mod sync;
