//! Registry, payload, retention, monitor-state and store-opening tests on a real sled store.

// Test code: unwrap/panic are how a test fails (as in the workspace's other integration tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::{Duration, SystemTime};

use common::{raw_db, record};
use keel_store::{
    Digest, FORMAT_VERSION, PayloadStatus, PluginMeta, Purpose, Retention, State, Store,
    StoreError, layout,
};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn meta(kind: &str) -> PluginMeta {
    PluginMeta {
        kind: kind.into(),
        description: "test plugin".into(),
        ..Default::default()
    }
}

#[test]
fn plugins_are_content_addressed_and_deduplicated() {
    let (_dir, store) = open();
    let a = store.put_plugin(b"\0asm component a").unwrap();
    assert_eq!(a, Digest::of(b"\0asm component a"));
    assert_eq!(store.put_plugin(b"\0asm component a").unwrap(), a);
    assert_eq!(
        store.plugin_bytes(&a).unwrap().unwrap(),
        b"\0asm component a"
    );
    assert!(store.plugin_bytes(&Digest::of(b"other")).unwrap().is_none());
}

#[test]
fn tags_are_immutable() {
    let (_dir, store) = open();
    let a = store.put_plugin(b"a").unwrap();
    let b = store.put_plugin(b"b").unwrap();
    store
        .tag_plugin("scaler", "1.0.0", &a, meta("transform"))
        .unwrap();
    // Same digest again: idempotent.
    store
        .tag_plugin("scaler", "1.0.0", &a, meta("transform"))
        .unwrap();
    match store.tag_plugin("scaler", "1.0.0", &b, meta("transform")) {
        Err(StoreError::TagImmutable {
            existing,
            requested,
            ..
        }) => assert_eq!((existing, requested), (a.clone(), b.clone())),
        other => panic!("expected TagImmutable, got {other:?}"),
    }
    assert_eq!(
        store.plugin_tag("scaler", "1.0.0").unwrap().unwrap().digest,
        a
    );
    // A tag needs stored bytes, and a valid name.
    assert!(matches!(
        store.tag_plugin(
            "scaler",
            "2.0.0",
            &Digest::of(b"missing"),
            meta("transform")
        ),
        Err(StoreError::UnknownDigest(_))
    ));
    assert!(matches!(
        store.tag_plugin("sca ler", "1", &a, meta("transform")),
        Err(StoreError::BadName { .. })
    ));
    assert!(matches!(
        store.tag_plugin("scaler", "1@2", &a, meta("transform")),
        Err(StoreError::BadName { .. })
    ));
}

#[test]
fn lifecycle_rules_and_retired_is_final() {
    let (_dir, store) = open();
    let d = store.put_plugin(b"model").unwrap();
    store.tag_plugin("gbm", "1.0.0", &d, meta("model")).unwrap();
    assert_eq!(store.lifecycle("gbm", "1.0.0").unwrap(), State::Staged);
    store.set_state("gbm", "1.0.0", State::Active).unwrap();
    store.set_state("gbm", "1.0.0", State::Deprecated).unwrap();
    store.set_state("gbm", "1.0.0", State::Active).unwrap();
    assert_eq!(store.lifecycle("gbm", "1.0.0").unwrap(), State::Active);
    assert_eq!(
        store.resolve_for_new_pipeline("gbm@1.0.0").unwrap().bytes,
        b"model"
    );

    store.set_state("gbm", "1.0.0", State::Retired).unwrap();
    store.set_state("gbm", "1.0.0", State::Retired).unwrap(); // idempotent
    for back in [State::Staged, State::Active, State::Deprecated] {
        assert!(matches!(
            store.set_state("gbm", "1.0.0", back),
            Err(StoreError::RetiredIsFinal { .. })
        ));
    }
    assert_eq!(store.lifecycle("gbm", "1.0.0").unwrap(), State::Retired);
    assert!(matches!(
        store.resolve_for_new_pipeline("gbm@1.0.0"),
        Err(StoreError::Retired { .. })
    ));
    // Replay of old records still gets the exact bytes.
    let replay = store.resolve_plugin("gbm@1.0.0", Purpose::Replay).unwrap();
    assert_eq!(
        (replay.tag.digest, replay.bytes.as_slice()),
        (d, &b"model"[..])
    );

    assert!(matches!(
        store.lifecycle("gbm", "9"),
        Err(StoreError::UnknownPlugin { .. })
    ));
    assert!(matches!(
        store.set_state("gbm", "9", State::Active),
        Err(StoreError::UnknownPlugin { .. })
    ));
    assert!(matches!(
        store.resolve_for_replay("gbm@9"),
        Err(StoreError::UnknownPlugin { .. })
    ));
    assert!(matches!(
        store.resolve_for_replay("gbm"),
        Err(StoreError::BadReference(_))
    ));
}

