//! The audit log a page at a time: newest first from a seq cursor (never the
//! whole log), narrowed by pipeline, outcome and time range, or straight to a
//! record by id; and a record's page with its lineage (input → each plugin
//! with digest and config digest → output), findings and monitor verdicts.
//!
//! Records are in seq order and written with the time they were made, so a
//! time range is found by seq: the end of the range by binary search (about
//! twenty reads in a million records), the start by stopping there. A filter
//! that matches rarely reads at most [`SCAN`] records per page and offers to
//! carry on from where it stopped.

use crate::admin::lineage;
use crate::app::App;
use crate::ui::page::{self, UiError, digest, encode, link};
use crate::ui::session::viewer;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use keel_store::{AuditRecord, Outcome, StageRole, parse_rfc3339};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::SystemTime;

/// Records per page.
pub const PAGE: usize = 50;
/// Records read per page at most when a filter skips most of them.
pub const SCAN: usize = 5_000;

#[derive(Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    id: String,
    #[serde(default)]
    pipeline: String,
    #[serde(default)]
    outcome: String,
    /// RFC 3339.
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    /// Seq cursor: records below it.
    #[serde(default)]
    before: Option<u64>,
}

fn time_of(field: &str, text: &str) -> Result<Option<SystemTime>, UiError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse_rfc3339(text.trim())
        .map(Some)
        .map_err(|e| UiError::bad_request(format!("{field}: {e}")))
}

/// The first seq whose record is later than `until` (records are in time
/// order by seq); records pruned from the front read as earlier.
fn first_after(app: &App, until: SystemTime) -> Result<u64, UiError> {
    let (mut lo, mut hi) = (0u64, app.store.audit_len().map_err(UiError::store)?);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let later = match app.store.audit_by_seq(mid).map_err(UiError::store)? {
            Some(r) => parse_rfc3339(&r.time).map_err(UiError::store)? > until,
            None => false,
        };
        if later {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(lo)
}

/// A page of matching records and the cursor for the next one.
pub struct Found {
    pub records: Vec<AuditRecord>,
    pub next: Option<u64>,
    pub scanned: usize,
}

/// Reads one page for `s`.
pub fn search(app: &App, s: &Search) -> Result<Found, UiError> {
    let since = time_of("since", &s.since)?;
    let until = time_of("until", &s.until)?;
    let outcome: Option<Outcome> = match s.outcome.as_str() {
        "" => None,
        o => Some(
            o.parse()
                .map_err(|e| UiError::bad_request(format!("outcome: {e}")))?,
        ),
    };
    let mut before = s.before;
    if let Some(u) = until {
        let end = first_after(app, u)?;
        before = Some(before.map_or(end, |b| b.min(end)));
    }
    let mut found = Found {
        records: Vec::new(),
        next: None,
        scanned: 0,
    };
    for rec in app.store.audit_before(before).rev() {
        let rec = rec.map_err(UiError::store)?;
        if let Some(since) = since
            && parse_rfc3339(&rec.time).map_err(UiError::store)? < since
        {
            return Ok(found);
        }
        found.scanned += 1;
        let matches = (s.pipeline.is_empty() || rec.pipeline.name == s.pipeline)
            && outcome.is_none_or(|o| o == rec.outcome);
        let seq = rec.seq;
        if matches {
            found.records.push(rec);
        }
        if found.records.len() == PAGE || found.scanned == SCAN {
            found.next = (seq > 0).then_some(seq);
            break;
        }
    }
    Ok(found)
}

/// `GET /ui/audit`.
pub async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(s): Query<Search>,
) -> Result<Response, UiError> {
    let viewer = viewer(&app, &headers)?;
    if !s.id.trim().is_empty() {
        return Ok(Redirect::to(&format!("/ui/audit/{}", encode(s.id.trim()))).into_response());
    }
    let app2 = app.clone();
    let (found, s) = tokio::task::spawn_blocking(move || search(&app2, &s).map(|f| (f, s)))
        .await
        .map_err(|e| UiError::internal(e.to_string()))??;
    let total = app.store.audit_len().map_err(UiError::store)?;
    let next = found.next.map(|b| {
        link(
            "/ui/audit",
            &[
                ("pipeline", &s.pipeline),
                ("outcome", &s.outcome),
                ("since", &s.since),
                ("until", &s.until),
                ("before", &b.to_string()),
            ],
        )
    });
    let body = html! {
        h1 { "Audit log" }
        (search_form(&s))
        p.muted {
            (keel_report::count(total)) " records in the log · this page: " (found.records.len())
            " matching of " (found.scanned) " read"
            @if let Some(b) = s.before { " below seq " (b) }
        }
        table.audit {
            tr { th.num { "seq" } th { "time" } th { "id" } th { "pipeline" } th { "outcome" } th.num { "rows in → out" } th.num { "findings" } th { "route" } }
            @for r in &found.records {
                tr.record data-seq=(r.seq) {
                    td.num { (r.seq) } td { (r.time) }
                    td { a href={ "/ui/audit/" (encode(&r.id)) } { (r.id) } }
                    td { (r.pipeline.name) "@" (r.pipeline.version) }
                    td { (outcome_badge(r.outcome)) }
                    td.num { (r.rows_in) " → " (r.rows_out) }
                    td.num { (r.findings.len()) }
                    td { (r.serving.as_ref().and_then(|v| v["route"].as_str()).unwrap_or("")) }
                }
            }
        }
        @if let Some(n) = next { p { a.next href=(n) { "older →" } } }
    };
    Ok(page::shell("Audit", &viewer, None, body))
}

