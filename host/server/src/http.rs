//! The HTTP surface: Open Inference Protocol v2 endpoints (health, server
//! and model metadata, readiness, infer), `/metrics`, and the error type
//! every handler answers with — JSON that says what is wrong and where.

use crate::app::{App, Model, Route};
use crate::auth::AuthError;
use crate::config::Role;
use crate::oip;
use crate::serving::{Executed, Version};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use keel_data::Batch;
use keel_store::Outcome;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// An error answer: status and a JSON body `{"error": …}` (OIP's shape),
/// with `path` when the problem is at a place in the request.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub path: Option<String>,
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            path: None,
            extra: Default::default(),
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    pub fn with(mut self, key: &str, value: serde_json::Value) -> ApiError {
        self.extra.insert(key.to_string(), value);
        self
    }
}

impl From<oip::OipError> for ApiError {
    fn from(e: oip::OipError) -> ApiError {
        let mut a = ApiError::bad_request(e.to_string());
        if !e.path.is_empty() {
            a.path = Some(e.path);
        }
        a
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match &e {
            AuthError::Unauthenticated(_) => ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()),
            AuthError::Forbidden { .. } => ApiError::new(StatusCode::FORBIDDEN, e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.extra;
        body.insert("error".into(), self.message.into());
        if let Some(p) = self.path {
            body.insert("path".into(), p.into());
        }
        let mut r = (self.status, axum::Json(serde_json::Value::Object(body))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

/// Checks the caller's token for `role`.
pub fn authorize(
    app: &App,
    headers: &HeaderMap,
    role: Role,
) -> Result<crate::auth::Caller, ApiError> {
    let snap = app.snapshot();
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    snap.tokens.authorize(auth, role).map_err(|e| {
        app.metrics.refuse(
            "",
            match e {
                AuthError::Unauthenticated(_) => "unauthorized",
                AuthError::Forbidden { .. } => "forbidden",
            },
        );
        e.into()
    })
}

/// Reads a body of at most `limit` bytes (413 beyond, whatever
/// Content-Length claims).
pub async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds the limit of {limit} bytes (limits.body_bytes)"),
        )
    };
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

/// The OIP and operational routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(version_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(version_ready),
        )
        .route("/v2/models/{name}/infer", post(infer))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(infer_pinned),
        )
        .route("/metrics", get(metrics))
}

async fn server_metadata(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read).or_else(|_| authorize(&app, &headers, Role::Infer))?;
    Ok(axum::Json(json!({
        "name": "keel",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data", "keel_admin", "keel_audit"],
    }))
    .into_response())
}

async fn live() -> Response {
    axum::Json(json!({"live": true})).into_response()
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    // Ready once every deployed version loaded; a version that failed to
    // load keeps the server unready so an orchestrator does not send traffic.
    let snap = app.snapshot();
    let ok = snap.failures.is_empty();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let failures: Vec<String> = snap.failures.iter().map(|f| f.to_string()).collect();
    (
        status,
        axum::Json(json!({"ready": ok, "failures": failures})),
    )
        .into_response()
}

