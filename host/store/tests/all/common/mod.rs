//! Helpers shared by the integration tests: realistic records and raw access to the sled database.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    path::Path,
    time::{Duration, Instant},
};

use keel_store::{
    AuditRecord, Digest, FindingEntry, MonitorVerdict, Outcome, PipelineRef, Severity, StageEntry,
    StageRole, layout,
};

/// A record shaped like what the runtime will write: two stages, a validator
/// finding, a monitor verdict with float metrics.
pub fn record(pipeline: &str, i: u64) -> AuditRecord {
    let mut r = AuditRecord::new(
        PipelineRef {
            name: pipeline.into(),
            version: "1.0.0".into(),
            digest: Digest::of(pipeline.as_bytes()),
        },
        Digest::of(format!("input {i}").as_bytes()),
    );
    r.stages = vec![
        StageEntry {
            name: "scale".into(),
            role: StageRole::Stage,
            plugin: "scaler".into(),
            plugin_version: "0.3.1".into(),
            plugin_digest: Digest::of(b"scaler component"),
            config_digest: Digest::of(b"mean = 0"),
            duration_us: 120 + i,
            fuel_used: Some(1_000 + i),
            peak_memory_bytes: Some(2 << 20),
            outcome: Outcome::Ok,
            error: None,
            models: Vec::new(),
        },
        StageEntry {
            name: "range".into(),
            role: StageRole::Validator,
            plugin: "range-check".into(),
            plugin_version: "1.0.0".into(),
            plugin_digest: Digest::of(b"range component"),
            config_digest: Digest::of(b"min = 0"),
            duration_us: 40,
            fuel_used: None,
            peak_memory_bytes: None,
            outcome: Outcome::Ok,
            error: None,
            models: Vec::new(),
        },
    ];
    r.output_digest = Some(Digest::of(format!("output {i}").as_bytes()));
    r.rows_in = 1000 + i;
    r.rows_out = 999 + i;
    r.findings = vec![FindingEntry {
        validator: "range".into(),
        rule: "range".into(),
        column: Some("age".into()),
        row: Some(i),
        severity: Severity::Warning,
        message: "age above 120".into(),
    }];
    r.monitor_verdicts = vec![MonitorVerdict {
        monitor: "drift".into(),
        alert: i.is_multiple_of(3),
        summary: "psi ok".into(),
        metrics: serde_json::json!({ "psi": 0.1 + i as f64 / 3.0, "ks": [0.333_333_333_333_333_3, 1e-300] }),
        window: None,
    }];
    r
}

/// Opens the store's sled database directly, as the store does. Retries
/// briefly: sled's I/O threads release the file a moment after the last handle drops.
pub fn raw_db(dir: &Path) -> sled::Db {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match sled::open(layout::db_path(dir)) {
            Ok(db) => return db,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("raw open: {e}"),
        }
    }
}
