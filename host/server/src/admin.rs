//! The admin API (JSON under `/admin`): plugins, deploys, traffic (canary,
//! shadow, promote, rollback, retire), reload, audit queries and lineage,
//! monitor status and alerts. Every change is itself recorded in the store's
//! admin log: who, what, when, and how it ended.

use crate::app::{App, Canary, Traffic};
use crate::auth::Caller;
use crate::config::Role;
use crate::http::{ApiError, authorize, read_body};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use keel_store::{AdminEntry, AuditFilter, Outcome, State as Lifecycle};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The admin routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/admin/plugins", get(plugins).post(plugin_add))
        .route("/admin/plugins/{name}/{version}/state", put(plugin_state))
        .route("/admin/pipelines", get(pipelines).post(deploy))
        .route(
            "/admin/pipelines/{name}/traffic",
            get(traffic_get).put(traffic_set),
        )
        .route("/admin/pipelines/{name}/promote", post(promote))
        .route("/admin/pipelines/{name}/rollback", post(rollback))
        .route(
            "/admin/pipelines/{name}/versions/{version}/retire",
            post(retire),
        )
        .route("/admin/reload", post(reload))
        .route("/admin/audit", get(audit_log))
        .route("/admin/audit/verify", get(audit_verify))
        .route("/admin/audit/{id}", get(audit_show))
        .route("/admin/monitors", get(monitors))
        .route(
            "/admin/monitors/{pipeline}/{monitor}/history",
            get(monitor_history),
        )
        .route("/admin/alerts", get(alerts))
        .route("/admin/log", get(admin_log))
}

fn json_response(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn store_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("store: {e}"))
}

/// Runs a change under the change lock and records it in the admin log,
/// whether it worked or not.
async fn change<F>(
    app: &Arc<App>,
    caller: &Caller,
    action: &'static str,
    target: String,
    detail: Value,
    f: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(Arc<App>) -> Result<Value, ApiError> + Send + 'static,
{
    let _guard = app.changes.lock().await;
    let app2 = app.clone();
    // Changes may compile plugins and fsync: off the async threads.
    let result = tokio::task::spawn_blocking(move || f(app2))
        .await
        .map_err(|e| ApiError::internal(format!("the change failed: {e}")))
        .and_then(|r| r);
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(e) => e.message.clone(),
    };
    app.metrics
        .admin_actions
        .get_or_create(&vec![
            ("action", action.to_string()),
            (
                "outcome",
                if result.is_ok() { "ok" } else { "error" }.to_string(),
            ),
        ])
        .inc();
    let entry = AdminEntry {
        seq: 0,
        time: String::new(),
        actor: caller.name.clone(),
        action: action.to_string(),
        target,
        detail,
        outcome,
        prev_hash: String::new(),
        hash: String::new(),
    };
    let recorded = app.store.append_admin(entry);
    match (result, recorded) {
        (Ok(v), Ok(e)) => Ok(json_response(json!({"result": v, "admin_seq": e.seq}))),
        (Ok(_), Err(e)) => Err(ApiError::internal(format!(
            "the change was made but could not be recorded in the admin log: {e}"
        ))),
        (Err(e), _) => Err(e),
    }
}

async fn plugins(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read)?;
    let list = app.store.list_plugins().map_err(store_error)?;
    let v: Vec<Value> = list
        .into_iter()
        .map(|t| {
            json!({
                "name": t.name, "version": t.version, "digest": t.digest.to_string(),
                "state": t.state.to_string(), "added_at": t.added_at, "kind": t.meta.kind,
            })
        })
        .collect();
    Ok(json_response(json!({"plugins": v})))
}

#[derive(Deserialize)]
struct PluginAddQuery {
    name: String,
    version: String,
    #[serde(default)]
    state: Option<String>,
}

/// Header carrying a plugin's signature (the `.sig` file's text, base64) for
/// the store's trust policy.
pub const SIGNATURE_HEADER: &str = "keel-signature";

