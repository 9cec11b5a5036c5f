//! The daemon's additions on a real sled store: the admin log chain (order, concurrency,
//! tampering, reopen), serving settings, pipeline version lifecycle, and stores written before them.

// Test code: unwrap/panic are how a test fails (as in the workspace's other integration tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::HashSet;

use common::{raw_db, record};
use keel_store::{
    AdminEntry, ChainBreak, ChainError, FORMAT_VERSION, GENESIS_HASH, State, Store, StoreError,
    layout, parse_rfc3339,
};
use sha2::Digest as _;

fn entry(actor: &str, action: &str, target: &str) -> AdminEntry {
    AdminEntry {
        seq: 0,
        time: String::new(),
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        detail: serde_json::json!({"share": 0.1, "versions": ["1.0.0", "1.1.0"]}),
        outcome: "ok".into(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

fn store_with_admin(n: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for i in 0..n {
        let e = store
            .append_admin(entry("ops", "traffic.set", &format!("p{i}")))
            .unwrap();
        assert_eq!(e.seq, i);
    }
    (dir, store)
}

fn sha_hex(prev: &str, body: &[u8]) -> String {
    let mut h = sha2::Sha256::new();
    h.update(prev.as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

fn admin_chain_error(store: &Store) -> ChainError {
    match store.verify_admin() {
        Err(StoreError::AdminChain(e)) => e,
        other => panic!("expected an admin chain error, got {other:?}"),
    }
}

#[test]
fn append_admin_assigns_seq_time_and_chain_and_lists_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.admin_log(10).unwrap().is_empty());
    assert_eq!(store.verify_admin().unwrap().records, 0);
    assert_eq!(store.verify_admin().unwrap().head_hash, GENESIS_HASH);

    // Whatever the caller puts in seq, prev_hash and hash is overwritten.
    let mut first = entry("alice", "plugin.add", "scaler@1.2.0");
    first.seq = 99;
    first.prev_hash = "forged".into();
    first.hash = "forged".into();
    let a = store.append_admin(first).unwrap();
    assert_eq!((a.seq, a.prev_hash.as_str()), (0, GENESIS_HASH));
    parse_rfc3339(&a.time).unwrap();

    let mut second = entry("local", "pipeline.deploy", "penguins@2");
    second.time = "2026-01-31T12:00:00Z".into();
    second.outcome = "spec is invalid".into();
    let b = store.append_admin(second).unwrap();
    assert_eq!((b.seq, b.time.as_str()), (1, "2026-01-31T12:00:00Z"));
    assert_eq!(b.prev_hash, a.hash);

    let mut bad = entry("alice", "traffic.set", "penguins");
    bad.time = "yesterday".into();
    assert!(matches!(
        store.append_admin(bad),
        Err(StoreError::BadTime(_))
    ));

    for i in 2..5 {
        store
            .append_admin(entry("bob", "traffic.promote", &format!("p{i}")))
            .unwrap();
    }
    assert_eq!(store.admin_len().unwrap(), 5);
    let log = store.admin_log(3).unwrap();
    assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 3, 2]);
    assert!(store.admin_log(0).unwrap().is_empty());
    let all = store.admin_log(usize::MAX).unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[3], b);
    assert_eq!(all[4], a);
    for w in all.windows(2) {
        assert_eq!(w[0].prev_hash, w[1].hash);
    }
    let report = store.verify_admin().unwrap();
    assert_eq!(report.records, 5);
    assert_eq!(report.head_hash, all[0].hash);
    // The audit chain is a separate chain.
    assert_eq!(store.verify().unwrap().records, 0);

    // On disk: hash || body, with hash = hex(sha256(prev_hash || body)) over those exact bytes.
    drop(store);
    let db = raw_db(dir.path());
    let tree = db.open_tree(layout::ADMIN_LOG).unwrap();
    let mut prev = GENESIS_HASH.to_owned();
    for (seq, item) in tree.iter().enumerate() {
        let (k, v) = item.unwrap();
        assert_eq!(layout::decode_seq_key(&k), Some(seq as u64));
        let (hash, body) = v.split_at(layout::AUDIT_HASH_LEN);
        let hash = std::str::from_utf8(hash).unwrap();
        assert_eq!(hash, sha_hex(&prev, body));
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert!(
            json.get("hash").is_none(),
            "the body does not hold its own hash"
        );
        assert_eq!(json["prev_hash"], prev.as_str());
        prev = hash.to_owned();
    }
}