fn model<'a>(snap: &'a crate::app::Snapshot, name: &str) -> Result<&'a Model, ApiError> {
    snap.models.get(name).ok_or_else(|| {
        let known: Vec<&str> = snap.models.keys().map(String::as_str).collect();
        ApiError::not_found(format!(
            "unknown model `{name}`; serving: {}",
            if known.is_empty() {
                "none (deploy with `keel pipeline deploy`)".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

fn version_of(m: &Model, version: &str) -> Result<Arc<Version>, ApiError> {
    m.versions.get(version).cloned().ok_or_else(|| {
        let known: Vec<&str> = m
            .sorted_versions()
            .iter()
            .map(|v| v.version.as_str())
            .collect();
        ApiError::not_found(format!(
            "model `{}` has no version `{version}` being served; versions: {}",
            m.name,
            known.join(", ")
        ))
    })
}

fn metadata(m: &Model, v: &Version) -> serde_json::Value {
    let (inputs, outputs) = v.describe();
    json!({
        "name": m.name,
        "versions": m.sorted_versions().iter().map(|v| v.version.clone()).collect::<Vec<_>>(),
        "platform": "keel",
        "inputs": oip::tensor_metadata(inputs),
        "outputs": oip::tensor_metadata(outputs),
        "parameters": {
            "version": v.version,
            "digest": v.digest.to_string(),
            "stages": v.stages(),
            "description": v.pipeline.spec().description,
        },
    })
}

async fn model_metadata(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Infer).or_else(|_| authorize(&app, &headers, Role::Read))?;
    let snap = app.snapshot();
    let m = model(&snap, &name)?;
    let v = m
        .stable()
        .ok_or_else(|| ApiError::not_found(format!("model `{name}` has no loaded version")))?;
    Ok(axum::Json(metadata(m, v)).into_response())
}

async fn version_metadata(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Infer).or_else(|_| authorize(&app, &headers, Role::Read))?;
    let snap = app.snapshot();
    let m = model(&snap, &name)?;
    let v = version_of(m, &version)?;
    Ok(axum::Json(metadata(m, &v)).into_response())
}

async fn model_ready(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Infer).or_else(|_| authorize(&app, &headers, Role::Read))?;
    let snap = app.snapshot();
    let m = model(&snap, &name)?;
    let ok = m.stable().is_some();
    Ok(axum::Json(json!({"name": name, "ready": ok})).into_response())
}

async fn version_ready(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Infer).or_else(|_| authorize(&app, &headers, Role::Read))?;
    let snap = app.snapshot();
    let m = model(&snap, &name)?;
    version_of(m, &version)?;
    Ok(axum::Json(json!({"name": name, "version": version, "ready": true})).into_response())
}

async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    if !app.snapshot().config.metrics.public {
        authorize(&app, &headers, Role::Read)?;
    }
    let mut r = app.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(r)
}

async fn infer(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    handle_infer(app, headers, name, None, body).await
}

async fn infer_pinned(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    handle_infer(app, headers, name, Some(version), body).await
}

/// Longest request id accepted (ids become audit keys).
const MAX_ID: usize = 200;

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() > MAX_ID || id.chars().any(|c| c.is_control()) {
        let mut e = ApiError::bad_request(format!(
            "request id must be at most {MAX_ID} bytes without control characters"
        ));
        e.path = Some("id".into());
        return Err(e);
    }
    Ok(())
}

/// A refused request: the reason counted in metrics, and the answer.
pub(crate) type Refusal = (&'static str, ApiError);

async fn handle_infer(
    app: Arc<App>,
    headers: HeaderMap,
    name: String,
    pinned: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let refuse = |(reason, e): Refusal| {
        app.metrics.refuse(&name, reason);
        e
    };
    authorize(&app, &headers, Role::Infer)?;
    let snap = app.snapshot();
    let (version, route, shadow) = pick_version(&snap, &name, pinned.as_deref()).map_err(refuse)?;
    let limit = snap.config.limits.body_bytes;
    drop(snap);
    let body = read_body(body, limit)
        .await
        .map_err(|e| refuse(("too_large", e)))?;
    let header_len = header_length(&headers).map_err(refuse)?;
    let mut decoded = oip::decode_request(&body, header_len, &version.inputs)
        .map_err(|e| refuse(("bad_request", e.into())))?;
    decoded.batch = nan_to_null(decoded.batch);
    let id = request_id(&app, decoded.id.clone()).map_err(refuse)?;
    let admission = version
        .admit()
        .ok_or_else(|| refuse(overloaded(&version)))?;
    let shadow_input = shadow.as_ref().map(|_| decoded.batch.clone());
    let serving = json!({"route": route.as_str()});
    let deadline = version.timeout();
    let remaining = deadline.saturating_sub(arrived.elapsed());
    let run = version.run(&admission, id.clone(), decoded.batch, serving);
    let executed = match tokio::time::timeout(remaining, run).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the pipeline version is shutting down",
            ));
        }
        Err(_) => return Err(refuse(past_deadline(deadline, &id))),
    };
    drop(admission);
    let mut labels = version.labels().clone();
    labels.push(("outcome", executed.outcome.to_string()));
    app.metrics.requests.get_or_create(&labels).inc();
    let ok = executed.outcome == keel_store::Outcome::Ok;
    if let (Some(shadow), Some(input), Some(output)) = (shadow, shadow_input, &executed.output) {
        spawn_shadow(&app, shadow, input, output.clone(), &id, &version.version);
    }
    let response = answer(
        &name,
        &version,
        &id,
        executed,
        &decoded.outputs,
        decoded.binary_output,
    );
    let elapsed = arrived.elapsed().as_secs_f64();
    app.metrics
        .latency
        .get_or_create(version.labels())
        .observe(elapsed);
    app.metrics
        .recent
        .record(&version.name, &version.version, ok, elapsed);
    response
}