#[test]
fn list_plugins_sorted_by_name_then_version() {
    let (_dir, store) = open();
    let d = store.put_plugin(b"x").unwrap();
    for (n, v) in [
        ("b", "1.10.0"),
        ("a", "2.0.0"),
        ("b", "1.9.0"),
        ("b", "1.0.0-rc.1"),
    ] {
        store.tag_plugin(n, v, &d, meta("transform")).unwrap();
    }
    store.set_state("b", "1.9.0", State::Active).unwrap();
    let tags = store.list_plugins().unwrap();
    let got: Vec<_> = tags
        .iter()
        .map(|t| format!("{}@{}:{}", t.name, t.version, t.state))
        .collect();
    assert_eq!(
        got,
        [
            "a@2.0.0:staged",
            "b@1.0.0-rc.1:staged",
            "b@1.9.0:active",
            "b@1.10.0:staged"
        ]
    );
    assert_eq!(tags[0].meta.kind, "transform");
    keel_store::parse_rfc3339(&tags[0].added_at).unwrap();
}

#[test]
fn pipeline_versions_are_immutable_and_digest_covers_plugins() {
    let (_dir, store) = open();
    let s = store.put_plugin(b"scaler").unwrap();
    let m = store.put_plugin(b"model").unwrap();
    let m2 = store.put_plugin(b"model v2").unwrap();
    let spec = "name = \"credit\"\n[[stage]]\nplugin = \"scaler@1\"\n";
    let plugins = vec![
        ("model".to_owned(), m.clone()),
        ("scale".to_owned(), s.clone()),
    ];
    let d1 = store
        .put_pipeline("credit", "1.0.0", spec, &plugins)
        .unwrap();
    // Same content, plugins listed in another order: same digest, idempotent.
    let reversed: Vec<_> = plugins.iter().rev().cloned().collect();
    assert_eq!(
        store
            .put_pipeline("credit", "1.0.0", spec, &reversed)
            .unwrap(),
        d1
    );
    // Same spec, another plugin digest: another digest, refused for the same version.
    let other = vec![
        ("model".to_owned(), m2.clone()),
        ("scale".to_owned(), s.clone()),
    ];
    match store.put_pipeline("credit", "1.0.0", spec, &other) {
        Err(StoreError::PipelineImmutable {
            existing,
            requested,
            ..
        }) => {
            assert_eq!(existing, d1);
            assert_ne!(requested, d1);
        }
        r => panic!("expected PipelineImmutable, got {r:?}"),
    }
    assert!(matches!(
        store.put_pipeline("credit", "1.0.0", &format!("{spec}# edited\n"), &plugins),
        Err(StoreError::PipelineImmutable { .. })
    ));
    let d2 = store
        .put_pipeline("credit", "1.10.0", spec, &other)
        .unwrap();
    store
        .put_pipeline("credit", "1.9.0", spec, &plugins)
        .unwrap();
    assert_ne!(d1, d2);

    let latest = store.get_pipeline("credit", None).unwrap().unwrap();
    assert_eq!((latest.version.as_str(), &latest.digest), ("1.10.0", &d2));
    let v1 = store
        .get_pipeline("credit", Some("1.0.0"))
        .unwrap()
        .unwrap();
    assert_eq!(v1.spec_toml, spec);
    assert_eq!(
        v1.plugins
            .iter()
            .map(|p| p.role.as_str())
            .collect::<Vec<_>>(),
        ["model", "scale"]
    );
    assert!(store.get_pipeline("credit", Some("3")).unwrap().is_none());
    assert!(store.get_pipeline("cred", None).unwrap().is_none());
    let listed: Vec<_> = store
        .list_pipelines()
        .unwrap()
        .into_iter()
        .map(|p| p.version)
        .collect();
    assert_eq!(listed, ["1.0.0", "1.9.0", "1.10.0"]);

    // Plugins must be stored.
    assert!(matches!(
        store.put_pipeline(
            "credit",
            "4.0.0",
            spec,
            &[("x".to_owned(), Digest::of(b"nope"))]
        ),
        Err(StoreError::UnknownDigest(_))
    ));
}