#[test]
fn concurrent_appends_keep_seqs_contiguous_next_to_audit_appends() {
    const THREADS: u64 = 8;
    const EACH: u64 = 25;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    std::thread::scope(|sc| {
        for t in 0..THREADS {
            let store = store.clone();
            sc.spawn(move || {
                for i in 0..EACH {
                    store
                        .append_admin(entry(&format!("t{t}"), "traffic.set", &format!("{i}")))
                        .unwrap();
                }
            });
        }
        // The audit committer writes its own head to `meta` at the same time.
        let store = store.clone();
        sc.spawn(move || {
            for i in 0..50 {
                store.append(record("credit", i)).unwrap();
            }
        });
    });
    let n = THREADS * EACH;
    let log = store.admin_log(usize::MAX).unwrap();
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (0..n).rev().collect::<Vec<_>>()
    );
    let distinct: HashSet<(String, String)> = log
        .iter()
        .map(|e| (e.actor.clone(), e.target.clone()))
        .collect();
    assert_eq!(distinct.len() as u64, n, "no entry lost or written twice");
    assert_eq!(store.admin_len().unwrap(), n);
    assert_eq!(store.verify_admin().unwrap().records, n);
    assert_eq!(store.verify().unwrap().records, 50);
}

#[test]
fn the_admin_log_survives_reopen_and_continues_the_chain() {
    let (dir, store) = store_with_admin(4);
    let before = store.admin_log(usize::MAX).unwrap();
    let head = store.verify_admin().unwrap().head_hash;
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.admin_log(usize::MAX).unwrap(), before);
    assert_eq!(store.verify_admin().unwrap().head_hash, head);
    let next = store
        .append_admin(entry("ops", "reload", "config"))
        .unwrap();
    assert_eq!((next.seq, next.prev_hash.as_str()), (4, head.as_str()));
    assert_eq!(store.verify_admin().unwrap().records, 5);
}

