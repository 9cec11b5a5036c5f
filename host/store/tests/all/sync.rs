//! The audit store under a size cap, and node chains on a central store, on real sled stores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::record;
use keel_store::{PayloadStatus, RawRecord, Skip, Store, StoreError};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// Appends `n` records, each with an input payload of `payload` bytes.
fn fill(store: &Store, from: u64, n: u64, payload: usize) {
    for i in from..from + n {
        let bytes: Vec<u8> = (0..payload).map(|j| (i as usize * 31 + j) as u8).collect();
        let digest = store.put_payload(&bytes).unwrap();
        let mut r = record("edge", i);
        r.input_digest = digest;
        store.append(r).unwrap();
    }
}

fn record_bytes(store: &Store) -> u64 {
    store
        .audit_raw(0, usize::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| (r.hash.len() + r.body.len()) as u64)
        .sum()
}

#[test]
fn usage_is_counted_and_survives_reopen() {
    let (dir, store) = open();
    fill(&store, 0, 20, 1000);
    // The same payload again is stored once.
    store.put_payload(&vec![0u8; 1000]).unwrap();
    store.put_payload(&vec![0u8; 1000]).unwrap();
    let u = store.audit_usage().unwrap();
    assert_eq!(u.record_bytes, record_bytes(&store));
    assert_eq!(u.payload_bytes, 21 * 1000);
    assert_eq!((u.first_seq, u.next_seq, u.cap_bytes), (0, 20, None));
    // Expiry gives the bytes back.
    let expired = store
        .expire_payloads(std::time::SystemTime::now() + std::time::Duration::from_secs(1))
        .unwrap();
    assert_eq!(expired.payloads, 21);
    assert_eq!(store.audit_usage().unwrap().payload_bytes, 0);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let again = store.audit_usage().unwrap();
    assert_eq!(again.record_bytes, u.record_bytes);
    assert_eq!(again.payload_bytes, 0);
}

