//! keel-server: the `keel serve` daemon — the Open Inference Protocol v2 over
//! HTTP/JSON (with Triton's binary tensor extension), an admin API, Prometheus
//! metrics, and canary/shadow roll-outs of deployed pipeline versions.
//!
//! One module per job; a new endpoint goes beside the ones of its kind and
//! writes to the store only through keel-ops:
//! - `listen`: the accept loop (TCP or TLS, keep-alive, reload, drain);
//! - `http`: the inference surface (OIP v2 routes, errors), decoding in `oip`;
//! - `explain`: Shapley values of a request's or a stored prediction's outputs;
//! - `admin`: the admin API; `sync`: the central side of `keel sync push`;
//! - `feedback`: labels posted for served predictions (`keel_ops::feedback`);
//! - `ui`: the console, HTML pages under `/ui` (`recent`: its last hour of
//!   traffic per version; `sessions`: its browser sessions);
//! - `serving`: one loaded pipeline version (instance pool, monitors, recording
//!   through `keel_ops::record` and `keel_ops::monitor_state`);
//! - `app`: the daemon's shared state; `config`, `auth`, `metrics`;
//!   `loadgen`: the bounded load generator the tests and benchmarks use.

pub mod admin;
pub mod app;
pub mod auth;
pub mod config;
pub mod explain;
pub mod feedback;
pub mod http;
pub mod listen;
pub mod loadgen;
pub mod metrics;
pub mod oip;
pub mod recent;
pub mod serving;
pub mod sessions;
pub mod sync;
pub mod ui;

pub use app::App;
pub use config::ServerConfig;
pub use listen::{ServeError, ServeOptions, serve};

use axum::Router;
use std::sync::Arc;

/// Every route, with the 404 for anything else.
pub fn router(app: Arc<App>) -> Router {
    http::routes()
        .merge(admin::routes())
        .merge(sync::routes())
        .merge(feedback::routes())
        .merge(explain::routes())
        .merge(ui::routes())
        .fallback(|uri: axum::http::Uri| async move {
            http::ApiError::not_found(format!(
                "no endpoint {}; see /v2 (Open Inference Protocol v2) and /admin",
                uri.path()
            ))
        })
        .with_state(app)
}