/// Appends `n` admin entries (and a few audit records), closes the store,
/// lets `tamper` change the raw sled trees, reopens and returns the admin chain error.
fn tampered(n: u64, tamper: impl FnOnce(&sled::Db)) -> ChainError {
    let (dir, store) = store_with_admin(n);
    for i in 0..3 {
        store.append(record("credit", i)).unwrap();
    }
    store.verify_admin().unwrap();
    drop(store);
    {
        let db = raw_db(dir.path());
        tamper(&db);
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    // Tampering with one chain says nothing about the other.
    assert_eq!(store.verify().unwrap().records, 3);
    admin_chain_error(&store)
}

fn admin_tree(db: &sled::Db) -> sled::Tree {
    db.open_tree(layout::ADMIN_LOG).unwrap()
}

fn admin_value(db: &sled::Db, seq: u64) -> Vec<u8> {
    admin_tree(db)
        .get(layout::seq_key(seq))
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Rewrites who did it in a stored entry, keeping (or recomputing) its hash prefix.
fn edit(db: &sled::Db, seq: u64, rehash: bool) {
    let v = admin_value(db, seq);
    let (hash, body) = v.split_at(layout::AUDIT_HASH_LEN);
    let body = String::from_utf8(body.to_vec())
        .unwrap()
        .replace("\"ops\"", "\"eve\"");
    assert!(body.contains("\"eve\""));
    let hash = if rehash {
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        sha_hex(json["prev_hash"].as_str().unwrap(), body.as_bytes()).into_bytes()
    } else {
        hash.to_vec()
    };
    admin_tree(db)
        .insert(layout::seq_key(seq), [hash, body.into_bytes()].concat())
        .unwrap();
}

#[test]
fn verify_admin_names_an_edited_entry() {
    let e = tampered(5, |db| edit(db, 1, false));
    assert_eq!((e.seq, e.reason.clone()), (1, ChainBreak::Edited));
    assert_eq!(e.id, None);
    let msg = StoreError::AdminChain(e).to_string();
    assert!(
        msg.contains("admin log broken at seq 1") && msg.contains("edited"),
        "{msg}"
    );
}

#[test]
fn verify_admin_finds_an_edited_and_rehashed_entry_at_the_next_link() {
    let e = tampered(5, |db| edit(db, 2, true));
    assert_eq!((e.seq, e.reason), (3, ChainBreak::BrokenLink));
}

#[test]
fn verify_admin_finds_deleted_entries() {
    let e = tampered(5, |db| {
        admin_tree(db).remove(layout::seq_key(2)).unwrap();
    });
    assert_eq!((e.seq, e.reason), (2, ChainBreak::Missing));
    let e = tampered(5, |db| {
        admin_tree(db).remove(layout::seq_key(4)).unwrap();
    });
    assert_eq!((e.seq, e.reason), (4, ChainBreak::Missing));
}

#[test]
fn verify_admin_finds_swapped_entries() {
    let e = tampered(5, |db| {
        let (a, b) = (admin_value(db, 1), admin_value(db, 3));
        admin_tree(db).insert(layout::seq_key(1), b).unwrap();
        admin_tree(db).insert(layout::seq_key(3), a).unwrap();
    });
    assert_eq!((e.seq, e.reason), (1, ChainBreak::Reordered { found: 3 }));
}

#[test]
fn verify_admin_finds_an_entry_appended_behind_the_stores_back() {
    let e = tampered(3, |db| {
        let v = admin_value(db, 2);
        admin_tree(db).insert(layout::seq_key(3), v).unwrap();
    });
    assert_eq!(e.seq, 3);
    assert!(matches!(e.reason, ChainBreak::HeadMismatch(_)), "{e:?}");
}

#[test]
fn verify_admin_finds_a_removed_head() {
    // Entries without a head were not written by the store.
    let e = tampered(3, |db| {
        db.open_tree(layout::META)
            .unwrap()
            .remove(layout::ADMIN_HEAD_KEY)
            .unwrap();
    });
    assert_eq!(e.seq, 0);
    assert!(matches!(e.reason, ChainBreak::HeadMismatch(_)), "{e:?}");
}

#[test]
fn serving_settings_round_trip_sorted_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.serving("penguins").unwrap(), None);
        assert!(store.serving_all().unwrap().is_empty());
        store
            .put_serving("penguins", br#"{"stable":"1.0.0"}"#)
            .unwrap();
        store.put_serving("credit", b"{}").unwrap();
        store
            .put_serving("penguins", br#"{"stable":"1.1.0","history":["1.0.0"]}"#)
            .unwrap();
        assert!(matches!(
            store.put_serving("", b"{}"),
            Err(StoreError::BadName { .. })
        ));
        assert!(matches!(
            store.put_serving("a@1", b"{}"),
            Err(StoreError::BadName { .. })
        ));
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.serving("penguins").unwrap().unwrap(),
        br#"{"stable":"1.1.0","history":["1.0.0"]}"#
    );
    let all = store.serving_all().unwrap();
    assert_eq!(
        all.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["credit", "penguins"]
    );
    assert_eq!(all[0].1, b"{}");
}

#[test]
fn pipeline_versions_retire_without_changing_their_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let spec = "name = \"penguins\"";
    match store.set_pipeline_state("penguins", "1", State::Retired) {
        Err(e @ StoreError::UnknownPipeline(_)) => {
            assert!(e.to_string().contains("penguins@1"), "{e}");
        }
        other => panic!("expected UnknownPipeline, got {other:?}"),
    }
    let digest = store.put_pipeline("penguins", "1", spec, &[]).unwrap();
    store.put_pipeline("penguins", "2", spec, &[]).unwrap();
    let r = store.get_pipeline("penguins", Some("1")).unwrap().unwrap();
    assert_eq!(r.state, State::Active);

    store
        .set_pipeline_state("penguins", "1", State::Deprecated)
        .unwrap();
    store
        .set_pipeline_state("penguins", "1", State::Retired)
        .unwrap();
    // Again: a no-op, not an error.
    store
        .set_pipeline_state("penguins", "1", State::Retired)
        .unwrap();
    let retired = store.get_pipeline("penguins", Some("1")).unwrap().unwrap();
    assert_eq!(retired.state, State::Retired);
    assert_eq!((&retired.digest, &retired.added_at), (&digest, &r.added_at));

    // Redeploying the same version is a no-op that keeps it retired.
    assert_eq!(
        store.put_pipeline("penguins", "1", spec, &[]).unwrap(),
        digest
    );
    assert_eq!(
        store
            .get_pipeline("penguins", Some("1"))
            .unwrap()
            .unwrap()
            .state,
        State::Retired
    );
    match store.set_pipeline_state("penguins", "1", State::Active) {
        Err(e @ StoreError::PipelineRetiredIsFinal { .. }) => {
            assert!(e.to_string().contains("pipeline penguins@1"), "{e}");
        }
        other => panic!("expected PipelineRetiredIsFinal, got {other:?}"),
    }
    assert!(matches!(
        store.put_pipeline("penguins", "1", "name = \"other\"", &[]),
        Err(StoreError::PipelineImmutable { .. })
    ));
    // The other version is untouched.
    let states: Vec<(String, State)> = store
        .list_pipelines()
        .unwrap()
        .into_iter()
        .map(|p| (p.version, p.state))
        .collect();
    assert_eq!(
        states,
        [("1".into(), State::Retired), ("2".into(), State::Active)]
    );
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store
            .get_pipeline("penguins", Some("1"))
            .unwrap()
            .unwrap()
            .state,
        State::Retired
    );
}

