//! Labels over HTTP: `POST /v2/models/{model}/feedback` (and
//! `/versions/{version}/feedback`, which matches only that version's
//! predictions) takes `{"items": [{"id", "truth", "observed_at"?}, …]}`,
//! records the labels in the store's label chain — durable before the answer
//! — and answers what became of them. Role `feedback` (or `infer`: whoever
//! may ask for predictions may say how they turned out).
//!
//! A bad item (no id, a truth of the wrong type for the task, a bad
//! `observed_at`) is counted and named in `error_details` by its index and
//! id; the other items are recorded. Monitors with `feed = "labels"` of the
//! versions being served are then fed the newly joined rows, off the answer's path.

use crate::app::App;
use crate::config::Role;
use crate::http::{ApiError, authorize, read_body};
use crate::serving::Version;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use keel_ops::feedback::{Target, joined_ids};
use keel_store::{LabelOutcome, NewLabel, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Unmatched ids and errors named one by one in an answer; the rest are counted.
const NAMED: usize = 100;

/// The feedback routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v2/models/{name}/feedback", post(feedback))
        .route(
            "/v2/models/{name}/versions/{version}/feedback",
            post(feedback_pinned),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Posted {
    items: Vec<Item>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    truth: Value,
    #[serde(default)]
    observed_at: Option<String>,
}

async fn feedback(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    take(app, headers, name, None, body).await
}

async fn feedback_pinned(
    State(app): State<Arc<App>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    take(app, headers, name, Some(version), body).await
}

async fn take(
    app: Arc<App>,
    headers: HeaderMap,
    name: String,
    pinned: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Feedback)?;
    let snap = app.snapshot();
    let m = snap.models.get(&name).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown model `{name}`: no version of it is served"
        ))
    })?;
    let (plan_from, versions): (Arc<Version>, Vec<Arc<Version>>) = match &pinned {
        Some(v) => {
            let ver = m.versions.get(v).cloned().ok_or_else(|| {
                ApiError::not_found(format!("model `{name}` has no version `{v}` being served"))
            })?;
            (ver.clone(), vec![ver])
        }
        None => {
            let stable = m.stable().cloned().ok_or_else(|| {
                ApiError::not_found(format!("model `{name}` has no loaded version"))
            })?;
            (stable, m.versions.values().cloned().collect())
        }
    };
    let limit = snap.config.limits.body_bytes;
    drop(snap);
    let bytes = read_body(body, limit).await?;
    let parsed: Posted = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be {{\"items\": [{{\"id\": \"…\", \"truth\": …, \"observed_at\": \"…\"?}}]}}: {e}"
        ))
    })?;
    let target = Target {
        pipeline: name.clone(),
        version: pinned.clone(),
        plan: plan_from.plan.clone(),
    };
    let (labels, errors) = check(&target, parsed.items);
    let store = app.store.clone();
    let answer = tokio::task::spawn_blocking(move || record(&store, &target, labels, &versions))
        .await
        .map_err(|e| ApiError::internal(format!("recording the labels failed: {e}")))??;
    let mut answer = answer;
    let n = errors.len();
    answer["errors"] = json!(n);
    answer["error_details"] = json!(errors.into_iter().take(NAMED).collect::<Vec<_>>());
    Ok(axum::Json(answer).into_response())
}

/// Splits items into labels ready to record and errors naming index and id.
fn check(target: &Target, items: Vec<Item>) -> (Vec<NewLabel>, Vec<Value>) {
    let mut labels = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let id = match &item.id {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                errors.push(
                    json!({"index": i, "id": other, "error": "`id` must be a non-empty string"}),
                );
                continue;
            }
        };
        let fail = |e: String| json!({"index": i, "id": id, "error": e});
        let truth = match target.truth(&item.truth) {
            Ok(t) => t,
            Err(e) => {
                errors.push(fail(e));
                continue;
            }
        };
        if let Some(t) = &item.observed_at
            && let Err(e) = keel_store::parse_rfc3339(t)
        {
            errors.push(fail(format!("observed_at: {e}")));
            continue;
        }
        labels.push(NewLabel {
            id,
            truth,
            observed_at: item.observed_at,
        });
    }
    (labels, errors)
}

/// Records the labels (durable on return), feeds the label monitors of
/// `versions`, and builds the answer's counts.
fn record(
    store: &Store,
    target: &Target,
    labels: Vec<NewLabel>,
    versions: &[Arc<Version>],
) -> Result<Value, ApiError> {
    let report = target
        .accept(store, "daemon", &labels)
        .map_err(|e| ApiError::internal(format!("recording the labels: {e}")))?;
    let fresh: Vec<String> = labels
        .iter()
        .zip(&report.outcomes)
        .filter(|(_, o)| matches!(o, LabelOutcome::Accepted | LabelOutcome::Correction))
        .map(|(l, _)| l.id.clone())
        .collect();
    if !fresh.is_empty() {
        for v in versions.iter().filter(|v| v.pipeline.has_label_monitors()) {
            match joined_ids(store, &v.name, &v.version, &fresh, &v.plan.label_column) {
                Ok(batch) if batch.rows() > 0 => v.feed_labels(batch),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(version = %v.version, error = %e, "cannot join new labels for the monitors")
                }
            }
        }
    }
    Ok(json!({
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "corrections": report.corrections,
        "unmatched": report.unmatched.len(),
        "unmatched_ids": report.unmatched.iter().take(NAMED).collect::<Vec<_>>(),
    }))
}