/// `POST /admin/plugins?name=N&version=V[&state=S]`, body: the component bytes;
/// its signature, when the trust policy needs one, in the `keel-signature` header.
async fn plugin_add(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<PluginAddQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authorize(&app, &headers, Role::Admin)?;
    let limit = app.snapshot().config.limits.body_bytes.max(64 << 20);
    let bytes = read_body(body, limit).await?;
    let state: Lifecycle = q
        .state
        .as_deref()
        .unwrap_or("active")
        .parse()
        .map_err(|e| ApiError::bad_request(format!("state: {e}")))?;
    let signature = match headers.get(SIGNATURE_HEADER) {
        Some(v) => {
            let text = base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "header {SIGNATURE_HEADER}: expected the .sig file's text in base64"
                    ))
                })?;
            Some(keel_ops::trust::Offered {
                text,
                source: format!("header {SIGNATURE_HEADER}"),
            })
        }
        None => None,
    };
    let target = format!("{}@{}", q.name, q.version);
    let detail =
        json!({"bytes": bytes.len(), "state": state.to_string(), "signed": signature.is_some()});
    change(&app, &caller, "plugin.add", target, detail, move |app| {
        let (digest, s) = keel_ops::plugin_add_signed(
            &app.store,
            &app.rt,
            &bytes,
            &q.name,
            &q.version,
            state,
            signature.as_ref(),
        )
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
        Ok(json!({"name": q.name, "version": q.version, "digest": digest.to_string(), "kind": s.kind.as_str()}))
    })
    .await
}

#[derive(Deserialize)]
struct StateBody {
    state: String,
}

async fn plugin_state(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
    axum::Json(b): axum::Json<StateBody>,
) -> Result<Response, ApiError> {
    let caller = authorize(&app, &headers, Role::Admin)?;
    let state: Lifecycle = b
        .state
        .parse()
        .map_err(|e| ApiError::bad_request(format!("state: {e}")))?;
    let target = format!("{name}@{version}");
    change(
        &app,
        &caller,
        "plugin.state",
        target,
        json!({"state": b.state}),
        move |app| {
            app.store
                .set_state(&name, &version, state)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            Ok(json!({"name": name, "version": version, "state": state.to_string()}))
        },
    )
    .await
}

async fn pipelines(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read)?;
    let snap = app.snapshot();
    let mut by_name: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in app.store.list_pipelines().map_err(store_error)? {
        let loaded = snap
            .models
            .get(&r.name)
            .and_then(|m| m.versions.get(&r.version));
        by_name.entry(r.name.clone()).or_default().push(json!({
            "version": r.version,
            "digest": r.digest.to_string(),
            "state": r.state.to_string(),
            "added_at": r.added_at,
            "loaded": loaded.is_some(),
            "in_flight": loaded.map(|v| v.in_flight()),
        }));
    }
    let mut out = Vec::new();
    for (name, versions) in by_name {
        let (traffic, stable) = match snap.models.get(&name) {
            Some(m) => (m.traffic.clone(), m.stable().map(|v| v.version.clone())),
            None => (app.traffic(&name).map_err(ApiError::internal)?, None),
        };
        out.push(json!({
            "name": name,
            "serving": stable,
            "traffic": traffic,
            "versions": versions,
        }));
    }
    let failures: Vec<String> = snap.failures.iter().map(|f| f.to_string()).collect();
    Ok(json_response(
        json!({"pipelines": out, "load_failures": failures}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    /// The spec (TOML). Plugins are named `name@version` (already in the
    /// store) or by digest.
    spec: String,
    /// Files the spec refers to (reference data), base64.
    #[serde(default)]
    files: BTreeMap<String, String>,
}

/// `POST /admin/pipelines`: JSON `{"spec": TOML, "files": {name: base64}}`,
/// or the TOML itself when the spec needs no files.
async fn deploy(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authorize(&app, &headers, Role::Admin)?;
    let limit = app.snapshot().config.limits.body_bytes.max(64 << 20);
    let bytes = read_body(body, limit).await?;
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let d: DeployBody = if is_json {
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let mut a = ApiError::bad_request(e.inner().to_string());
            a.path = Some(e.path().to_string());
            a
        })?
    } else {
        DeployBody {
            spec: String::from_utf8(bytes.to_vec())
                .map_err(|_| ApiError::bad_request("the spec is not UTF-8"))?,
            files: BTreeMap::new(),
        }
    };
    let mut files = Vec::new();
    for (name, b64) in &d.files {
        if name.contains('/') || name.contains("..") || name.is_empty() {
            let mut e = ApiError::bad_request(format!("file name `{name}` must be a plain name"));
            e.path = Some(format!("files.{name}"));
            return Err(e);
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| {
                let mut a = ApiError::bad_request(format!("not base64: {e}"));
                a.path = Some(format!("files.{name}"));
                a
            })?;
        files.push((name.clone(), data));
    }
    let target =
        keel_runtime::spec::PipelineSpec::parse(&d.spec, std::path::Path::new("pipeline.toml"))
            .map(|s| format!("{}@{}", s.name, s.version))
            .map_err(|e| ApiError::bad_request(format!("{e}")))?;
    let detail = json!({"files": d.files.keys().collect::<Vec<_>>()});
    change(
        &app,
        &caller,
        "pipeline.deploy",
        target,
        detail,
        move |app| {
            let dir = tempfile::tempdir().map_err(|e| ApiError::internal(e.to_string()))?;
            for (name, data) in &files {
                std::fs::write(dir.path().join(name), data)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
            let path = dir.path().join("pipeline.toml");
            std::fs::write(&path, &d.spec).map_err(|e| ApiError::internal(e.to_string()))?;
            let deployed = keel_ops::pipeline_deploy(
                &app.store,
                &app.rt,
                &path,
                keel_runtime::pipeline::PluginDirs::default(),
            )
            .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
            let report = app.reload(None).map_err(ApiError::internal)?;
            Ok(json!({"deployed": deployed, "serving": report}))
        },
    )
    .await
}

async fn traffic_get(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read)?;
    let t = app.traffic(&name).map_err(ApiError::internal)?;
    Ok(json_response(serde_json::to_value(t).unwrap_or_default()))
}

