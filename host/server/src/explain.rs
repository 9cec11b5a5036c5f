//! Explanations over HTTP: `POST /v2/models/{model}[/versions/{v}]/explain`
//! takes an infer body and answers its outputs plus, for each output column
//! named in `parameters.explain`, the Shapley values as an extra output
//! `<column>_shap` (FP64, `[rows, features]`), with the features' order, the
//! base value and how they were computed in the response's
//! `parameters.explain`; `POST /admin/audit/{id}/explain` explains a stored
//! prediction on the version that made it and records the explanation in
//! the audit chain. An explanation runs on a blocking thread with the
//! version's request deadline as its budget (504 past it), under the
//! version's admission, so it cannot starve inference. The work is
//! `keel_ops::explain`, the same as `keel explain`'s.

use crate::app::App;
use crate::config::Role;
use crate::http::{ApiError, authorize, header_length, nan_to_null, pick_version, read_body};
use crate::oip;
use crate::serving::Version;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use keel_algos::explain::{Link, Method, Options};
use keel_data::Batch;
use keel_ops::explain::{BACKGROUND_ROWS, Background, ExplainError, Explained, Request};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v2/models/{name}/explain", post(explain))
        .route(
            "/v2/models/{name}/versions/{version}/explain",
            post(explain_pinned),
        )
        .route("/admin/audit/{id}/explain", post(explain_record))
}

async fn explain(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    handle(app, headers, name, None, body).await
}

async fn explain_pinned(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    Path((name, version)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    handle(app, headers, name, Some(version), body).await
}

fn api_error(e: ExplainError) -> ApiError {
    match e {
        ExplainError::Usage(m) => ApiError::bad_request(m),
        ExplainError::Data(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
        e @ ExplainError::Budget { .. } => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, e.to_string())
        }
        e @ ExplainError::Pipeline { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
    }
}

fn bad(path: &str, message: impl Into<String>) -> ApiError {
    let mut e = ApiError::bad_request(message);
    e.path = Some(path.into());
    e
}

/// How to explain, from `parameters` (`explain_method`, `explain_link`,
/// `explain_nsamples`, `explain_seed`) or an admin body (`method`, …).
fn options(p: &Map<String, Value>, prefix: &str, at: &str) -> Result<Options, ApiError> {
    let key = |k: &str| format!("{prefix}{k}");
    let text = |k: &str| -> Result<Option<&str>, ApiError> {
        match p.get(&key(k)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad(&format!("{at}{}", key(k)), "expected a string")),
        }
    };
    let count = |k: &str| -> Result<Option<u64>, ApiError> {
        match p.get(&key(k)) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                bad(
                    &format!("{at}{}", key(k)),
                    "expected a non-negative integer",
                )
            }),
        }
    };
    let method = match text("method")? {
        None => Method::Auto,
        Some(m) => Method::parse(m).ok_or_else(|| {
            bad(
                &format!("{at}{}", key("method")),
                format!("`{m}`: expected exact, kernel or auto"),
            )
        })?,
    };
    let link = match text("link")? {
        None => Link::Identity,
        Some(l) => Link::parse(l).ok_or_else(|| {
            bad(
                &format!("{at}{}", key("link")),
                format!("`{l}`: expected identity or logit"),
            )
        })?,
    };
    Ok(Options {
        method,
        link,
        nsamples: count("nsamples")?.map(|n| n as usize),
        seed: count("seed")?.unwrap_or(0),
    })
}

/// The output columns named in `parameters.explain`.
fn columns(p: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let list = p
        .get("explain")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            bad(
                "parameters.explain",
                "name the output columns to explain: \"parameters\": {\"explain\": [\"column\"]}",
            )
        })?;
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str().map(str::to_string).ok_or_else(|| {
                bad(
                    &format!("parameters.explain[{i}]"),
                    "expected a column name",
                )
            })
        })
        .collect()
}

/// Runs `job` on a blocking thread within the version's deadline.
async fn budgeted<T: Send + 'static>(
    version: &Arc<Version>,
    job: impl FnOnce(Instant) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let budget = version.timeout();
    let deadline = Instant::now() + budget;
    let handle = tokio::task::spawn_blocking(move || job(deadline));
    match tokio::time::timeout(budget, handle).await {
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the explanation did not finish within its budget of {} ms (the version's request deadline)",
                budget.as_millis()
            ),
        )),
        Ok(Err(join)) => Err(ApiError::internal(format!(
            "the explanation's thread failed: {join}"
        ))),
        Ok(Ok(r)) => r,
    }
}

