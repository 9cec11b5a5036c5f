//! The central side of `keel sync push`: nodes ask how far their audit chain
//! is held here and send the rest in batches, which the store checks record by
//! record (hash, link to the one before) and keeps per node, all or none.
//!
//! `GET /admin/sync/nodes` (read) lists the nodes; `GET /admin/sync/nodes/{node}`
//! (sync) is the cursor a push resumes from; `POST /admin/sync/nodes/{node}/records`
//! (sync) takes a batch; `GET /admin/sync/nodes/{node}/verify` (read) walks a
//! node's chain; `GET /admin/sync/nodes/{node}/records/{seq}` (read) shows one record.

use crate::app::App;
use crate::config::Role;
use crate::http::{ApiError, authorize, read_body};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use keel_store::{Digest, GENESIS_HASH, RawRecord, Skip, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// A batch as a node sends it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushBatch {
    /// The node's pruned prefix, if it pruned records: lets the batch start past a gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Skip>,
    /// Records in seq order, exactly as stored on the node.
    pub records: Vec<RawRecord>,
    /// Input and output payloads the records name, if the node ships them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payloads: Vec<PushPayload>,
}

/// One payload, base64.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushPayload {
    /// `sha256:…` of the bytes.
    pub digest: String,
    /// The bytes, base64 (standard alphabet, padded).
    pub data: String,
}

/// Batches are bigger than inference requests; the body limit is at least this.
const MIN_SYNC_BODY_BYTES: usize = 32 << 20;

/// The sync routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/admin/sync/nodes", get(nodes))
        .route("/admin/sync/nodes/{node}", get(cursor))
        .route("/admin/sync/nodes/{node}/records", post(push))
        .route("/admin/sync/nodes/{node}/verify", get(verify))
        .route("/admin/sync/nodes/{node}/records/{seq}", get(record))
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::SyncConflict { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        StoreError::BadName { .. } => ApiError::bad_request(e.to_string()),
        StoreError::UnknownNode(_) => ApiError::not_found(e.to_string()),
        e => ApiError::internal(format!("store: {e}")),
    }
}

/// Runs store work off the async threads (it reads, hashes and fsyncs).
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(store_error)
}

async fn nodes(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read)?;
    let chains = blocking(&app, |s| s.node_chains()).await?;
    Ok(axum::Json(json!({ "nodes": chains })).into_response())
}

async fn cursor(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(node): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Sync)?;
    let chain = blocking(&app, move |s| s.node_chain(&node).map(|c| (node, c))).await?;
    Ok(axum::Json(match chain {
        (_, Some(c)) => json!({
            "node": c.node, "known": true, "next_seq": c.next_seq, "head_hash": c.head_hash,
            "records": c.records, "lost": c.lost(),
        }),
        (node, None) => json!({
            "node": node, "known": false, "next_seq": 0, "head_hash": GENESIS_HASH,
            "records": 0, "lost": 0,
        }),
    })
    .into_response())
}

async fn push(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(node): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authorize(&app, &headers, Role::Sync)?;
    let limit = app
        .snapshot()
        .config
        .limits
        .body_bytes
        .max(MIN_SYNC_BODY_BYTES);
    let bytes = read_body(body, limit).await?;
    let batch: PushBatch = {
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de)
            .map_err(|e| ApiError::bad_request(format!("{}: {}", e.path(), e.inner())))?
    };
    let mut payloads = Vec::with_capacity(batch.payloads.len());
    for (i, p) in batch.payloads.iter().enumerate() {
        let data = base64::engine::general_purpose::STANDARD
            .decode(&p.data)
            .map_err(|e| ApiError::bad_request(format!("payloads[{i}].data: {e}")))?;
        if Digest::of(&data).as_str() != p.digest {
            return Err(ApiError::bad_request(format!(
                "payloads[{i}]: the data's digest is {}, not {}",
                Digest::of(&data),
                p.digest
            )));
        }
        payloads.push(data);
    }
    let n = batch.records.len();
    let node2 = node.clone();
    let (report, stored) = blocking(&app, move |s| {
        // Payloads first: a record is never held here without what it names
        // when the node sent that too.
        for p in &payloads {
            s.put_payload(p)?;
        }
        let report = s.ingest_node_records(&node2, batch.base.as_ref(), &batch.records)?;
        s.flush()?;
        Ok((report, payloads.len()))
    })
    .await?;
    for (result, count) in [
        ("accepted", report.accepted),
        ("duplicate", report.duplicates),
        ("lost", report.lost),
    ] {
        if count > 0 {
            app.metrics
                .sync_records
                .get_or_create(&vec![
                    ("node", node.clone()),
                    ("result", result.to_string()),
                ])
                .inc_by(count);
        }
    }
    tracing::info!(
        node = %node,
        by = %caller.name,
        records = n,
        accepted = report.accepted,
        duplicates = report.duplicates,
        lost = report.lost,
        payloads = stored,
        next_seq = report.next_seq,
        "audit records pushed"
    );
    let mut v = serde_json::to_value(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Value::Object(m) = &mut v {
        m.insert("payloads".into(), json!(stored));
    }
    Ok(axum::Json(v).into_response())
}

async fn verify(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(node): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read)?;
    let r = blocking(&app, move |s| Ok(s.verify_node(&node))).await?;
    Ok(axum::Json(match r {
        Ok(r) => {
            json!({"ok": true, "records": r.records, "pruned": r.pruned, "head_hash": r.head_hash})
        }
        Err(e @ StoreError::UnknownNode(_)) => return Err(store_error(e)),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    })
    .into_response())
}

async fn record(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((node, seq)): Path<(String, u64)>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers, Role::Read)?;
    let r = blocking(&app, move |s| {
        let rec = s.node_record(&node, seq)?;
        let status = |d: &Digest| s.payload_status(d).map(|p| format!("{p:?}").to_lowercase());
        let payloads = match &rec {
            Some(r) => Some(json!({
                "input": status(&r.input_digest)?,
                "output": r.output_digest.as_ref().map(status).transpose()?,
            })),
            None => None,
        };
        Ok((rec, payloads, node))
    })
    .await?;
    match r {
        (Some(rec), payloads, _) => {
            Ok(axum::Json(json!({"record": rec, "payloads": payloads})).into_response())
        }
        (None, _, node) => Err(ApiError::not_found(format!(
            "node {node} has no record {seq} here"
        ))),
    }
}