/// `PUT /admin/pipelines/{name}/traffic`: any of `stable`, `canary`
/// (`{"version", "share"}` or null), `shadow` (a version or null).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrafficBody {
    #[serde(default)]
    stable: Option<String>,
    #[serde(default, with = "double_option")]
    canary: Option<Option<Canary>>,
    #[serde(default, with = "double_option")]
    shadow: Option<Option<String>>,
}

/// Tells an absent field (leave as is) from `null` (clear).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

fn loaded_version(app: &App, name: &str, version: &str, path: &str) -> Result<(), ApiError> {
    let snap = app.snapshot();
    let ok = snap
        .models
        .get(name)
        .is_some_and(|m| m.versions.contains_key(version));
    if ok {
        Ok(())
    } else {
        let mut e = ApiError::new(
            StatusCode::CONFLICT,
            format!("{name}@{version} is not deployed and loaded (see GET /admin/pipelines)"),
        );
        e.path = Some(path.into());
        Err(e)
    }
}

async fn traffic_set(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authorize(&app, &headers, Role::Admin)?;
    let bytes = read_body(body, 1 << 20).await?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    let b: TrafficBody = serde_path_to_error::deserialize(de).map_err(|e| {
        let mut a = ApiError::bad_request(e.inner().to_string());
        a.path = Some(e.path().to_string());
        a
    })?;
    let detail = serde_json::from_slice::<Value>(&bytes).unwrap_or_default();
    change(
        &app,
        &caller,
        "traffic.set",
        name.clone(),
        detail,
        move |app| {
            let mut t = app.traffic(&name).map_err(ApiError::internal)?;
            if let Some(s) = b.stable {
                loaded_version(&app, &name, &s, "stable")?;
                if t.stable.as_ref() != Some(&s)
                    && let Some(old) = t.stable.replace(s)
                {
                    t.history.push(old);
                }
            }
            if let Some(c) = b.canary {
                if let Some(c) = &c {
                    loaded_version(&app, &name, &c.version, "canary.version")?;
                    if !(c.share > 0.0 && c.share <= 1.0) {
                        let mut e =
                            ApiError::bad_request(format!("share {} is outside (0, 1]", c.share));
                        e.path = Some("canary.share".into());
                        return Err(e);
                    }
                }
                t.canary = c;
            }
            if let Some(s) = b.shadow {
                if let Some(s) = &s {
                    loaded_version(&app, &name, s, "shadow")?;
                }
                t.shadow = s;
            }
            set_traffic(&app, &name, t)
        },
    )
    .await
}

/// Fixes an unset stable to the version serving now, saves, reloads.
fn set_traffic(app: &App, name: &str, mut t: Traffic) -> Result<Value, ApiError> {
    if t.stable.is_none() {
        t.stable = app
            .snapshot()
            .models
            .get(name)
            .and_then(|m| m.stable().map(|v| v.version.clone()));
    }
    app.put_traffic(name, t.clone())
        .map_err(ApiError::internal)?;
    app.reload(None).map_err(ApiError::internal)?;
    Ok(serde_json::to_value(t).unwrap_or_default())
}

#[derive(Deserialize, Default)]
struct PromoteBody {
    #[serde(default)]
    version: Option<String>,
}