/// The outputs and one explanation per requested column.
fn run(
    version: &Version,
    batch: &Batch,
    columns: &[String],
    options: Options,
    deadline: Instant,
) -> Result<(Batch, Vec<Explained>), ApiError> {
    let mut worker = version.pipeline.shared_worker();
    let output = worker
        .process(batch.clone(), 0)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.error.to_string()))?
        .output;
    let background =
        Background::reference(&version.pipeline, BACKGROUND_ROWS).map_err(api_error)?;
    let mut explained = Vec::with_capacity(columns.len());
    for c in columns {
        let request = Request {
            output: c.clone(),
            features: None,
            options,
            deadline: Some(deadline),
        };
        explained.push(
            keel_ops::explain::explain(&mut worker, batch, &background, &request)
                .map_err(api_error)?,
        );
    }
    Ok((output, explained))
}

fn describe(e: &Explained) -> Value {
    json!({
        "features": e.features,
        "base_value": e.base_value(),
        "method": e.method.name(),
        "link": e.link.name(),
        "background": {"rows": e.background_rows, "digest": e.background_digest.to_string()},
    })
}

async fn handle(
    app: Arc<App>,
    headers: axum::http::HeaderMap,
    name: String,
    pinned: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Infer)?;
    let snap = app.snapshot();
    let (version, _, _) = pick_version(&snap, &name, pinned.as_deref()).map_err(|(_, e)| e)?;
    let limit = snap.config.limits.body_bytes;
    drop(snap);
    let body = read_body(body, limit).await?;
    let header_len = header_length(&headers).map_err(|(_, e)| e)?;
    let decoded = oip::decode_request(&body, header_len, &version.inputs)?;
    let columns = columns(&decoded.parameters)?;
    let options = options(&decoded.parameters, "explain_", "parameters.")?;
    let batch = nan_to_null(decoded.batch);
    let admission = version.admit().ok_or_else(|| {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{}@{} is saturated; retry later",
                version.name, version.version
            ),
        );
        e.retry_after = Some(1);
        e
    })?;
    let v = version.clone();
    let (output, explained) = budgeted(&version, move |deadline| {
        run(&v, &batch, &columns, options, deadline)
    })
    .await?;
    drop(admission);
    let id = decoded.id.unwrap_or_default();
    let encoded = oip::encode_response(
        &name,
        &version.version,
        &id,
        &output,
        decoded.outputs.as_deref(),
        false,
    )?;
    let mut answer: Value = serde_json::from_slice(&encoded.body)
        .map_err(|e| ApiError::internal(format!("re-reading the answer: {e}")))?;
    let mut about = Map::new();
    for e in &explained {
        let data: Vec<f64> = e.rows.iter().flat_map(|r| r.shap.iter().copied()).collect();
        if let Some(outputs) = answer["outputs"].as_array_mut() {
            outputs.push(json!({
                "name": format!("{}_shap", e.output),
                "datatype": "FP64",
                "shape": [e.rows.len(), e.features.len()],
                "data": data,
            }));
        }
        about.insert(e.output.clone(), describe(e));
    }
    answer["parameters"] = json!({"explain": about});
    Ok(axum::Json(answer).into_response())
}

/// `POST /admin/audit/{id}/explain`: body `{"output": column, "row"?, "method"?,
/// "link"?, "nsamples"?, "seed"?}`; answers what `keel explain --format json` prints,
/// plus `explains` (the record) and `record` (the explanation's own record).
async fn explain_record(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Admin)?;
    let body = read_body(body, 1 << 20).await?;
    let p: Map<String, Value> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("body: expected a JSON object: {e}")))?;
    let output = p
        .get("output")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("output", "name the output column to explain"))?
        .to_string();
    let row = match p.get("row") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| bad("row", "expected a row number"))? as usize,
        ),
    };
    let options = options(&p, "", "")?;
    let record = app
        .store
        .audit_get(&id)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no audit record `{id}`")))?;
    let snap = app.snapshot();
    let version = snap
        .models
        .get(&record.pipeline.name)
        .and_then(|m| m.versions.get(&record.pipeline.version))
        .filter(|v| v.digest == record.pipeline.digest)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "record {id} was made by {}@{}, which this daemon does not serve now",
                    record.pipeline.name, record.pipeline.version
                ),
            )
        })?;
    drop(snap);
    let store = app.store.clone();
    let v = version.clone();
    let answer = budgeted(&version, move |deadline| {
        let rows = keel_ops::explain::recorded_rows(&store, &record, &v.pipeline, row)
            .map_err(api_error)?;
        let background = Background::reference(&v.pipeline, BACKGROUND_ROWS).map_err(api_error)?;
        let request = Request {
            output,
            features: None,
            options,
            deadline: Some(deadline),
        };
        let mut worker = v.pipeline.shared_worker();
        let e = keel_ops::explain::explain(&mut worker, &rows, &background, &request)
            .map_err(api_error)?;
        let receipt = keel_ops::explain::record(&store, &record, row, &e)
            .map_err(|e| ApiError::internal(format!("recording the explanation: {e:#}")))?;
        let mut j = e.to_json();
        j["explains"] = json!(record.id);
        j["record"] = json!(receipt.id);
        Ok(j)
    })
    .await?;
    Ok(axum::Json(answer).into_response())
}
