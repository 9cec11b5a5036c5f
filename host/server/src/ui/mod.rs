//! The console: server-rendered pages under `/ui` for people who do not read
//! JSON — the overview (versions, traffic, the last hour, open alerts), a
//! pipeline version (stages, monitors, their history as charts), alerts, the
//! audit log and a record's lineage, and the registry with its actions.
//!
//! Templates are [`maud`]: HTML written as Rust macros, so a template is
//! type-checked and compiled with the crate (a typo in a field or a missing
//! closing tag is a build error, not a broken page), every interpolated value
//! is escaped unless marked otherwise, and there are no template files to
//! ship or find at run time. askama checks at compile time too, but keeps
//! templates in separate files with their own syntax; maud keeps each page
//! next to the Rust that gathers its data, which is what this module is.
//!
//! Pages work offline and without JavaScript: inline CSS, charts as inline
//! SVG drawn by keel-report (the same code as the CLI's reports), no script
//! at all (the overview refreshes itself with `<meta http-equiv=refresh>`),
//! and a Content-Security-Policy that forbids loading anything from
//! anywhere. Data comes from the store and the daemon's own memory: the audit
//! log is read a page at a time, charts read the monitor history (never the
//! audit records).
//!
//! - `session`: login, logout, the session cookie, CSRF tokens, roles;
//! - `page`: the shell every page shares and small formatting helpers;
//! - `overview`, `version`, `alerts`, `audit`, `registry`: one page each
//!   (the registry also takes the admin actions).

mod alerts;
mod audit;
mod overview;
mod page;
mod registry;
pub mod session;
mod version;

use crate::app::App;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

/// The console's routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/ui", get(overview::page))
        .route("/ui/", get(overview::page))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/pipelines/{name}/{version}", get(version::page))
        .route("/ui/alerts", get(alerts::page))
        .route("/ui/audit", get(audit::list))
        .route("/ui/audit/{id}", get(audit::record))
        .route("/ui/registry", get(registry::page))
        .route("/ui/registry/confirm", get(registry::confirm))
        .route("/ui/registry/{action}", post(registry::act))
}