#[test]
fn a_retired_plugin_cannot_enter_a_new_pipeline_version() {
    let (_dir, store) = open();
    let d = store.put_plugin(b"old model").unwrap();
    store.tag_plugin("gbm", "1.0.0", &d, meta("model")).unwrap();
    store
        .put_pipeline("credit", "1.0.0", "spec", &[("model".into(), d.clone())])
        .unwrap();
    store.set_state("gbm", "1.0.0", State::Retired).unwrap();
    match store.put_pipeline("credit", "2.0.0", "spec", &[("model".into(), d.clone())]) {
        Err(StoreError::Retired { name, version }) => {
            assert_eq!((name.as_str(), version.as_str()), ("gbm", "1.0.0"))
        }
        r => panic!("expected Retired, got {r:?}"),
    }
    // Existing versions stay, and re-deploying the identical old version is still a no-op.
    assert!(
        store
            .get_pipeline("credit", Some("1.0.0"))
            .unwrap()
            .is_some()
    );
    store
        .put_pipeline("credit", "1.0.0", "spec", &[("model".into(), d.clone())])
        .unwrap();
    // The same bytes under a live tag are fine.
    store.tag_plugin("gbm", "1.0.1", &d, meta("model")).unwrap();
    store
        .put_pipeline("credit", "2.0.0", "spec", &[("model".into(), d)])
        .unwrap();
}

#[test]
fn payloads_dedup_expire_and_keep_the_chain_valid() {
    let (_dir, store) = open();
    let input = store.put_payload(b"batch bytes").unwrap();
    assert_eq!(store.put_payload(b"batch bytes").unwrap(), input);
    assert_eq!(store.payload(&input).unwrap().unwrap(), b"batch bytes");
    assert_eq!(
        store.payload_status(&input).unwrap(),
        PayloadStatus::Present { size: 11 }
    );
    assert_eq!(
        store.payload_status(&Digest::of(b"never")).unwrap(),
        PayloadStatus::NotStored
    );

    let mut r = record("credit", 0);
    r.input_digest = input.clone();
    let receipt = store.append(r).unwrap();
    for i in 1..4 {
        store.append(record("credit", i)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(5));
    let cutoff = SystemTime::now();
    std::thread::sleep(Duration::from_millis(5));
    let fresh = store.put_payload(b"fresh batch").unwrap();

    let report = store.expire_payloads(cutoff).unwrap();
    assert_eq!((report.payloads, report.bytes), (1, 11));
    assert!(store.payload(&input).unwrap().is_none());
    assert!(matches!(
        store.payload_status(&input).unwrap(),
        PayloadStatus::Expired { .. }
    ));
    assert!(store.payload(&fresh).unwrap().is_some());
    // The audit record is untouched and the chain verifies.
    assert_eq!(
        store.audit_get(&receipt.id).unwrap().unwrap().input_digest,
        input
    );
    assert_eq!(store.verify().unwrap().records, 4);
    // Expiring again finds nothing; storing the bytes again restores them.
    assert_eq!(store.expire_payloads(cutoff).unwrap().payloads, 0);
    store.put_payload(b"batch bytes").unwrap();
    assert_eq!(store.payload(&input).unwrap().unwrap(), b"batch bytes");
    assert_eq!(
        store.payload_status(&input).unwrap(),
        PayloadStatus::Present { size: 11 }
    );
}

#[test]
fn retention_policies_per_pipeline_and_sampling_is_deterministic() {
    let (dir, store) = open();
    assert_eq!(store.retention("credit").unwrap(), Retention::All);
    store
        .set_retention("credit", Retention::Sample { rate: 0.3 })
        .unwrap();
    store
        .set_retention("churn", Retention::DigestsOnly)
        .unwrap();
    assert!(matches!(
        store.set_retention("x", Retention::Sample { rate: 2.0 }),
        Err(StoreError::BadRetention(_))
    ));
    let ids: Vec<String> = (0..2000).map(|_| keel_store::new_record_id()).collect();
    let decisions: Vec<bool> = ids
        .iter()
        .map(|id| store.keeps_payloads("credit", id).unwrap())
        .collect();
    let kept = decisions.iter().filter(|k| **k).count();
    assert!(
        (500..700).contains(&kept),
        "kept {kept} of 2000 at rate 0.3"
    );
    assert!(
        ids.iter()
            .all(|id| !store.keeps_payloads("churn", id).unwrap())
    );
    assert!(
        ids.iter()
            .all(|id| store.keeps_payloads("other", id).unwrap())
    );
    drop(store);
    // Same decisions after a restart: a replay sees the same choice.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.retention("credit").unwrap(),
        Retention::Sample { rate: 0.3 }
    );
    let again: Vec<bool> = ids
        .iter()
        .map(|id| store.keeps_payloads("credit", id).unwrap())
        .collect();
    assert_eq!(decisions, again);

    // A sampled pipeline's records chain like any other.
    for (i, id) in ids.iter().take(20).enumerate() {
        let mut r = record("credit", i as u64);
        r.id = id.clone();
        if store.keeps_payloads("credit", id).unwrap() {
            r.input_digest = store
                .put_payload(format!("payload {i}").as_bytes())
                .unwrap();
        }
        store.append(r).unwrap();
    }
    assert_eq!(store.verify().unwrap().records, 20);
}

