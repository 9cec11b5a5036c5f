//! Audit chain tests on a real sled store: appends, queries, tamper detection, group commit, exports.

// Test code: unwrap/panic are how a test fails (as in the workspace's other integration tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::{collections::HashSet, sync::Arc, time::Duration};

use common::{raw_db, record};
use keel_store::{
    AuditFilter, ChainBreak, Digest, GENESIS_HASH, OPENLINEAGE_SCHEMA_URL, Outcome, Store,
    StoreError, layout, parse_rfc3339,
};

fn store_with(n: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for i in 0..n {
        let r = store
            .append(record(if i % 2 == 0 { "credit" } else { "churn" }, i))
            .unwrap();
        assert_eq!(r.seq, i);
    }
    (dir, store)
}

fn chain_error(store: &Store) -> keel_store::ChainError {
    match store.verify() {
        Err(StoreError::Chain(e)) => e,
        other => panic!("expected a chain error, got {other:?}"),
    }
}

#[test]
fn append_assigns_seq_links_hashes_and_round_trips() {
    let (dir, store) = store_with(5);
    let first = store.audit_by_seq(0).unwrap().unwrap();
    assert_eq!(first.prev_hash, GENESIS_HASH);
    let second = store.audit_by_seq(1).unwrap().unwrap();
    assert_eq!(second.prev_hash, first.hash);
    // Floats in metrics survive the round trip and do not disturb verification.
    assert_eq!(first, store.audit_get(&first.id).unwrap().unwrap());
    let report = store.verify().unwrap();
    assert_eq!(report.records, 5);
    assert_eq!(
        report.head_hash,
        store.audit_by_seq(4).unwrap().unwrap().hash
    );
    drop(store);

    // Reopen: the chain continues from the head.
    let store = Store::open(dir.path()).unwrap();
    let r = store.append(record("credit", 5)).unwrap();
    assert_eq!(r.seq, 5);
    assert_eq!(
        store.audit_by_seq(5).unwrap().unwrap().prev_hash,
        report.head_hash
    );
    assert_eq!(store.verify().unwrap().records, 6);
    assert_eq!(store.audit_len().unwrap(), 6);
}

#[test]
fn caller_ids_are_kept_and_duplicates_refused() {
    let (_dir, store) = store_with(0);
    let mut r = record("credit", 0);
    r.id = "run-0001".into();
    let receipt = store.append(r.clone()).unwrap();
    assert_eq!(receipt.id, "run-0001");
    assert!(
        matches!(store.append(r.clone()), Err(StoreError::DuplicateId(id)) if id == "run-0001")
    );
    // A batch with a duplicate inside is refused whole, and consumes no seq.
    let mut a = record("credit", 1);
    a.id = "run-0002".into();
    let b = a.clone();
    assert!(matches!(
        store.append_batch(vec![a.clone(), b]),
        Err(StoreError::DuplicateId(_))
    ));
    let mut empty_id = record("credit", 2);
    empty_id.id.clear();
    let generated = store.append(empty_id).unwrap();
    assert_eq!(generated.seq, 1);
    assert_eq!(generated.id.len(), 26);
    let mut bad_time = record("credit", 3);
    bad_time.time = "last tuesday".into();
    assert!(matches!(
        store.append(bad_time),
        Err(StoreError::BadTime(_))
    ));
    assert_eq!(store.verify().unwrap().records, 2);
    assert!(store.audit_get("nope").unwrap().is_none());
}

