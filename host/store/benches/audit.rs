//! Benchmark: audit records per second with durability on (each `append` returns only after
//! its group is flushed and fdatasync'd), one appender versus many (group commit).
//!
//! The last two cases run under an audit cap that keeps pruning.
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
    /// An audit cap small enough that the run keeps pruning (`keel audit cap`).
    cap: Option<u64>,
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
    store.set_audit_cap(case.cap)?;
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
    let verified = store.verify()?;
    let pruned = if case.cap.is_some() {
        format!(
            ", capped at {} KiB: {} records pruned, {} held",
            case.cap.unwrap_or(0) >> 10,
            verified.pruned,
            verified.records
        )
    } else {
        String::new()
    };
    println!(
        "{:>2} appender(s), {:<22} {:>7} records in {:.2} s = {:>8.0} records/s, {:>6} flushes, {:.3} flushes/record, mean {:.2} ms/append{}",
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
        pruned,
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
            cap: None,
        },
        Case {
            appenders: 8,
            sync_data: true,
            cap: None,
        },
        Case {
            appenders: 32,
            sync_data: true,
            cap: None,
        },
        Case {
            appenders: 1,
            sync_data: false,
            cap: None,
        },
        Case {
            appenders: 8,
            sync_data: false,
            cap: None,
        },
        Case {
            appenders: 1,
            sync_data: true,
            cap: Some(1 << 20),
        },
        Case {
            appenders: 8,
            sync_data: true,
            cap: Some(1 << 20),
        },
    ] {
        run(&case, secs)?;
    }
    sync_ingest()?;
    Ok(())
}

/// The central side of `keel sync push`: reading a node's records as stored,
/// checking and keeping them in batches of 256, and walking the copy.
fn sync_ingest() -> Result<(), Box<dyn Error>> {
    const N: u64 = 20_000;
    let (nd, cd) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let node = Store::open(nd.path())?;
    for chunk in 0..N / 1000 {
        node.append_batch((0..1000).map(|i| record(chunk * 1000 + i)).collect())?;
    }
    let central = Store::open(cd.path())?;
    let started = Instant::now();
    let mut from = 0;
    while from < N {
        let batch = node.audit_raw(from, 256, 4 << 20)?;
        from = central.ingest_node_records("bench", None, &batch)?.next_seq;
    }
    let ingest = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let v = central.verify_node("bench")?;
    let verify = started.elapsed().as_secs_f64();
    println!(
        "sync: {N} records read, checked and kept centrally in batches of 256 (one fsync each) in {ingest:.2} s = {:.0} records/s; verifying the copy: {:.0} records/s ({} records)",
        N as f64 / ingest,
        v.records as f64 / verify,
        v.records
    );
    Ok(())
}