#[test]
fn a_store_written_before_these_additions_opens_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let digest = {
        let store = Store::open(dir.path()).unwrap();
        store.append(record("credit", 0)).unwrap();
        store
            .put_pipeline("penguins", "1", "name = \"penguins\"", &[])
            .unwrap()
    };
    // Make it look like a store from before: no admin_log or serving tree, no
    // admin head, and pipeline records without a state field.
    {
        let db = raw_db(dir.path());
        assert!(db.drop_tree(layout::ADMIN_LOG).unwrap());
        assert!(db.drop_tree(layout::SERVING).unwrap());
        let meta = db.open_tree(layout::META).unwrap();
        meta.remove(layout::ADMIN_HEAD_KEY).unwrap();
        let pipelines = db.open_tree(layout::PIPELINES).unwrap();
        let key = b"penguins@1";
        let mut json: serde_json::Value =
            serde_json::from_slice(&pipelines.get(key).unwrap().unwrap()).unwrap();
        json.as_object_mut().unwrap().remove("state").unwrap();
        pipelines
            .insert(key, serde_json::to_vec(&json).unwrap())
            .unwrap();
        let names: Vec<Vec<u8>> = db.tree_names().iter().map(|n| n.to_vec()).collect();
        assert!(!names.contains(&layout::ADMIN_LOG.as_bytes().to_vec()));
        assert!(!names.contains(&layout::SERVING.as_bytes().to_vec()));
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let r = store.get_pipeline("penguins", Some("1")).unwrap().unwrap();
    assert_eq!((r.state, &r.digest), (State::Active, &digest));
    assert_eq!(store.verify().unwrap().records, 1);
    assert_eq!(store.verify_admin().unwrap().records, 0);
    assert_eq!(store.admin_len().unwrap(), 0);
    assert!(store.admin_log(10).unwrap().is_empty());
    assert!(store.serving_all().unwrap().is_empty());

    let e = store
        .append_admin(entry("local", "pipeline.retire", "penguins@1"))
        .unwrap();
    assert_eq!((e.seq, e.prev_hash.as_str()), (0, GENESIS_HASH));
    store.put_serving("penguins", b"{}").unwrap();
    store
        .set_pipeline_state("penguins", "1", State::Retired)
        .unwrap();
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.verify_admin().unwrap().records, 1);
    assert_eq!(store.serving("penguins").unwrap().unwrap(), b"{}");
    assert_eq!(
        store
            .get_pipeline("penguins", Some("1"))
            .unwrap()
            .unwrap()
            .state,
        State::Retired
    );
    drop(store);
    // Additive: the format version is unchanged.
    let db = raw_db(dir.path());
    let v = db
        .open_tree(layout::META)
        .unwrap()
        .get(layout::FORMAT_VERSION_KEY)
        .unwrap()
        .unwrap();
    assert_eq!(v.as_ref(), FORMAT_VERSION.to_be_bytes());
    assert_eq!(FORMAT_VERSION, 1);
}