/// The version a request goes to, how it got there, and its shadow.
pub(crate) type Picked = (Arc<Version>, Route, Option<Arc<Version>>);

/// The version a request for model `name` goes to (the pinned one, or the
/// route's), how it got there, and the shadow that sees it too, if any.
pub(crate) fn pick_version(
    snap: &crate::app::Snapshot,
    name: &str,
    pinned: Option<&str>,
) -> Result<Picked, Refusal> {
    let not_found = |e| ("not_found", e);
    let m = model(snap, name).map_err(not_found)?;
    let (version, route) = match pinned {
        Some(v) => (version_of(m, v).map_err(not_found)?, Route::Pinned),
        None => m.route().ok_or_else(|| {
            not_found(ApiError::not_found(format!(
                "model `{name}` has no loaded version"
            )))
        })?,
    };
    let shadow = match route {
        Route::Pinned => None,
        _ => m.shadow_for(&version.version),
    };
    Ok((version, route, shadow))
}

/// The `Inference-Header-Content-Length` header, when there is one.
pub(crate) fn header_length(headers: &HeaderMap) -> Result<Option<usize>, Refusal> {
    let Some(v) = headers.get(oip::HEADER_LENGTH) else {
        return Ok(None);
    };
    let n = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .ok_or_else(|| {
            (
                "bad_request",
                ApiError::bad_request(format!(
                    "header {}: expected a byte count",
                    oip::HEADER_LENGTH
                )),
            )
        })?;
    Ok(Some(n))
}

/// The request's own id (checked, and not yet in the audit log) or a new one.
fn request_id(app: &App, given: Option<String>) -> Result<String, Refusal> {
    let id = match given {
        Some(id) => {
            check_id(&id).map_err(|e| ("bad_request", e))?;
            id
        }
        None => keel_store::new_record_id(),
    };
    if app.store.audit_get(&id).ok().flatten().is_some() {
        return Err((
            "duplicate_id",
            ApiError::new(
                StatusCode::CONFLICT,
                format!("request id `{id}` is already in the audit log; ids must be unique"),
            )
            .with("id", id.into()),
        ));
    }
    Ok(id)
}

/// The answer when a version's queue is full.
fn overloaded(version: &Version) -> Refusal {
    let mut e = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "{}@{} is saturated ({} executing, {} queued); retry later",
            version.name, version.version, version.limits.concurrency, version.limits.queue
        ),
    );
    e.retry_after = Some(1);
    ("overloaded", e)
}

/// The answer when the request's deadline passed first.
fn past_deadline(deadline: std::time::Duration, id: &str) -> Refusal {
    (
        "deadline",
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "no answer within the request deadline of {} ms; if it was executing it completes and is recorded as `{id}`",
                deadline.as_millis()
            ),
        )
        .with("id", id.to_string().into()),
    )
}