#[test]
fn audit_log_filters_newest_first() {
    let (_dir, store) = store_with(0);
    let times = [
        "2026-01-01T00:00:00Z",
        "2026-01-02T00:00:00Z",
        "2026-01-03T00:00:00Z",
        "2026-01-04T00:00:00Z",
    ];
    for (i, t) in times.iter().enumerate() {
        let mut r = record(if i % 2 == 0 { "credit" } else { "churn" }, i as u64);
        r.time = (*t).into();
        if i == 2 {
            r.outcome = Outcome::Trap;
        }
        store.append(r).unwrap();
    }
    let all = store.audit_log(&AuditFilter::default()).unwrap();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 2, 1, 0]);
    let credit = store
        .audit_log(&AuditFilter {
            pipeline: Some("credit".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(credit.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 0]);
    let since = store
        .audit_log(&AuditFilter {
            since: Some(parse_rfc3339("2026-01-02").unwrap()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(since.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 2, 1]);
    let traps = store
        .audit_log(&AuditFilter {
            outcome: Some(Outcome::Trap),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(traps.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
    let limited = store
        .audit_log(&AuditFilter {
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(limited.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 2]);
}

/// Appends records, closes the store, lets `tamper` change the raw sled
/// trees, reopens and returns the chain error.
fn tampered(n: u64, tamper: impl FnOnce(&sled::Db)) -> keel_store::ChainError {
    let (dir, store) = store_with(n);
    store.verify().unwrap();
    drop(store);
    {
        let db = raw_db(dir.path());
        tamper(&db);
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    chain_error(&store)
}

fn audit_value(db: &sled::Db, seq: u64) -> Vec<u8> {
    db.open_tree(layout::AUDIT)
        .unwrap()
        .get(layout::seq_key(seq))
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Rewrites the JSON body of a stored record, keeping (or recomputing) its hash prefix.
fn edit(db: &sled::Db, seq: u64, rehash: bool) {
    let audit = db.open_tree(layout::AUDIT).unwrap();
    let v = audit_value(db, seq);
    let (hash, body) = v.split_at(layout::AUDIT_HASH_LEN);
    let mut json: serde_json::Value = serde_json::from_slice(body).unwrap();
    json["rows_out"] = serde_json::json!(7);
    let body = serde_json::to_vec(&json).unwrap();
    let hash = if rehash {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(json["prev_hash"].as_str().unwrap().as_bytes());
        h.update(&body);
        hex::encode(h.finalize()).into_bytes()
    } else {
        hash.to_vec()
    };
    audit
        .insert(layout::seq_key(seq), [hash, body].concat())
        .unwrap();
}

#[test]
fn verify_detects_an_edited_record() {
    let e = tampered(6, |db| edit(db, 3, false));
    assert_eq!((e.seq, e.reason.clone()), (3, ChainBreak::Edited));
    assert!(e.id.is_some());
    assert!(e.to_string().contains("seq 3"), "{e}");
}

#[test]
fn verify_detects_an_edited_and_rehashed_record_at_the_next_link() {
    let e = tampered(6, |db| edit(db, 2, true));
    assert_eq!((e.seq, e.reason), (3, ChainBreak::BrokenLink));
}

#[test]
fn verify_detects_a_deleted_record() {
    let e = tampered(6, |db| {
        db.open_tree(layout::AUDIT)
            .unwrap()
            .remove(layout::seq_key(2))
            .unwrap();
    });
    assert_eq!((e.seq, e.reason), (2, ChainBreak::Missing));
}

#[test]
fn verify_detects_a_deleted_last_record() {
    let e = tampered(6, |db| {
        db.open_tree(layout::AUDIT)
            .unwrap()
            .remove(layout::seq_key(5))
            .unwrap();
    });
    assert_eq!((e.seq, e.reason), (5, ChainBreak::Missing));
}

#[test]
fn verify_detects_swapped_records() {
    let e = tampered(6, |db| {
        let audit = db.open_tree(layout::AUDIT).unwrap();
        let (a, b) = (audit_value(db, 1), audit_value(db, 4));
        audit.insert(layout::seq_key(1), b).unwrap();
        audit.insert(layout::seq_key(4), a).unwrap();
    });
    assert_eq!((e.seq, e.reason), (1, ChainBreak::Reordered { found: 4 }));
}

#[test]
fn verify_detects_swapped_records_renumbered() {
    // A cleverer swap that also rewrites each body's seq (keeping the old hashes) is still caught.
    let e = tampered(6, |db| {
        let audit = db.open_tree(layout::AUDIT).unwrap();
        for (from, to) in [(1u64, 2u64), (2, 1)] {
            let v = audit_value(db, from);
            let (hash, body) = v.split_at(layout::AUDIT_HASH_LEN);
            let mut json: serde_json::Value = serde_json::from_slice(body).unwrap();
            json["seq"] = serde_json::json!(to);
            audit
                .insert(
                    layout::seq_key(to),
                    [hash.to_vec(), serde_json::to_vec(&json).unwrap()].concat(),
                )
                .unwrap();
        }
    });
    assert_eq!((e.seq, e.reason), (1, ChainBreak::Edited));
}

#[test]
fn verify_detects_a_record_appended_behind_the_stores_back() {
    let e = tampered(3, |db| {
        let v = audit_value(db, 2);
        db.open_tree(layout::AUDIT)
            .unwrap()
            .insert(layout::seq_key(3), v)
            .unwrap();
    });
    assert_eq!(e.seq, 3);
    assert!(matches!(e.reason, ChainBreak::HeadMismatch(_)), "{e}");
}

#[test]
fn group_commit_is_contiguous_and_batches_flushes() {
    const THREADS: u64 = 8;
    const EACH: u64 = 40;
    let (_dir, store) = store_with(0);
    let store = Arc::new(store);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|i| store.append(record(&format!("p{t}"), i)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let receipts: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let total = THREADS * EACH;
    let seqs: HashSet<u64> = receipts.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (0..total).collect::<HashSet<_>>());
    for r in &receipts {
        let stored = store.audit_get(&r.id).unwrap().unwrap();
        assert_eq!((stored.seq, &stored.hash), (r.seq, &r.hash));
    }
    // Within one appender, seqs increase: queue order is preserved.
    for t in 0..THREADS {
        let name = format!("p{t}");
        let mut mine: Vec<_> = store
            .audit_iter()
            .map(Result::unwrap)
            .filter(|r| r.pipeline.name == name)
            .collect();
        mine.sort_by_key(|r| r.seq);
        let inputs: Vec<_> = mine.iter().map(|r| r.rows_in).collect();
        assert!(inputs.windows(2).all(|w| w[0] < w[1]), "{name}: {inputs:?}");
    }
    assert_eq!(store.verify().unwrap().records, total);
    let stats = store.audit_stats();
    assert_eq!(stats.records, total);
    assert!(
        stats.flushes * 3 <= total,
        "{} flushes for {total} records: group commit is not batching",
        stats.flushes
    );
    eprintln!("group commit: {total} records in {} flushes", stats.flushes);
}

#[test]
fn verify_while_appending_never_reports_a_false_break() {
    let (_dir, store) = store_with(10);
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..60 {
                    store.append(record(&format!("w{t}"), i)).unwrap();
                }
            })
        })
        .collect();
    let mut runs = 0;
    let mut last = 0;
    while !writers.iter().all(|w| w.is_finished()) || runs < 3 {
        let r = store.verify().unwrap();
        assert!(r.records >= last, "verified {} after {last}", r.records);
        last = r.records;
        runs += 1;
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(store.verify().unwrap().records, 250);
    eprintln!("{runs} verify runs during appends");
}

#[test]
fn append_batch_is_atomic_and_contiguous() {
    let (_dir, store) = store_with(2);
    let receipts = store
        .append_batch((10..15).map(|i| record("credit", i)).collect())
        .unwrap();
    assert_eq!(
        receipts.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [2, 3, 4, 5, 6]
    );
    assert!(store.append_batch(Vec::new()).unwrap().is_empty());
    let stats = store.audit_stats();
    assert_eq!((stats.records, stats.flushes), (7, 3));
    store.verify().unwrap();
}

#[test]
fn store_drop_with_appenders_in_flight_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let acked = {
        let store = Store::open(dir.path()).unwrap();
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|i| store.append(record("x", t * 100 + i)).unwrap().id)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        drop(store);
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    };
    std::thread::sleep(Duration::from_millis(10));
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.verify().unwrap().records, 100);
    for id in acked {
        assert!(store.audit_get(&id).unwrap().is_some());
    }
}

#[test]
fn exports_jsonl_and_openlineage() {
    let (_dir, store) = store_with(0);
    store.append(record("credit", 0)).unwrap();
    let mut failed = record("credit", 1);
    failed.outcome = Outcome::Timeout;
    failed.output_digest = None;
    failed.stages[0].outcome = Outcome::Timeout;
    failed.stages[0].error = Some("deadline of 50 ms exceeded".into());
    store.append(failed).unwrap();

    let mut jsonl = Vec::new();
    assert_eq!(store.export_jsonl(&mut jsonl).unwrap(), 2);
    let lines: Vec<serde_json::Value> = String::from_utf8(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
    assert_eq!(lines[1]["outcome"], "timeout");
    assert_eq!(lines[0]["stages"][1]["role"], "validator");

    let mut ol = Vec::new();
    assert_eq!(store.export_openlineage(&mut ol).unwrap(), 2);
    let events: Vec<serde_json::Value> = String::from_utf8(ol)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (e, r) in events.iter().zip(store.audit_iter().map(Result::unwrap)) {
        for key in [
            "eventType",
            "eventTime",
            "run",
            "job",
            "inputs",
            "outputs",
            "producer",
            "schemaURL",
        ] {
            assert!(e.get(key).is_some(), "missing {key}: {e}");
        }
        assert_eq!(e["schemaURL"], OPENLINEAGE_SCHEMA_URL);
        assert_eq!(e["eventTime"], r.time.as_str());
        assert_eq!(e["job"]["namespace"], "keel");
        assert_eq!(e["job"]["name"], "credit");
        let run_id = e["run"]["runId"].as_str().unwrap();
        assert_eq!(run_id, keel_store::run_uuid(&r.id));
        assert_eq!(
            run_id.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert_eq!(e["inputs"][0]["name"], r.input_digest.as_str());
        assert_eq!(e["run"]["facets"]["keel_audit"]["hash"], r.hash.as_str());
        assert!(e["run"]["facets"]["keel_audit"]["_producer"].is_string());
    }
    assert_eq!(events[0]["eventType"], "COMPLETE");
    assert_eq!(events[0]["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(events[1]["eventType"], "FAIL");
    assert_eq!(events[1]["outputs"].as_array().unwrap().len(), 0);
    assert_eq!(
        events[1]["run"]["facets"]["errorMessage"]["message"],
        "deadline of 50 ms exceeded"
    );
}

#[test]
fn verify_on_an_empty_store() {
    let (_dir, store) = store_with(0);
    let r = store.verify().unwrap();
    assert_eq!((r.records, r.head_hash.as_str()), (0, GENESIS_HASH));
    let _ = Digest::of(b"");
}

#[test]
fn append_with_calls_back_once_durable_and_groups_waiting_records() {
    let (dir, store) = store_with(0);
    let (tx, rx) = std::sync::mpsc::channel();
    let n = 200u64;
    for i in 0..n {
        let tx = tx.clone();
        store.append_with(record("credit", i), move |r| {
            tx.send(r).unwrap();
        });
    }
    let mut seqs: Vec<u64> = (0..n).map(|_| rx.recv().unwrap().unwrap().seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..n).collect::<Vec<_>>());
    // Submitted without waiting, they share flushes.
    let stats = store.audit_stats();
    assert_eq!(stats.records, n);
    assert!(
        stats.flushes < n,
        "{} flushes for {n} records",
        stats.flushes
    );
    // A duplicate id fails through the callback, not silently.
    let mut dup = record("credit", 0);
    dup.id = store.audit_by_seq(0).unwrap().unwrap().id;
    store.append_with(dup, move |r| tx.send(r).unwrap());
    assert!(matches!(
        rx.recv().unwrap(),
        Err(StoreError::DuplicateId(_))
    ));
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.verify().unwrap().records, n);
}