#[test]
fn monitor_state_and_reports() {
    let (dir, store) = open();
    assert!(store.monitor_state("credit", "drift").unwrap().is_none());
    store
        .put_monitor_state("credit", "drift", b"window v1")
        .unwrap();
    store
        .put_monitor_state("credit", "drift", b"window v2")
        .unwrap();
    store
        .put_monitor_state("credit", "drift-2", b"other")
        .unwrap();
    let a = store
        .append_monitor_report("credit", "drift", &serde_json::json!({"psi": 0.1}))
        .unwrap();
    let b = store
        .append_monitor_report(
            "credit",
            "drift",
            &serde_json::json!({"psi": 0.4, "alert": true}),
        )
        .unwrap();
    store
        .append_monitor_report("credit", "drift-2", &serde_json::json!({"psi": 9}))
        .unwrap();
    assert!(b > a);
    store.flush().unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.monitor_state("credit", "drift").unwrap().unwrap(),
        b"window v2"
    );
    store.put_monitor_state("bank", "bias", b"b").unwrap();
    assert_eq!(
        store.monitor_states().unwrap(),
        vec![
            ("bank".to_string(), "bias".to_string(), b"b".to_vec()),
            (
                "credit".to_string(),
                "drift".to_string(),
                b"window v2".to_vec()
            ),
            (
                "credit".to_string(),
                "drift-2".to_string(),
                b"other".to_vec()
            ),
        ]
    );
    let reports = store.monitor_reports("credit", "drift", None).unwrap();
    assert_eq!(reports.iter().map(|r| r.seq).collect::<Vec<_>>(), [b, a]);
    assert_eq!(reports[0].report["alert"], true);
    assert_eq!(
        store
            .monitor_reports("credit", "drift", Some(1))
            .unwrap()
            .len(),
        1
    );
    let c = store
        .append_monitor_report("credit", "drift", &serde_json::json!({}))
        .unwrap();
    assert!(c > b, "report ids keep increasing across restarts");
    assert!(store.put_monitor_state("credit", "bad\0name", b"").is_err());
}

#[test]
fn compiled_artifacts_by_plugin_and_engine() {
    let (_dir, store) = open();
    let d = Digest::of(b"component");
    store.put_compiled(&d, "engine-a", b"native a").unwrap();
    assert_eq!(
        store.compiled(&d, "engine-a").unwrap().unwrap(),
        b"native a"
    );
    assert!(store.compiled(&d, "engine-b").unwrap().is_none());
}

#[test]
fn format_version_is_stamped_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    {
        let db = raw_db(dir.path());
        let meta = db.open_tree(layout::META).unwrap();
        assert_eq!(
            meta.get(layout::FORMAT_VERSION_KEY)
                .unwrap()
                .unwrap()
                .as_ref(),
            FORMAT_VERSION.to_be_bytes()
        );
        meta.insert(layout::FORMAT_VERSION_KEY, &2u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    match Store::open(dir.path()) {
        Err(
            e @ StoreError::FormatMismatch {
                found: 2,
                expected: 1,
                ..
            },
        ) => {
            let msg = e.to_string();
            assert!(
                msg.contains("format version 2") && msg.contains(&dir.path().display().to_string()),
                "{msg}"
            );
        }
        other => panic!("expected FormatMismatch, got {other:?}"),
    }
}

#[test]
fn a_second_open_in_the_same_process_is_locked_and_the_lock_is_released_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let clone = store.clone();
    let started = std::time::Instant::now();
    match Store::open(dir.path()) {
        Err(StoreError::Locked { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(store);
    assert!(
        matches!(Store::open(dir.path()), Err(StoreError::Locked { .. })),
        "a live clone keeps it open"
    );
    drop(clone);
    Store::open(dir.path()).unwrap();
}