/// Makes the canary (or the named version) stable; the old stable goes to history.
async fn promote(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authorize(&app, &headers, Role::Admin)?;
    let bytes = read_body(body, 1 << 20).await?;
    let b: PromoteBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        PromoteBody::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    promote_as(&app, &caller, name, b.version).await
}

/// Promotes the canary (or `version`) of pipeline `name` as `caller`,
/// recorded in the admin log (the console's action calls this too).
pub async fn promote_as(
    app: &Arc<App>,
    caller: &Caller,
    name: String,
    version: Option<String>,
) -> Result<Response, ApiError> {
    change(
        app,
        caller,
        "traffic.promote",
        name.clone(),
        json!({"version": version}),
        move |app| {
            let mut t = app.traffic(&name).map_err(ApiError::internal)?;
            let current = app
                .snapshot()
                .models
                .get(&name)
                .and_then(|m| m.stable().map(|v| v.version.clone()));
            let target = version
                .or_else(|| t.canary.as_ref().map(|c| c.version.clone()))
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::CONFLICT,
                        format!("`{name}` has no canary to promote; name a version"),
                    )
                })?;
            loaded_version(&app, &name, &target, "version")?;
            if let Some(old) = current.filter(|o| *o != target) {
                t.history.push(old);
            }
            t.stable = Some(target.clone());
            if t.canary.as_ref().is_some_and(|c| c.version == target) {
                t.canary = None;
            }
            if t.shadow.as_ref() == Some(&target) {
                t.shadow = None;
            }
            set_traffic(&app, &name, t)
        },
    )
    .await
}

/// Returns to the previous stable version and stops canary and shadow.
async fn rollback(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let caller = authorize(&app, &headers, Role::Admin)?;
    rollback_as(&app, &caller, name).await
}

/// Rolls pipeline `name` back as `caller`, recorded in the admin log.
pub async fn rollback_as(
    app: &Arc<App>,
    caller: &Caller,
    name: String,
) -> Result<Response, ApiError> {
    change(app, caller, "traffic.rollback", name.clone(), Value::Null, move |app| {
        let mut t = app.traffic(&name).map_err(ApiError::internal)?;
        let had_candidates = t.canary.is_some() || t.shadow.is_some();
        t.canary = None;
        t.shadow = None;
        if !had_candidates {
            let previous = t.history.pop().ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    format!("`{name}` has no canary, shadow or earlier stable version to roll back to"),
                )
            })?;
            loaded_version(&app, &name, &previous, "history")?;
            t.stable = Some(previous);
        }
        set_traffic(&app, &name, t)
    })
    .await
}

/// Retires a version: it stops serving and cannot be deployed to again;
/// its records stay and replay still works.
async fn retire(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let caller = authorize(&app, &headers, Role::Admin)?;
    retire_as(&app, &caller, name, version).await
}

/// Retires `name@version` as `caller`, recorded in the admin log.
pub async fn retire_as(
    app: &Arc<App>,
    caller: &Caller,
    name: String,
    version: String,
) -> Result<Response, ApiError> {
    let target = format!("{name}@{version}");
    change(
        app,
        caller,
        "pipeline.retire",
        target,
        Value::Null,
        move |app| {
            let stable = app
                .snapshot()
                .models
                .get(&name)
                .and_then(|m| m.stable().map(|v| v.version.clone()));
            if stable.as_deref() == Some(version.as_str()) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("{name}@{version} is the stable version; promote another first"),
                ));
            }
            app.store
                .set_pipeline_state(&name, &version, Lifecycle::Retired)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let mut t = app.traffic(&name).map_err(ApiError::internal)?;
            if t.canary.as_ref().is_some_and(|c| c.version == version) {
                t.canary = None;
            }
            if t.shadow.as_ref() == Some(&version) {
                t.shadow = None;
            }
            t.history.retain(|h| *h != version);
            set_traffic(&app, &name, t)
        },
    )
    .await
}

/// Re-reads the config file (tokens, limits) and the store's deployed versions.
async fn reload(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = authorize(&app, &headers, Role::Admin)?;
    change(
        &app,
        &caller,
        "server.reload",
        String::new(),
        Value::Null,
        |app| reload_from_disk(&app).map_err(ApiError::bad_request),
    )
    .await
}

