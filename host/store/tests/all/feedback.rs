//! Predictions by row id and the label chain, on a real store on disk:
//! written with their audit records (`process.rs` kills a writer to check the
//! write-ahead log keeps them),
//! pruned with them under the cap, labels classified, chained and verified.

use keel_store::{LabelOutcome, NewLabel, NewPrediction, Store, layout};
use serde_json::json;

use crate::common::record;

fn rows(prefix: &str, n: u32) -> Vec<NewPrediction> {
    (0..n)
        .map(|row| {
            let mut values = serde_json::Map::new();
            values.insert("score".into(), json!(f64::from(row) / 10.0));
            NewPrediction {
                id: format!("{prefix}{row}"),
                row,
                values,
            }
        })
        .collect()
}

fn label(id: &str, truth: serde_json::Value) -> NewLabel {
    NewLabel {
        id: id.into(),
        truth,
        observed_at: None,
    }
}

#[test]
fn predictions_are_found_by_id_with_their_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let receipts = store
        .append_batch_predicted(vec![
            (record("churn", 0), rows("a", 3)),
            (record("churn", 1), Vec::new()),
            (record("churn", 2), rows("b", 2)),
        ])
        .unwrap();
    let p = store.prediction("churn", "1.0.0", "a2").unwrap().unwrap();
    assert_eq!(p.seq, receipts[0].seq);
    assert_eq!(p.record_hash, receipts[0].hash);
    assert_eq!(p.record, receipts[0].id);
    assert_eq!(p.row, 2);
    assert_eq!(p.values["score"], json!(0.2));
    let rec = store.audit_get(&p.record).unwrap().unwrap();
    assert_eq!(p.time, rec.time);
    assert_eq!(
        store.predictions_of("churn", "b1").unwrap()[0].seq,
        receipts[2].seq
    );
    assert!(store.prediction("churn", "2.0.0", "a2").unwrap().is_none());
    assert!(store.predictions_of("churn-x", "a2").unwrap().is_empty());
    let mut n = 0;
    store
        .for_each_prediction("churn", Some("1.0.0"), |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(n, 5);
    assert!(store.audit_usage().unwrap().prediction_bytes > 0);
    // A bad id fails the append, and nothing of it is written.
    let bad = vec![NewPrediction {
        id: "has space".into(),
        row: 0,
        values: Default::default(),
    }];
    assert!(
        store
            .append_batch_predicted(vec![(record("churn", 3), bad)])
            .is_err()
    );
    assert_eq!(store.audit_len().unwrap(), 3);
}

#[test]
fn pruning_records_under_the_cap_prunes_their_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for i in 0..40 {
        store
            .append_batch_predicted(vec![(record("churn", i), rows(&format!("r{i}-"), 5))])
            .unwrap();
    }
    let before = store.audit_usage().unwrap();
    let report = store.set_audit_cap(Some(before.total_bytes() / 2)).unwrap();
    assert!(report.records > 0);
    assert_eq!(report.predictions, report.records * 5);
    let after = store.audit_usage().unwrap();
    assert!(after.total_bytes() <= before.total_bytes() / 2);
    let first = after.first_seq;
    // Predictions of pruned records are gone, the rest stay.
    assert!(
        store
            .prediction("churn", "1.0.0", &format!("r{}-0", first - 1))
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .prediction("churn", "1.0.0", &format!("r{first}-4"))
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .prediction("churn", "1.0.0", "r39-4")
            .unwrap()
            .is_some()
    );
    store.verify().unwrap();
}

#[test]
fn labels_are_classified_chained_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut shadow = record("churn", 1);
        shadow.pipeline.version = "2.0.0".into();
        store
            .append_batch_predicted(vec![
                (record("churn", 0), rows("a", 4)),
                (shadow, rows("a", 1)),
            ])
            .unwrap();
        let r = store
            .append_labels(
                "churn",
                None,
                "labels.csv",
                &[
                    label("a0", json!(true)),
                    label("a1", json!(false)),
                    label("zz", json!(true)),
                ],
            )
            .unwrap();
        assert_eq!((r.accepted, r.duplicates, r.corrections), (2, 0, 0));
        assert_eq!(r.unmatched, vec!["zz".to_string()]);
        assert_eq!(
            r.outcomes,
            [
                LabelOutcome::Accepted,
                LabelOutcome::Accepted,
                LabelOutcome::Unmatched
            ]
        );
        // Same again: a no-op; a different truth: a correction, newest counts;
        // a version restriction matches only that version's predictions.
        let r = store
            .append_labels(
                "churn",
                Some("2.0.0"),
                "daemon",
                &[
                    label("a0", json!(true)),
                    label("a1", json!(true)),
                    label("a1", json!(false)),
                ],
            )
            .unwrap();
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.unmatched, vec!["a1".to_string(), "a1".to_string()]);
        let r = store
            .append_labels(
                "churn",
                None,
                "daemon",
                &[label("a1", json!(true)), label("a1", json!(true))],
            )
            .unwrap();
        assert_eq!((r.corrections, r.duplicates), (1, 1));
        let dup = store
            .append_labels("churn", None, "d", &[label("a0", json!(true))])
            .unwrap();
        assert_eq!(dup.entry, None, "a duplicate records nothing");
    }
    let store = Store::open(dir.path()).unwrap();
    let a1 = store.label("churn", "a1").unwrap().unwrap();
    assert_eq!((a1.truth.clone(), a1.corrections), (json!(true), 1));
    let entries = store.label_entries(0).unwrap();
    assert_eq!(entries.len(), 3);
    // Both versions' predictions of a0 are named by their record hashes.
    assert_eq!(entries[0].labels[0].predictions.len(), 2);
    assert!(entries[2].labels[0].correction);
    let report = store.verify_labels().unwrap();
    assert_eq!(report.records, 3);
    drop(store);

    // Editing a label in place breaks the chain.
    let db = crate::common::raw_db(dir.path());
    let tree = db.open_tree(layout::LABELS).unwrap();
    let v = tree.get(layout::seq_key(0)).unwrap().unwrap();
    let text = String::from_utf8(v.to_vec())
        .unwrap()
        .replace("true", "false");
    tree.insert(layout::seq_key(0), text.as_bytes()).unwrap();
    db.flush().unwrap();
    drop((tree, db));
    let store = Store::open(dir.path()).unwrap();
    let err = store.verify_labels().unwrap_err();
    assert!(
        err.to_string().contains("label chain broken at seq 0"),
        "{err}"
    );
}