fn outcome_badge(o: Outcome) -> Markup {
    let class = if o == Outcome::Ok {
        "badge"
    } else {
        "badge alert"
    };
    html! { span class=(class) { (o.to_string()) } }
}

fn search_form(s: &Search) -> Markup {
    html! {
        form.filters method="get" action="/ui/audit" {
            label { "id" input name="id" value=(s.id); }
            label { "pipeline" input name="pipeline" value=(s.pipeline); }
            label { "outcome"
                select name="outcome" {
                    @for o in ["", "ok", "error", "trap", "timeout", "rejected"] {
                        option value=(o) selected[s.outcome == o] { @if o.is_empty() { "any" } @else { (o) } }
                    }
                }
            }
            label { "since (RFC 3339)" input name="since" value=(s.since) placeholder="2026-01-01T00:00:00Z"; }
            label { "until" input name="until" value=(s.until); }
            button type="submit" { "Search" }
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// `GET /ui/audit/{id}`.
pub async fn record(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let viewer = viewer(&app, &headers)?;
    let r = app
        .store
        .audit_get(&id)
        .map_err(UiError::store)?
        .ok_or_else(|| UiError::not_found(format!("no audit record `{id}`")))?;
    let lineage = lineage(&app, &r)?;
    let body = html! {
        h1 { "Record " (r.id) }
        p {
            (outcome_badge(r.outcome)) " seq " (r.seq) " · " (r.time) " · "
            a href={ "/ui/pipelines/" (encode(&r.pipeline.name)) "/" (encode(&r.pipeline.version)) } { (r.pipeline.name) "@" (r.pipeline.version) }
            " " (digest(r.pipeline.digest.as_str()))
            @if lineage["pipeline_deployed"] != true { " " span.muted { "(no longer the deployed version)" } }
        }
        @if let Some(e) = &r.error { p.error { (e) } }
        h2 { "Lineage" }
        (flow(&r, &lineage))
        (stages_table(&r, &lineage))
        h2 { "Findings" }
        @if r.findings.is_empty() { p.muted { "None." } } @else {
            table.findings {
                tr { th { "validator" } th { "rule" } th { "column" } th.num { "row" } th { "severity" } th { "message" } }
                @for f in &r.findings {
                    tr { td { (f.validator) } td { (f.rule) } td { (f.column.as_deref().unwrap_or("")) }
                         td.num { (f.row.map_or(String::new(), |x| x.to_string())) }
                         td { (text(&serde_json::to_value(f.severity).unwrap_or_default())) } td { (f.message) } }
                }
            }
        }
        h2 { "Monitor verdicts" }
        @if r.monitor_verdicts.is_empty() { p.muted { "None recorded with this request (the daemon's monitors run off the request path; see the pipeline version's page)." } } @else {
            table.verdicts {
                tr { th { "monitor" } th { "alert" } th { "summary" } }
                @for v in &r.monitor_verdicts { tr { td { (v.monitor) } td { @if v.alert { span.badge.alert { "alert" } } } td { (v.summary) } } }
            }
        }
        @if let Some(s) = &r.serving { h2 { "Serving" } pre { (serde_json::to_string_pretty(s).unwrap_or_default()) } }
    };
    Ok(page::shell(&format!("Record {id}"), &viewer, None, body))
}

fn flow(r: &AuditRecord, lineage: &Value) -> Markup {
    html! {
        div.flow.lineage {
            div.node.input { strong { "input" } br; (r.rows_in) " rows" br; span.digest data-digest=(r.input_digest.as_str()) { (r.input_digest.short()) }
                br; span.muted { "payload: " (text(&lineage["input_payload"])) } }
            @for s in r.stages.iter().filter(|s| s.role == StageRole::Stage) {
                span.arrow { "→" }
                div.node.stage data-stage=(s.name) {
                    strong { (s.name) } br; (s.plugin) "@" (s.plugin_version) br;
                    span.digest.plugin-digest data-digest=(s.plugin_digest.as_str()) { (s.plugin_digest.short()) }
                }
            }
            span.arrow { "→" }
            div.node.output { strong { "output" } br; (r.rows_out) " rows" br;
                @if let Some(d) = &r.output_digest { span.digest data-digest=(d.as_str()) { (d.short()) } } @else { span.muted { "none" } } }
        }
        p.muted { "Beside the chain: "
            @for s in r.stages.iter().filter(|s| s.role != StageRole::Stage) {
                span.side data-stage=(s.name) { (text(&serde_json::to_value(s.role).unwrap_or_default())) " " strong { (s.name) } " (" (s.plugin) "@" (s.plugin_version) " " (digest(s.plugin_digest.as_str())) ")" } " · "
            }
        }
    }
}

fn stages_table(r: &AuditRecord, lineage: &Value) -> Markup {
    let plugins = lineage["plugins"].as_array().cloned().unwrap_or_default();
    html! {
        table.stages {
            tr { th { "stage" } th { "role" } th { "plugin" } th { "plugin digest" } th { "config digest" } th { "tagged as" } th.num { "time" } th { "outcome" } }
            @for (i, s) in r.stages.iter().enumerate() {
                tr {
                    td { (s.name) } td { (text(&serde_json::to_value(s.role).unwrap_or_default())) }
                    td { (s.plugin) "@" (s.plugin_version)
                         @for m in &s.models { br; span.muted { "model " (m.name) " " (digest(m.digest.as_str())) } } }
                    td.plugin-digest data-digest=(s.plugin_digest.as_str()) { (digest(s.plugin_digest.as_str())) }
                    td.config-digest data-digest=(s.config_digest.as_str()) { (digest(s.config_digest.as_str())) }
                    td { @for t in plugins.get(i).and_then(|p| p["tags"].as_array()).into_iter().flatten() { (text(t)) " " } }
                    td.num { (s.duration_us) " µs" }
                    td { (outcome_badge(s.outcome)) @if let Some(e) = &s.error { " " span.error { (e) } } }
                }
            }
        }
    }
}
