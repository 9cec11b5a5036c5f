//! The overview: every pipeline and version with its lifecycle state, its
//! part of the traffic (stable, canary share, shadow), the last hour from the
//! daemon's own counters (requests, rate, p50 / p99 latency, error share) and
//! the alerts open now. Refreshes itself every 30 s (a meta tag, no script).
//!
//! A version's row is a [`Row`]; a panel that lands later (label coverage
//! from the performance monitor) is one more field and one more column.

use crate::app::{App, Traffic};
use crate::recent::LastHour;
use crate::ui::page::{self, UiError, digest, duration, encode, percent};
use crate::ui::session::viewer;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use keel_store::State as Lifecycle;
use maud::{Markup, html};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One version as the overview shows it.
pub struct Row {
    pub version: String,
    pub digest: String,
    pub state: Lifecycle,
    pub loaded: bool,
    /// `stable`, `canary 10 %`, `shadow`, or empty.
    pub role: Vec<(String, &'static str)>,
    pub hour: LastHour,
    /// `monitor: alert key` open now.
    pub open_alerts: Vec<String>,
}

/// The roles a version plays in `t` (stable is the one unpinned requests
/// reach when no canary takes them).
pub fn roles(t: &Traffic, serving: Option<&str>, version: &str) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    if serving == Some(version) {
        out.push(("stable".to_string(), "stable"));
    }
    if let Some(c) = t.canary.as_ref().filter(|c| c.version == version) {
        out.push((format!("canary {}", percent(c.share)), "canary"));
    }
    if t.shadow.as_deref() == Some(version) {
        out.push(("shadow".to_string(), "shadow"));
    }
    out
}

/// Open alerts per `(pipeline, version)`: each loaded version's monitors'
/// active alert keys.
pub async fn open_alerts(app: &Arc<App>) -> BTreeMap<(String, String), Vec<String>> {
    let snap = app.snapshot();
    let versions: Vec<_> = snap
        .models
        .values()
        .flat_map(|m| m.versions.values().cloned())
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut out = BTreeMap::new();
        for v in versions {
            let mut keys = Vec::new();
            for m in v.monitor_status() {
                let monitor = m["monitor"].as_str().unwrap_or_default();
                for k in m["active_alerts"].as_array().into_iter().flatten() {
                    keys.push(format!("{monitor}: {}", k.as_str().unwrap_or_default()));
                }
            }
            out.insert((v.name.clone(), v.version.clone()), keys);
        }
        out
    })
    .await
    .unwrap_or_default()
}

/// `GET /ui`.
pub async fn page(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, UiError> {
    let viewer = viewer(&app, &headers)?;
    let snap = app.snapshot();
    let alerts = open_alerts(&app).await;
    let mut pipelines: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for r in app.store.list_pipelines().map_err(UiError::store)? {
        let model = snap.models.get(&r.name);
        let traffic = match model {
            Some(m) => m.traffic.clone(),
            None => app.traffic(&r.name).map_err(UiError::internal)?,
        };
        let serving = model.and_then(|m| m.stable().map(|v| v.version.clone()));
        let loaded = model.is_some_and(|m| m.versions.contains_key(&r.version));
        pipelines.entry(r.name.clone()).or_default().push(Row {
            role: roles(&traffic, serving.as_deref(), &r.version),
            hour: app.metrics.recent.last_hour(&r.name, &r.version),
            open_alerts: alerts
                .get(&(r.name.clone(), r.version.clone()))
                .cloned()
                .unwrap_or_default(),
            digest: r.digest.to_string(),
            state: r.state,
            loaded,
            version: r.version,
        });
    }
    let open: usize = alerts.values().map(Vec::len).sum();
    let body = html! {
        h1 { "Overview" }
        p.muted { (pipelines.len()) " pipelines · " (open) " open alerts · last hour from this daemon's counters (since it started, if later) · refreshes every 30 s" }
        @for f in &snap.failures { p.error { "not loaded: " (f.to_string()) } }
        @for (name, rows) in &pipelines { (pipeline(name, rows)) }
        @if pipelines.is_empty() { p { "No pipeline is deployed. " code { "keel pipeline deploy pipeline.toml" } " adds one." } }
    };
    Ok(page::shell("Overview", &viewer, Some(30), body))
}

fn pipeline(name: &str, rows: &[Row]) -> Markup {
    html! {
        section.pipeline data-pipeline=(name) {
            h2 { (name) }
            table {
                tr {
                    th { "version" } th { "state" } th { "traffic" } th.num { "requests (1 h)" } th.num { "req/s" }
                    th.num { "p50" } th.num { "p99" } th.num { "errors" } th { "open alerts" } th { "digest" }
                }
                @for r in rows {
                    tr.version data-version=(r.version) {
                        td { a href={ "/ui/pipelines/" (encode(name)) "/" (encode(&r.version)) } { (r.version) } }
                        td {
                            span.badge.retired[r.state == Lifecycle::Retired] { (r.state.to_string()) }
                            @if !r.loaded && r.state != Lifecycle::Retired { " " span.error { "not loaded" } }
                        }
                        td.traffic { @for (text, class) in &r.role { span class={ "badge " (class) } { (text) } " " } }
                        td.num.requests { (r.hour.requests) }
                        td.num { (format!("{:.2}", r.hour.rate)) }
                        td.num.p50 { (duration(r.hour.p50)) }
                        td.num.p99 { (duration(r.hour.p99)) }
                        td.num.errors { (percent(r.hour.error_share())) }
                        td.alerts {
                            @for a in &r.open_alerts { span.badge.alert { (a) } " " }
                            @if r.open_alerts.is_empty() { span.muted { "none" } }
                        }
                        td { (digest(&r.digest)) }
                    }
                }
            }
        }
    }
}
