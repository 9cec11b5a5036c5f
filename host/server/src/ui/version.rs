//! A pipeline version: its stages, validators and monitors with the plugin
//! each runs (name, version, digest), its part of the traffic, and each
//! monitor's history as charts over its closed windows — a statistic per
//! column with the threshold it is judged against — read from the store's
//! monitor history (never from the audit records), then the latest window's
//! figures. Any monitor's history charts the same way (drift, bias, and the
//! performance monitor's when it lands: every metric with a threshold).

use crate::app::App;
use crate::ui::overview::{open_alerts, roles};
use crate::ui::page::{self, UiError, digest};
use crate::ui::session::viewer;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use keel_report::{WindowSeries, window_chart_svg};
use keel_store::{MonitorReport, PipelineRecord, PluginTag};
use maud::{Markup, PreEscaped, html};
use serde_json::Value;
use std::sync::Arc;

/// Windows charted per monitor (the newest).
pub const HISTORY: usize = 48;
/// Charts per monitor at most (one per column and statistic).
const MAX_CHARTS: usize = 24;

/// One stage, validator or monitor as the page lists it.
struct Component {
    kind: &'static str,
    name: String,
    /// `name@version` as the plugin describes itself (loaded versions), or
    /// as the deployed spec names it.
    plugin: String,
    digest: Option<String>,
    config_digest: Option<String>,
    /// `name@version (state)` of every registry tag on that digest.
    tags: Vec<String>,
}

fn tagged(tags: &[PluginTag], digest: Option<&str>) -> Vec<String> {
    tags.iter()
        .filter(|t| Some(t.digest.as_str()) == digest)
        .map(|t| format!("{}@{} ({})", t.name, t.version, t.state))
        .collect()
}

/// A loaded version's plugins as its pipeline describes them; a version not
/// loaded (retired, or failed to load) from its deployed spec and digests.
fn components(
    loaded: Option<&crate::serving::Version>,
    record: &PipelineRecord,
    spec: &keel_runtime::spec::PipelineSpec,
    tags: &[PluginTag],
) -> Vec<Component> {
    if let Some(v) = loaded {
        return v
            .pipeline
            .plugins()
            .into_iter()
            .map(|p| Component {
                kind: p.role,
                tags: tagged(tags, Some(&p.digest)),
                name: p.name,
                plugin: format!("{}@{}", p.plugin, p.version),
                digest: Some(p.digest),
                config_digest: Some(p.config_digest),
            })
            .collect();
    }
    let listed = spec
        .stages
        .iter()
        .map(|s| ("stage", &s.name, &s.plugin))
        .chain(
            spec.validators
                .iter()
                .map(|v| ("validator", &v.name, &v.plugin)),
        )
        .chain(
            spec.monitors
                .iter()
                .map(|m| ("monitor", &m.name, &m.plugin)),
        );
    listed
        .map(|(kind, name, plugin)| {
            let digest = record
                .plugins
                .iter()
                .find(|p| {
                    p.role == *name
                        || p.role
                            .strip_suffix(name.as_str())
                            .is_some_and(|r| r.ends_with(':'))
                })
                .map(|p| p.digest.to_string())
                .or_else(|| plugin.starts_with("sha256:").then(|| plugin.clone()));
            Component {
                kind,
                name: name.clone(),
                plugin: plugin.clone(),
                tags: tagged(tags, digest.as_deref()),
                digest,
                config_digest: None,
            }
        })
        .collect()
}