/// Reloads with the config file re-read (if the daemon was started with one).
pub fn reload_from_disk(app: &App) -> Result<Value, String> {
    let path = app.snapshot().config.path.clone();
    let config = match &path {
        Some(p) => Some(crate::config::ServerConfig::load(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let report = app.reload(config)?;
    Ok(serde_json::to_value(report).unwrap_or_default())
}

#[derive(Deserialize)]
struct AuditQuery {
    pipeline: Option<String>,
    since: Option<String>,
    outcome: Option<String>,
    limit: Option<usize>,
}

async fn audit_log(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read)?;
    let since = q
        .since
        .as_deref()
        .map(keel_store::parse_rfc3339)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("since: {e}")))?;
    let outcome: Option<Outcome> = q
        .outcome
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("outcome: {e}")))?;
    let filter = AuditFilter {
        pipeline: q.pipeline,
        since,
        outcome,
        limit: Some(q.limit.unwrap_or(100).min(10_000)),
    };
    let records = app.store.audit_log(&filter).map_err(store_error)?;
    Ok(json_response(json!({"records": records})))
}

async fn audit_show(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read)?;
    let r = app
        .store
        .audit_get(&id)
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no audit record `{id}`")))?;
    let lineage = lineage(&app, &r)?;
    Ok(json_response(json!({"record": r, "lineage": lineage})))
}

/// A record's lineage: each stage's plugin with digest, config digest and
/// the registry's tags on that digest; whether the input payload is kept;
/// whether the pipeline version is still the one deployed.
pub fn lineage(app: &App, r: &keel_store::AuditRecord) -> Result<Value, ApiError> {
    let tags = app.store.list_plugins().map_err(store_error)?;
    let plugins: Vec<Value> = r
        .stages
        .iter()
        .map(|s| {
            let names: Vec<String> = tags
                .iter()
                .filter(|t| t.digest == s.plugin_digest)
                .map(|t| format!("{}@{} ({})", t.name, t.version, t.state))
                .collect();
            json!({
                "stage": s.name, "role": s.role,
                "plugin": format!("{}@{}", s.plugin, s.plugin_version),
                "digest": s.plugin_digest.to_string(),
                "config_digest": s.config_digest.to_string(),
                "tags": names,
            })
        })
        .collect();
    let input = app
        .store
        .payload_status(&r.input_digest)
        .map(|s| format!("{s:?}").to_lowercase())
        .unwrap_or_default();
    let deployed = app
        .store
        .get_pipeline(&r.pipeline.name, Some(&r.pipeline.version))
        .ok()
        .flatten()
        .is_some_and(|p| p.digest == r.pipeline.digest);
    Ok(json!({"plugins": plugins, "input_payload": input, "pipeline_deployed": deployed}))
}

async fn audit_verify(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read)?;
    let store = app.store.clone();
    let (audit, admin) =
        tokio::task::spawn_blocking(move || (store.verify(), store.verify_admin()))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
    let show = |r: Result<keel_store::VerifyReport, keel_store::StoreError>| match r {
        Ok(r) => json!({"ok": true, "records": r.records}),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    };
    Ok(json_response(
        json!({"audit": show(audit), "admin": show(admin)}),
    ))
}

async fn monitors(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read)?;
    let snap = app.snapshot();
    let mut out = Vec::new();
    for m in snap.models.values() {
        for v in m.sorted_versions() {
            let (v, version) = (v.clone(), v.version.clone());
            let status = tokio::task::spawn_blocking(move || v.monitor_status())
                .await
                .unwrap_or_default();
            if !status.is_empty() {
                out.push(json!({"pipeline": m.name, "version": version, "monitors": status}));
            }
        }
    }
    Ok(json_response(json!({"pipelines": out})))
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<usize>,
}

async fn monitor_history(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((pipeline, monitor)): Path<(String, String)>,
    Query(q): Query<LimitQuery>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read)?;
    let reports = app
        .store
        .monitor_reports(&pipeline, &monitor, Some(q.limit.unwrap_or(20)))
        .map_err(store_error)?;
    Ok(json_response(
        json!({"pipeline": pipeline, "monitor": monitor, "windows": reports}),
    ))
}

async fn alerts(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read)?;
    let recent: Vec<Value> = app
        .metrics
        .recent_alerts
        .lock()
        .map(|r| r.iter().rev().cloned().collect())
        .unwrap_or_default();
    Ok(json_response(json!({"alerts": recent})))
}

async fn admin_log(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<LimitQuery>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read)?;
    let entries = app
        .store
        .admin_log(q.limit.unwrap_or(100))
        .map_err(store_error)?;
    Ok(json_response(json!({"entries": entries})))
}
