//! Exports of the audit log: JSON Lines (records as stored, with their hashes) and
//! OpenLineage RunEvents (spec 2-0-2), one per line, so existing lineage tools can ingest them.

use std::io::Write;

use serde_json::{Value, json};

use crate::{
    Store,
    audit::{AuditRecord, Outcome},
    error::{Result, StoreError},
    id::run_uuid,
};

/// `producer` of exported OpenLineage events.
pub const OPENLINEAGE_PRODUCER: &str = "https://example.invalid/keel";
/// `schemaURL` of exported OpenLineage events.
pub const OPENLINEAGE_SCHEMA_URL: &str =
    "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// Namespace of Keel jobs and datasets in OpenLineage.
const NAMESPACE: &str = "keel";
const AUDIT_FACET_SCHEMA: &str =
    "https://example.invalid/keel/spec/facets/1-0-0/KeelAuditRunFacet.json";
const ERROR_FACET_SCHEMA: &str = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";

/// The OpenLineage RunEvent for one record. `eventType` is `COMPLETE` for
/// outcome ok and `FAIL` otherwise (a rejected batch produced no trusted
/// output); `runId` is [`run_uuid`] of the record id; datasets are named by
/// digest; the Keel-specific lineage (stages, plugin digests, chain hash)
/// travels in the custom run facet `keel_audit`.
pub fn openlineage_event(r: &AuditRecord) -> Value {
    let dataset = |digest: &str| json!({ "namespace": NAMESPACE, "name": digest, "facets": {} });
    let stages: Vec<Value> = r
        .stages
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "role": s.role,
                "plugin": s.plugin,
                "pluginVersion": s.plugin_version,
                "pluginDigest": s.plugin_digest,
                "configDigest": s.config_digest,
                "durationUs": s.duration_us,
                "outcome": s.outcome,
            })
        })
        .collect();
    let mut facets = json!({
        "keel_audit": {
            "_producer": OPENLINEAGE_PRODUCER,
            "_schemaURL": AUDIT_FACET_SCHEMA,
            "id": r.id,
            "seq": r.seq,
            "hash": r.hash,
            "prevHash": r.prev_hash,
            "outcome": r.outcome,
            "pipelineVersion": r.pipeline.version,
            "pipelineDigest": r.pipeline.digest,
            "rowsIn": r.rows_in,
            "rowsOut": r.rows_out,
            "stages": stages,
            "findings": r.findings.len(),
            "alerts": r.monitor_verdicts.iter().filter(|v| v.alert).count(),
        }
    });
    if r.outcome != Outcome::Ok {
        let message = r
            .error
            .clone()
            .or_else(|| r.stages.iter().find_map(|s| s.error.clone()))
            .unwrap_or_else(|| format!("invocation ended with outcome {}", r.outcome));
        facets["errorMessage"] = json!({
            "_producer": OPENLINEAGE_PRODUCER,
            "_schemaURL": ERROR_FACET_SCHEMA,
            "message": message,
            "programmingLanguage": "wasm",
        });
    }
    json!({
        "eventType": if r.outcome == Outcome::Ok { "COMPLETE" } else { "FAIL" },
        "eventTime": r.time,
        "run": { "runId": run_uuid(&r.id), "facets": facets },
        "job": { "namespace": NAMESPACE, "name": r.pipeline.name, "facets": {} },
        "inputs": [dataset(r.input_digest.as_str())],
        "outputs": r.output_digest.iter().map(|d| dataset(d.as_str())).collect::<Vec<_>>(),
        "producer": OPENLINEAGE_PRODUCER,
        "schemaURL": OPENLINEAGE_SCHEMA_URL,
    })
}

fn write_line(w: &mut impl Write, value: &impl serde::Serialize) -> Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    w.write_all(&line).map_err(StoreError::Export)
}

impl Store {
    /// Writes every record, oldest first, as one JSON object per line (with
    /// `seq`, `prev_hash` and `hash`). Returns the number written.
    pub fn export_jsonl(&self, mut w: impl Write) -> Result<u64> {
        let mut n = 0;
        for r in self.audit_iter() {
            write_line(&mut w, &r?)?;
            n += 1;
        }
        w.flush().map_err(StoreError::Export)?;
        Ok(n)
    }

    /// Writes every record, oldest first, as one OpenLineage RunEvent per line
    /// (see [`openlineage_event`]). Returns the number written.
    pub fn export_openlineage(&self, mut w: impl Write) -> Result<u64> {
        let mut n = 0;
        for r in self.audit_iter() {
            write_line(&mut w, &openlineage_event(&r?))?;
            n += 1;
        }
        w.flush().map_err(StoreError::Export)?;
        Ok(n)
    }
}