/// The series of one monitor's windows (oldest first): one per column and
/// statistic that has a threshold; a test statistic is charted by its
/// p-value, since that is what its threshold judges.
pub fn series(windows: &[MonitorReport]) -> Vec<WindowSeries> {
    let labels: Vec<String> = windows
        .iter()
        .map(|w| {
            let index = w.report["window"]["index"]
                .as_u64()
                .map_or(String::new(), |i| format!("window {i} · "));
            format!("{index}{}", w.time)
        })
        .collect();
    let mut keys: Vec<(Option<String>, String)> = Vec::new();
    for w in windows {
        for m in metrics(w) {
            let key = (
                m["column"].as_str().map(str::to_string),
                m["name"].as_str().unwrap_or_default().to_string(),
            );
            if m["threshold"].is_number() && !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys.truncate(MAX_CHARTS);
    keys.into_iter()
        .map(|(column, name)| {
            let found: Vec<Option<&Value>> = windows
                .iter()
                .map(|w| {
                    metrics(w).iter().find(|m| {
                        m["column"].as_str() == column.as_deref()
                            && m["name"].as_str() == Some(name.as_str())
                    })
                })
                .collect();
            let by_p = found.iter().flatten().any(|m| m["p_value"].is_number());
            let field = if by_p { "p_value" } else { "value" };
            WindowSeries {
                metric: if by_p {
                    format!("p-value ({name})")
                } else {
                    name.clone()
                },
                column: column.clone(),
                windows: labels.clone(),
                values: found
                    .iter()
                    .map(|m| m.and_then(|m| m[field].as_f64()))
                    .collect(),
                alerts: found
                    .iter()
                    .map(|m| m.is_some_and(|m| m["alert"] == true))
                    .collect(),
                threshold: found
                    .iter()
                    .rev()
                    .flatten()
                    .find_map(|m| m["threshold"].as_f64()),
            }
        })
        .collect()
}

fn metrics(w: &MonitorReport) -> &[Value] {
    w.report["report"]["metrics"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

/// `GET /ui/pipelines/{name}/{version}`.
pub async fn page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let viewer = viewer(&app, &headers)?;
    let record = app
        .store
        .get_pipeline(&name, Some(&version))
        .map_err(|e| UiError::bad_request(e.to_string()))?
        .ok_or_else(|| {
            UiError::not_found(format!("no pipeline version {name}@{version} is deployed"))
        })?;
    let spec = keel_runtime::spec::PipelineSpec::parse(
        &record.spec_toml,
        std::path::Path::new("pipeline.toml"),
    )
    .map_err(|e| {
        UiError::internal(format!(
            "the deployed spec of {name}@{version} does not parse: {e}"
        ))
    })?;
    let tags = app.store.list_plugins().map_err(UiError::store)?;
    let snap = app.snapshot();
    let model = snap.models.get(&name);
    let traffic = match model {
        Some(m) => m.traffic.clone(),
        None => app.traffic(&name).map_err(UiError::internal)?,
    };
    let serving = model.and_then(|m| m.stable().map(|v| v.version.clone()));
    let loaded = model.and_then(|m| m.versions.get(&version).cloned());
    let open = open_alerts(&app)
        .await
        .remove(&(name.clone(), version.clone()))
        .unwrap_or_default();
    let mut monitors = Vec::new();
    for m in &spec.monitors {
        let mut windows = app
            .store
            .monitor_reports(&name, &m.name, Some(HISTORY))
            .map_err(UiError::store)?;
        windows.reverse();
        monitors.push((m.name.clone(), m.plugin.clone(), windows));
    }
    let body = html! {
        h1 { (name) "@" (version) }
        p {
            span.badge { (record.state.to_string()) } " "
            @for (text, class) in roles(&traffic, serving.as_deref(), &version) { span class={ "badge " (class) } { (text) } " " }
            " deployed " (record.added_at) " · digest " (digest(record.digest.as_str()))
        }
        @if !spec.description.is_empty() { p.muted { (spec.description) } }
        @if !open.is_empty() { p { "Open alerts: " @for a in &open { span.badge.alert { (a) } " " } } }
        h2 { "Stages, validators and monitors" }
        table.components {
            tr { th { "kind" } th { "name" } th { "plugin" } th { "digest" } th { "config digest" } th { "registry tags" } }
            @for c in components(loaded.as_deref(), &record, &spec, &tags) {
                tr data-kind=(c.kind) data-name=(c.name) {
                    td { (c.kind) } td { (c.name) } td { code { (c.plugin) } }
                    td { @if let Some(d) = &c.digest { (digest(d)) } }
                    td { @if let Some(d) = &c.config_digest { (digest(d)) } }
                    td { (c.tags.join(", ")) }
                }
            }
        }
        @for (monitor, plugin, windows) in &monitors { (monitor_section(monitor, plugin, windows)) }
    };
    Ok(page::shell(
        &format!("{name}@{version}"),
        &viewer,
        None,
        body,
    ))
}

fn monitor_section(monitor: &str, plugin: &str, windows: &[MonitorReport]) -> Markup {
    let charts = series(windows);
    let latest = windows.last();
    html! {
        section.monitor data-monitor=(monitor) {
            h2 { "Monitor " (monitor) " " span.muted { "(" (plugin) ")" } }
            @if windows.is_empty() {
                p.muted { "No window closed yet." }
            } @else {
                p.muted { "The last " (windows.len()) " closed windows of this pipeline's monitor, oldest left (from the monitor history in the store). Dashed: the threshold; rings: windows that alerted." }
                div.grid {
                    @for s in &charts {
                        figure {
                            figcaption { strong { (s.column.as_deref().unwrap_or("all columns")) } " · " (s.metric) }
                            (PreEscaped(window_chart_svg(s)))
                        }
                    }
                }
            }
            @if let Some(w) = latest { (latest_window(w)) }
        }
    }
}

fn latest_window(w: &MonitorReport) -> Markup {
    let r = &w.report["report"];
    html! {
        h3 { "Latest window" }
        p {
            @if r["alert"] == true { span.badge.alert { "alert" } " " } @else { span.badge { "no alert" } " " }
            (r["summary"].as_str().unwrap_or_default()) " "
            span.muted { "(" (r["rows"].as_u64().unwrap_or(0)) " rows, closed " (w.time) ")" }
        }
        table.latest {
            tr { th { "column" } th { "metric" } th.num { "value" } th.num { "p-value" } th.num { "threshold" } th { "alert" } }
            @for m in metrics(w) {
                tr {
                    td { (m["column"].as_str().unwrap_or("—")) }
                    td { (m["name"].as_str().unwrap_or_default()) }
                    td.num { (num(&m["value"])) }
                    td.num { (num(&m["p_value"])) }
                    td.num { (num(&m["threshold"])) }
                    td { @if m["alert"] == true { span.badge.alert { "alert" } } }
                }
            }
        }
        p.muted { "Histograms: this monitor's window reports carry statistics, not histograms; " code { "keel drift --format html" } " draws them for two files." }
    }
}

fn num(v: &Value) -> String {
    v.as_f64().map_or_else(|| "—".into(), |x| format!("{x:.4}"))
}