#[test]
fn the_cap_takes_oldest_payloads_first_then_oldest_records_and_the_chain_still_verifies() {
    let (dir, store) = open();
    fill(&store, 0, 40, 2000);
    let before = store.audit_usage().unwrap();
    let per_record = before.record_bytes / 40;
    // Room for every record but only some payloads: only payloads go, oldest first.
    let cap = before.record_bytes + 10 * 2000;
    let r = store.set_audit_cap(Some(cap)).unwrap();
    assert_eq!(r.records, 0, "{r:?}");
    assert!(r.payloads >= 30, "{r:?}");
    let u = store.audit_usage().unwrap();
    assert!(u.total_bytes() <= cap, "{u:?}");
    let status = |seq: u64| {
        let rec = store.audit_by_seq(seq).unwrap().unwrap();
        store.payload_status(&rec.input_digest).unwrap()
    };
    assert!(matches!(status(0), PayloadStatus::Expired { .. }));
    assert!(matches!(status(39), PayloadStatus::Present { .. }));
    assert_eq!(store.verify().unwrap().records, 40);

    // A cap below what the records take: records go too, oldest first, and
    // the chain verifies from the base kept for them.
    let cap = 20 * per_record;
    let r = store.set_audit_cap(Some(cap)).unwrap();
    assert!(r.records > 0 && r.payloads > 0, "{r:?}");
    assert_eq!(r.unsynced_records, r.records);
    let u = store.audit_usage().unwrap();
    assert!(u.total_bytes() <= cap, "{u:?}");
    assert_eq!(u.first_seq, r.records);
    let base = store.audit_base().unwrap().unwrap();
    assert_eq!(base.to, u.first_seq);
    assert!(store.audit_by_seq(0).unwrap().is_none());
    let first_kept = store.audit_by_seq(base.to).unwrap().unwrap();
    assert_eq!(first_kept.prev_hash, base.prev_hash);
    let v = store.verify().unwrap();
    assert_eq!(v.pruned, r.records);
    assert_eq!(v.records + v.pruned, 40);

    // Appends keep enforcing it, and the chain keeps verifying; so after
    // reopening. (The committer enforces the cap just after it acknowledges a
    // group, so the last group may still be over it for a moment: an
    // explicit enforcement waits for that one.)
    fill(&store, 40, 30, 500);
    store.enforce_audit_cap().unwrap();
    let u = store.audit_usage().unwrap();
    assert!(u.total_bytes() <= cap, "{u:?}");
    assert_eq!(u.next_seq, 70);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let v = store.verify().unwrap();
    assert_eq!(v.records + v.pruned, 70);
    assert!(v.pruned > r.records);
    // Tampering after a prune is still caught: a kept record edited.
    drop(store);
    {
        let db = common::raw_db(dir.path());
        let audit = db.open_tree(keel_store::layout::AUDIT).unwrap();
        let (k, v) = audit.iter().nth(2).unwrap().unwrap();
        let edited =
            String::from_utf8(v.to_vec())
                .unwrap()
                .replacen("\"rows_in\":", "\"rows_in\":1", 1);
        audit.insert(k, edited.as_bytes()).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(matches!(store.verify(), Err(StoreError::Chain(_))));
}

fn node_with(n: u64) -> (tempfile::TempDir, Store) {
    let (dir, store) = open();
    fill(&store, 0, n, 10);
    (dir, store)
}

#[test]
fn a_central_store_keeps_node_chains_and_recognises_duplicates() {
    let (_n, node) = node_with(30);
    let (_c, central) = open();
    let all = node.audit_raw(0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(all.len(), 30);
    // Batches bounded by count and by bytes (always at least one record).
    assert_eq!(node.audit_raw(5, 7, usize::MAX).unwrap().len(), 7);
    assert_eq!(node.audit_raw(5, 100, 1).unwrap().len(), 1);

    let r = central
        .ingest_node_records("edge-1", None, &all[..12])
        .unwrap();
    assert_eq!((r.accepted, r.duplicates, r.next_seq), (12, 0, 12));
    // A retried batch that overlaps what arrived: the overlap is recognised.
    let r = central
        .ingest_node_records("edge-1", None, &all[8..20])
        .unwrap();
    assert_eq!((r.accepted, r.duplicates, r.next_seq), (8, 4, 20));
    let r = central
        .ingest_node_records("edge-1", None, &all[..30])
        .unwrap();
    assert_eq!((r.accepted, r.duplicates, r.next_seq), (10, 20, 30));
    assert_eq!(r.head_hash, all[29].hash);
    let chain = central.node_chain("edge-1").unwrap().unwrap();
    assert_eq!((chain.records, chain.duplicates, chain.lost()), (30, 24, 0));
    let v = central.verify_node("edge-1").unwrap();
    assert_eq!(v.records, 30);
    assert_eq!(
        central.node_record("edge-1", 7).unwrap().unwrap(),
        node.audit_by_seq(7).unwrap().unwrap()
    );
    assert_eq!(central.node_chains().unwrap().len(), 1);
    // The central store's own chain is untouched.
    assert_eq!(central.audit_len().unwrap(), 0);
}

#[test]
fn a_central_store_refuses_forged_reordered_and_foreign_records_whole() {
    let (_n, node) = node_with(10);
    let (_c, central) = open();
    let all = node.audit_raw(0, usize::MAX, usize::MAX).unwrap();
    central
        .ingest_node_records("edge", None, &all[..4])
        .unwrap();

    let refused = |batch: &[RawRecord], needle: &str| match central
        .ingest_node_records("edge", None, batch)
    {
        Err(e @ StoreError::SyncConflict { .. }) => {
            assert!(e.to_string().contains(needle), "{e}")
        }
        other => panic!("expected a conflict naming {needle:?}, got {other:?}"),
    };
    // Edited in transit: the hash no longer matches. The good records before it are not kept.
    let mut forged = all[4..8].to_vec();
    forged[2].body = forged[2].body.replacen("\"rows_in\":", "\"rows_in\":9", 1);
    refused(&forged, "does not match its hash");
    assert_eq!(central.node_chain("edge").unwrap().unwrap().next_seq, 4);
    // A hole.
    refused(&all[6..8], "records 4..6 are missing");
    // Re-hashed after an edit: the link to the record before breaks.
    let other = node_with(10).1.audit_raw(4, 1, usize::MAX).unwrap();
    refused(&other, "prev_hash");
    // Another store's chain under the same node id.
    let other = node_with(10).1.audit_raw(0, 3, usize::MAX).unwrap();
    refused(&other, "different record");
    // Nothing of any of that was kept.
    central
        .ingest_node_records("edge", None, &all[4..])
        .unwrap();
    assert_eq!(central.verify_node("edge").unwrap().records, 10);
    assert!(matches!(
        central.verify_node("nobody"),
        Err(StoreError::UnknownNode(_))
    ));
    assert!(matches!(
        central.ingest_node_records("a/b", None, &all[..1]),
        Err(StoreError::BadName { .. })
    ));
}

#[test]
fn records_a_node_pruned_before_shipping_show_as_a_gap_that_still_verifies() {
    let (_n, node) = node_with(30);
    let (_c, central) = open();
    let first = node.audit_raw(0, 10, usize::MAX).unwrap();
    central.ingest_node_records("edge", None, &first).unwrap();
    // The node prunes past what was shipped.
    let u = node.audit_usage().unwrap();
    node.set_audit_cap(Some(u.record_bytes / 3)).unwrap();
    let base: Skip = node.audit_base().unwrap().unwrap();
    assert!(base.to > 10, "{base:?}");
    let rest = node.audit_raw(base.to, usize::MAX, usize::MAX).unwrap();
    // Without the base the hole is refused; with it, it is kept as a skip.
    assert!(central.ingest_node_records("edge", None, &rest).is_err());
    let r = central
        .ingest_node_records("edge", Some(&base), &rest)
        .unwrap();
    assert_eq!(r.lost, base.to - 10);
    assert_eq!(r.next_seq, 30);
    let chain = central.node_chain("edge").unwrap().unwrap();
    assert_eq!(chain.lost(), base.to - 10);
    assert_eq!(chain.skips[0].from, 10);
    let v = central.verify_node("edge").unwrap();
    assert_eq!((v.records, v.pruned), (30 - (base.to - 10), base.to - 10));
}