/// NaN in a floating-point input is a missing value, as pandas and numpy
/// clients mean it; the pipeline sees a null, as it would reading a file.
pub(crate) fn nan_to_null(batch: Batch) -> Batch {
    let needs = batch.columns().iter().any(|c| match &c.data {
        keel_data::ColumnData::F64(v) => v.iter().any(|x| x.is_nan()),
        keel_data::ColumnData::F32(v) => v.iter().any(|x| x.is_nan()),
        _ => false,
    });
    if !needs {
        return batch;
    }
    let rows = batch.rows();
    let columns = batch
        .into_columns()
        .into_iter()
        .map(|mut c| {
            let nan: Vec<bool> = match &c.data {
                keel_data::ColumnData::F64(v) => v.iter().map(|x| x.is_nan()).collect(),
                keel_data::ColumnData::F32(v) => v.iter().map(|x| x.is_nan()).collect(),
                _ => return c,
            };
            let validity: Vec<bool> = (0..rows).map(|i| c.is_valid(i) && !nan[i]).collect();
            c.validity = validity.iter().any(|v| !v).then_some(validity);
            c
        })
        .collect();
    Batch::new(rows, columns).unwrap_or_default()
}

/// The OIP answer for an executed request.
fn answer(
    name: &str,
    version: &Version,
    id: &str,
    e: Executed,
    requested: &Option<Vec<oip::RequestedOutput>>,
    binary: bool,
) -> Result<Response, ApiError> {
    if let Some(a) = e.audit_error {
        // No durable record, no answer: the client must not act on it.
        return Err(ApiError::internal(format!(
            "the request ran but could not be recorded, so its answer is withheld: {a}"
        ))
        .with("id", id.into()));
    }
    let Some(output) = e.output else {
        let status = match e.outcome {
            Outcome::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Outcome::Trap => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        return Err(ApiError::new(status, e.error.unwrap_or_default())
            .with("id", id.into())
            .with("outcome", e.outcome.to_string().into())
            .with("stage", e.failed_stage.into()));
    };
    let encoded = oip::encode_response(
        name,
        &version.version,
        id,
        &output,
        requested.as_deref(),
        binary,
    )?;
    let mut r = Response::new(Body::from(encoded.body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if encoded.header_len.is_some() {
            "application/octet-stream"
        } else {
            "application/json"
        }),
    );
    if let Some(n) = encoded.header_len
        && let Ok(v) = HeaderValue::from_str(&n.to_string())
    {
        h.insert(oip::HEADER_LENGTH, v);
    }
    for (k, v) in [
        ("keel-request-id", id.to_string()),
        (
            "keel-audit-seq",
            e.seq.map(|s| s.to_string()).unwrap_or_default(),
        ),
        ("keel-findings", e.findings.len().to_string()),
        ("keel-rows-rejected", e.rows_rejected.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    Ok(r)
}

/// Mirrors a request to the shadow version off the request path; its
/// record names the request it shadows and how its answer compares.
fn spawn_shadow(
    app: &Arc<App>,
    shadow: Arc<Version>,
    input: Batch,
    primary_output: Batch,
    id: &str,
    primary_version: &str,
) {
    let labels = |result: &str| {
        let mut l = shadow.labels().clone();
        l.push(("result", result.to_string()));
        l
    };
    let Ok(slot) = app.shadow_slots.clone().try_acquire_owned() else {
        app.metrics.shadow.get_or_create(&labels("dropped")).inc();
        return;
    };
    let Some(admission) = shadow.admit() else {
        app.metrics.shadow.get_or_create(&labels("dropped")).inc();
        return;
    };
    let app = app.clone();
    let sid = format!("{id}~shadow");
    let primary_id = id.to_string();
    let primary_version = primary_version.to_string();
    tokio::spawn(async move {
        let compare_with = Some(primary_output);
        let serving = json!({
            "route": "shadow",
            "shadow_of": primary_id,
            "primary_version": primary_version,
        });
        let executed = shadow
            .run_compared(&admission, sid, input, serving, compare_with)
            .await;
        drop(admission);
        drop(slot);
        let result = match executed {
            Some(e) if e.outcome == Outcome::Ok && e.audit_error.is_none() => {
                if e.identical == Some(true) {
                    "identical"
                } else {
                    "different"
                }
            }
            _ => "error",
        };
        let mut l = shadow.labels().clone();
        l.push(("result", result.to_string()));
        app.metrics.shadow.get_or_create(&l).inc();
    });
}
