//! Benchmark: audit records per second with durability on (each `append` returns only after
//! its group is flushed and fdatasync'd), one appender versus many (group commit).
//!
//! `cargo bench -p keel-store --bench audit`; `KEEL_BENCH_SECS` sets the time per case (default 3).

use std::{
    error::Error,
    sync::Arc,
    time::{Duration, Instant},
};

use keel_store::{
    AuditRecord, Digest, Outcome, PipelineRef, StageEntry, StageRole, Store, StoreOptions,
};

fn record(i: u64) -> AuditRecord {
    let mut r = AuditRecord::new(
        PipelineRef {
            name: "bench".into(),
            version: "1.0.0".into(),
            digest: Digest::of(b"bench pipeline"),
        },
        Digest::of(&i.to_le_bytes()),
    );
    r.stages = (0..3)
        .map(|s| StageEntry {
            name: format!("stage-{s}"),
            role: StageRole::Stage,
            plugin: format!("plugin-{s}"),
            plugin_version: "1.0.0".into(),
            plugin_digest: Digest::of(format!("plugin {s}").as_bytes()),
            config_digest: Digest::of(format!("config {s}").as_bytes()),
            duration_us: 100 + s,
            fuel_used: None,
            peak_memory_bytes: Some(1 << 20),
            outcome: Outcome::Ok,
            error: None,
            models: Vec::new(),
        })
        .collect();
    r.output_digest = Some(Digest::of(&(!i).to_le_bytes()));
    r.rows_in = 1000;
    r.rows_out = 1000;
    r
}

struct Case {
    appenders: u64,
    sync_data: bool,
}

fn run(case: &Case, secs: f64) -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open_with(
        dir.path(),
        StoreOptions {
            sync_data: case.sync_data,
            ..Default::default()
        },
    )?);
    for i in 0..20 {
        store.append(record(i))?;
    }
    let before = store.audit_stats();
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let workers: Vec<_> = (0..case.appenders)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || -> Result<u64, keel_store::StoreError> {
                let mut n = 0;
                while Instant::now() < stop {
                    store.append(record(t << 32 | n))?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.join().map_err(|_| "appender panicked")??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = store.audit_stats();
    let flushes = after.flushes - before.flushes;
    store.verify()?;
    println!(
        "{:>2} appender(s), {:<22} {:>7} records in {:.2} s = {:>8.0} records/s, {:>6} flushes, {:.3} flushes/record, mean {:.2} ms/append",
        case.appenders,
        if case.sync_data {
            "sled flush + fdatasync:"
        } else {
            "sled flush only:"
        },
        total,
        elapsed,
        total as f64 / elapsed,
        flushes,
        flushes as f64 / total.max(1) as f64,
        elapsed * 1000.0 * case.appenders as f64 / total.max(1) as f64,
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let secs: f64 = std::env::var("KEEL_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    println!(
        "audit append throughput, durability on (append returns after the flush), {secs} s per case"
    );
    for case in [
        Case {
            appenders: 1,
            sync_data: true,
        },
        Case {
            appenders: 8,
            sync_data: true,
        },
        Case {
            appenders: 32,
            sync_data: true,
        },
        Case {
            appenders: 1,
            sync_data: false,
        },
        Case {
            appenders: 8,
            sync_data: false,
        },
    ] {
        run(&case, secs)?;
    }
    Ok(())
}
