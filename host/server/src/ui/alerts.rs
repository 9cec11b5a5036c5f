//! Alerts: those raised since the daemon started, newest first, with each
//! sink's delivery outcome and whether the alert is still open, filterable
//! by pipeline, monitor and state and paged; then the alerting windows kept
//! in the store's monitor history (which outlive a restart, without the
//! deliveries).

use crate::app::App;
use crate::ui::overview::open_alerts;
use crate::ui::page::{self, UiError, encode, link};
use crate::ui::session::viewer;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// Alerts per page.
pub const PAGE: usize = 50;
/// Windows of each monitor's history searched for alerts.
const HISTORY: usize = 200;

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    pipeline: String,
    #[serde(default)]
    monitor: String,
    /// `open`, `cleared` or empty (both).
    #[serde(default)]
    state: String,
    #[serde(default)]
    page: usize,
}

impl Filter {
    fn matches(&self, pipeline: &str, monitor: &str) -> bool {
        (self.pipeline.is_empty() || self.pipeline == pipeline)
            && (self.monitor.is_empty() || self.monitor == monitor)
    }
}

/// `GET /ui/alerts?pipeline=&monitor=&state=&page=`.
pub async fn page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(f): Query<Filter>,
) -> Result<Response, UiError> {
    let viewer = viewer(&app, &headers)?;
    let open = open_alerts(&app).await;
    let recent: Vec<Value> = app
        .metrics
        .recent_alerts
        .lock()
        .map(|r| r.iter().rev().cloned().collect())
        .unwrap_or_default();
    let mut rows: Vec<(Value, bool)> = Vec::new();
    for a in recent {
        let (p, v, m) = (
            str_of(&a["pipeline"]),
            str_of(&a["version"]),
            str_of(&a["monitor"]),
        );
        if !f.matches(p, m) {
            continue;
        }
        let active = open
            .get(&(p.to_string(), v.to_string()))
            .is_some_and(|keys| {
                a["raised"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| keys.contains(&format!("{m}: {}", str_of(&r["key"]))))
            });
        let keep = match f.state.as_str() {
            "open" => active,
            "cleared" => !active,
            _ => true,
        };
        if keep {
            rows.push((a, active));
        }
    }
    let total = rows.len();
    let shown: Vec<&(Value, bool)> = rows.iter().skip(f.page * PAGE).take(PAGE).collect();
    let history = alerting_windows(&app, &f)?;
    let body = html! {
        h1 { "Alerts" }
        (filters(&f))
        h2 { "Raised since the daemon started" }
        p.muted { (total) " alerts match · page " (f.page + 1) " of " (total.div_ceil(PAGE).max(1)) }
        table.alerts {
            tr { th { "time" } th { "pipeline" } th { "monitor" } th { "state" } th { "raised" } th { "summary" } th { "deliveries" } }
            @for (a, active) in &shown { (alert_row(a, *active)) }
        }
        @if shown.is_empty() { p.muted { "None." } }
        p {
            @if f.page > 0 { a href=(page_link(&f, f.page - 1)) { "← newer" } " " }
            @if (f.page + 1) * PAGE < total { a href=(page_link(&f, f.page + 1)) { "older →" } }
        }
        h2 { "Alerting windows in the monitor history" }
        p.muted { "The last " (HISTORY) " windows of each monitor, from the store (kept across restarts)." }
        table.history {
            tr { th { "closed" } th { "pipeline" } th { "monitor" } th { "window" } th { "summary" } }
            @for (p, m, w) in &history {
                tr {
                    td { (w.time) } td { (p) } td { (m) }
                    td { (w.report["window"]["index"].as_u64().map_or(String::new(), |i| i.to_string())) }
                    td { (str_of(&w.report["report"]["summary"])) }
                }
            }
        }
    };
    Ok(page::shell("Alerts", &viewer, None, body))
}

fn page_link(f: &Filter, page: usize) -> String {
    link(
        "/ui/alerts",
        &[
            ("pipeline", &f.pipeline),
            ("monitor", &f.monitor),
            ("state", &f.state),
            ("page", &page.to_string()),
        ],
    )
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn filters(f: &Filter) -> Markup {
    html! {
        form.filters method="get" action="/ui/alerts" {
            label { "pipeline" input name="pipeline" value=(f.pipeline); }
            label { "monitor" input name="monitor" value=(f.monitor); }
            label { "state"
                select name="state" {
                    option value="" selected[f.state.is_empty()] { "any" }
                    option value="open" selected[f.state == "open"] { "open" }
                    option value="cleared" selected[f.state == "cleared"] { "cleared" }
                }
            }
            button type="submit" { "Filter" }
        }
    }
}

fn alert_row(a: &Value, active: bool) -> Markup {
    let (p, v, m) = (
        str_of(&a["pipeline"]),
        str_of(&a["version"]),
        str_of(&a["monitor"]),
    );
    html! {
        tr.alert data-pipeline=(p) data-monitor=(m) {
            td { (str_of(&a["time"])) }
            td { a href={ "/ui/pipelines/" (encode(p)) "/" (encode(v)) } { (p) "@" (v) } }
            td { (m) }
            td { @if active { span.badge.alert { "open" } } @else { span.badge { "cleared" } } }
            td { @for r in a["raised"].as_array().into_iter().flatten() { code { (str_of(&r["key"])) } " " } }
            td { (str_of(&a["summary"])) }
            td.deliveries {
                @for d in a["deliveries"].as_array().into_iter().flatten() {
                    div {
                        @if d["ok"] == true { span.ok { "✓" } } @else { span.error { "✗" } }
                        " " (str_of(&d["sink"])) " " code { (str_of(&d["target"])) } " " span.muted { (str_of(&d["detail"])) }
                    }
                }
                @if a["deliveries"].as_array().is_none_or(Vec::is_empty) { span.muted { "no sink configured" } }
            }
        }
    }
}

/// `(pipeline, monitor, window)` of the alerting windows among each
/// deployed monitor's last [`HISTORY`], newest first.
fn alerting_windows(
    app: &App,
    f: &Filter,
) -> Result<Vec<(String, String, keel_store::MonitorReport)>, UiError> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in app.store.list_pipelines().map_err(UiError::store)? {
        let Ok(spec) = keel_runtime::spec::PipelineSpec::parse(
            &r.spec_toml,
            std::path::Path::new("pipeline.toml"),
        ) else {
            continue;
        };
        for m in spec.monitors {
            if !f.matches(&r.name, &m.name) || !seen.insert((r.name.clone(), m.name.clone())) {
                continue;
            }
            for w in app
                .store
                .monitor_reports(&r.name, &m.name, Some(HISTORY))
                .map_err(UiError::store)?
            {
                if w.report["report"]["alert"] == true {
                    out.push((r.name.clone(), m.name.clone(), w));
                }
            }
        }
    }
    out.sort_by_key(|w| std::cmp::Reverse(w.2.seq));
    Ok(out)
}
