//! Labels in: `keel feedback import` (CSV and JSON Lines: duplicates,
//! corrections, unmatched ids, bad rows and a malformed line, coverage) on
//! predictions `keel run` stored by row id, and the daemon's
//! `POST /v2/models/{model}/feedback` (roles, counts, durable across a
//! restart, monitors fed labels) on a real store and a real daemon.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::serve::{oip_request, read_csv};

use common::daemon::*;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The penguins example with `[run] id_column = "row_id"` (and `extra`
/// appended), and its current data with a `row_id` column `p0`, `p1`, ….
fn with_ids(dir: &Path, extra: &str) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(example("pipeline.toml")).unwrap();
    assert!(text.contains("[run]\nbatch_size = 64\n"));
    let text = text.replace(
        "[run]\nbatch_size = 64\n",
        "[run]\nbatch_size = 64\nid_column = \"row_id\"\n",
    ) + extra;
    std::fs::copy(example("reference.csv"), dir.join("reference.csv")).unwrap();
    let spec = dir.join("pipeline.toml");
    std::fs::write(&spec, text).unwrap();
    let current = std::fs::read_to_string(example("current.csv")).unwrap();
    let mut out = String::new();
    for (i, line) in current.lines().enumerate() {
        if i == 0 {
            out.push_str(&format!("{line},row_id\n"));
        } else {
            out.push_str(&format!("{line},p{}\n", i - 1));
        }
    }
    let input = dir.join("current.csv");
    std::fs::write(&input, out).unwrap();
    (spec, input)
}

fn import(store: &Path, file: &Path, extra: &[&str]) -> (std::process::Output, Value) {
    let mut args = vec![
        "feedback",
        "import",
        file.to_str().unwrap(),
        "--pipeline",
        "penguins",
        "--id-column",
        "row_id",
        "--label-column",
        "y",
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = keel_in(store, &args);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        )
    });
    (o, v)
}

#[test]
fn import_counts_duplicates_corrections_unmatched_and_bad_rows() {
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (spec, input) = with_ids(dir.path(), "");
    let o = keel_in(
        store.path(),
        &[
            "run",
            spec.to_str().unwrap(),
            "-i",
            input.to_str().unwrap(),
            "-q",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("75 predictions by id"),
        "{}",
        stderr(&o)
    );

    // CSV: two first labels, a duplicate within the file, an unmatched id,
    // a bad observed_at and an empty id (skipped, named, exit 3).
    let csv = dir.path().join("labels.csv");
    std::fs::write(
        &csv,
        "row_id,y,t\np0,1,2026-01-05T10:00:00Z\np1,0,\np2,1,yesterday\nzz,1,\n,1,\np0,1,\n",
    )
    .unwrap();
    let (o, v) = import(store.path(), &csv, &["--observed-at-column", "t"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(
        (
            &v["accepted"],
            &v["duplicates"],
            &v["corrections"],
            &v["unmatched"],
            &v["errors"]
        ),
        (&json!(2), &json!(1), &json!(0), &json!(1), &json!(2)),
        "{v}"
    );
    assert_eq!(v["unmatched_ids"], json!(["zz"]));
    let err = stderr(&o);
    assert!(
        err.contains("labels.csv:4: id \"p2\": observed_at"),
        "{err}"
    );
    assert!(err.contains("labels.csv:6: the id is empty"), "{err}");
    assert_eq!(
        v["coverage"]["1.0.0"],
        json!({"predictions": 75, "labelled": 2, "coverage": 2.0 / 75.0})
    );

    // JSON Lines: a correction, a new label, then a malformed line: the
    // import stops there, and what came before it stays.
    let jsonl = dir.path().join("labels.jsonl");
    std::fs::write(
        &jsonl,
        "{\"row_id\": \"p1\", \"y\": 1}\n{\"row_id\": \"p3\", \"y\": 0}\n{\"row_id\": \"p4\", \"y\": \n{\"row_id\": \"p5\", \"y\": 1}\n",
    )
    .unwrap();
    let (o, v) = import(store.path(), &jsonl, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(
        (&v["accepted"], &v["corrections"]),
        (&json!(1), &json!(1)),
        "{v}"
    );
    assert!(stderr(&o).contains("labels.jsonl:3"), "{}", stderr(&o));
    assert_eq!(v["coverage"]["1.0.0"]["labelled"], 3);

    // Again, fixed: p1 and p3 are duplicates now, p4 and p5 new.
    std::fs::write(
        &jsonl,
        "{\"row_id\": \"p1\", \"y\": 1}\n{\"row_id\": \"p3\", \"y\": 0}\n{\"row_id\": \"p4\", \"y\": 0}\n{\"row_id\": \"p5\", \"y\": 1}\n",
    )
    .unwrap();
    let (o, v) = import(store.path(), &jsonl, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        (&v["accepted"], &v["duplicates"], &v["errors"]),
        (&json!(2), &json!(2), &json!(0)),
        "{v}"
    );
    assert_eq!(v["coverage"]["1.0.0"]["labelled"], 5);

    // The table names the same counts; an unknown pipeline is a usage error.
    let o = keel_in(
        store.path(),
        &[
            "feedback",
            "import",
            jsonl.to_str().unwrap(),
            "--pipeline",
            "penguins@1.0.0",
            "--id-column",
            "row_id",
            "--label-column",
            "y",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("duplicates   4"), "{out}");
    assert!(
        out.contains("coverage 1.0.0: 5 of 75 predictions labelled (6.7 %)"),
        "{out}"
    );
    let o = keel_in(
        store.path(),
        &[
            "feedback",
            "import",
            jsonl.to_str().unwrap(),
            "--pipeline",
            "nope",
            "--id-column",
            "row_id",
            "--label-column",
            "y",
        ],
    );
    fails_with(&o, 2, "unknown pipeline `nope`");
    let o = keel_in(
        store.path(),
        &[
            "feedback",
            "import",
            jsonl.to_str().unwrap(),
            "--pipeline",
            "penguins@9.9.9",
            "--id-column",
            "row_id",
            "--label-column",
            "y",
        ],
    );
    fails_with(&o, 2, "has no version 9.9.9");
}

const APP: &str = "app-token-0123456789abcdef";
const LABELLER: &str = "labeller-token-0123456789";
const VIEWER: &str = "viewer-token-0123456789ab";

fn config(dir: &Path) -> PathBuf {
    let p = dir.join("serve.toml");
    std::fs::write(
        &p,
        format!(
            "[[tokens]]\nname = \"app\"\ntoken = \"{APP}\"\nroles = [\"infer\"]\n\
             [[tokens]]\nname = \"labeller\"\ntoken = \"{LABELLER}\"\nroles = [\"feedback\"]\n\
             [[tokens]]\nname = \"viewer\"\ntoken = \"{VIEWER}\"\nroles = [\"read\"]\n"
        ),
    )
    .unwrap();
    p
}

/// A monitor fed labels: drift of the truth against the labelled
/// reference's, over windows of 4 labelled rows.
const LABEL_MONITOR: &str = r#"
[[monitors]]
name = "truth-drift"
plugin = "drift-monitor"
at = "model"
feed = "labels"
reference = "labelled.csv"
[monitors.config]
columns = ["label"]
[monitors.window]
rows = 4
"#;

#[test]
fn the_endpoint_takes_labels_by_role_durably_and_feeds_label_monitors() {
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (spec, _) = with_ids(dir.path(), LABEL_MONITOR);
    // The monitor's reference: the pipeline's, with the truth as `label`.
    let reference = std::fs::read_to_string(dir.path().join("reference.csv")).unwrap();
    let mut labelled = String::new();
    for (i, line) in reference.lines().enumerate() {
        let label = if i == 0 {
            "label".to_string()
        } else {
            line.starts_with("Gentoo").to_string()
        };
        labelled.push_str(&format!("{line},{label}\n"));
    }
    std::fs::write(dir.path().join("labelled.csv"), labelled).unwrap();
    // Without the id column in the requests, ids are `<request-id>:<row>`.
    let spec_text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("id_column = \"row_id\"\n", "");
    std::fs::write(&spec, spec_text).unwrap();
    let o = keel_in(
        store.path(),
        &["pipeline", "deploy", spec.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = config(cfg_dir.path());
    let mut d = Daemon::start(store.path(), &["--config", cfg.to_str().unwrap()]);
    let batch = read_csv(Path::new(&example("current.csv"))).slice(0, 6);
    let r = post_json(
        &d.url("/v2/models/penguins/infer"),
        Some(APP),
        &oip_request(&batch, Some("req-1")),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let url = d.url("/v2/models/penguins/feedback");
    let items = json!({"items": [
        {"id": "req-1:0", "truth": false},
        {"id": "req-1:1", "truth": false, "observed_at": "2026-01-05T10:00:00Z"},
        {"id": "nope:0", "truth": true},
        {"id": "req-1:0", "truth": false},
        {"truth": true},
        {"id": "req-1:2", "truth": [1]},
    ]});
    assert_eq!(post_json(&url, None, &items).status, 401);
    assert_eq!(post_json(&url, Some(VIEWER), &items).status, 403);
    let r = post_json(&url, Some(APP), &items);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (
            &v["accepted"],
            &v["duplicates"],
            &v["corrections"],
            &v["unmatched"],
            &v["errors"]
        ),
        (&json!(2), &json!(1), &json!(0), &json!(1), &json!(2)),
        "{v}"
    );
    assert_eq!(v["unmatched_ids"], json!(["nope:0"]));
    assert_eq!(v["error_details"][0]["index"], 4);
    assert_eq!(v["error_details"][1]["id"], "req-1:2");
    let r = post_json(&url, Some(APP), &json!({"item": []}));
    assert_eq!(r.status, 400, "{}", r.body);
    // A correction with the feedback role, pinned to the version; the
    // fourth labelled row closes the label monitor's first window.
    let pinned = d.url("/v2/models/penguins/versions/1.0.0/feedback");
    let r = post_json(
        &pinned,
        Some(LABELLER),
        &json!({"items": [
            {"id": "req-1:1", "truth": true}, {"id": "req-1:2", "truth": false}, {"id": "req-1:3", "truth": false}
        ]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.json()["accepted"], &r.json()["corrections"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(
        post_json(&d.url("/v2/models/nope/feedback"), Some(APP), &items).status,
        404
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let m = get(&d.url("/metrics"), Some(VIEWER)).body;
        if m.contains("monitor=\"truth-drift\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the label monitor closed no window:\n{}",
            d.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    d.stop();

    // Durable: after a restart the same labels are duplicates.
    let d = Daemon::start(store.path(), &["--config", cfg.to_str().unwrap()]);
    let r = post_json(
        &d.url("/v2/models/penguins/feedback"),
        Some(LABELLER),
        &json!({"items": [
            {"id": "req-1:0", "truth": false}, {"id": "req-1:1", "truth": true}
        ]}),
    );
    assert_eq!(r.json()["duplicates"], 2, "{}", r.body);
    drop(d);
    let o = keel_in(
        store.path(),
        &["monitor", "history", "penguins", "truth-drift", "--json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let first: Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["report"]["window"]["rows"], 4, "{first}");
}

/// Predictions with a score, as a pipeline with a performance monitor
/// stores them, labelled in part; `keel performance --pipeline` on them
/// reports what `keel performance` reports on the same rows as a file.
#[test]
fn performance_of_stored_predictions_equals_the_same_rows_from_a_file() {
    let store_dir = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,score,y\n");
    {
        let store = keel_store::Store::open(store_dir.path()).unwrap();
        let mut labels = Vec::new();
        for r in 0..6u32 {
            let mut record = keel_store::AuditRecord::new(
                keel_store::PipelineRef {
                    name: "loans".into(),
                    version: "1".into(),
                    digest: keel_store::Digest::of(b"loans"),
                },
                keel_store::Digest::of(format!("input {r}").as_bytes()),
            );
            record.time = format!("2026-01-0{}T10:00:00Z", r + 1);
            let rows = (0..10u32)
                .map(|i| {
                    let n = r * 10 + i;
                    let score = f64::from((n * 37) % 100) / 100.0;
                    let mut values = serde_json::Map::new();
                    values.insert("score".into(), json!(score));
                    // Mostly right, sometimes not; every fourth row unlabelled.
                    let truth = (score >= 0.5) != (n % 7 == 0);
                    let labelled = n % 4 != 3;
                    csv.push_str(&format!(
                        "l{n},{score},{}\n",
                        if labelled {
                            truth.to_string()
                        } else {
                            String::new()
                        }
                    ));
                    if labelled {
                        labels.push(keel_store::NewLabel {
                            id: format!("l{n}"),
                            truth: json!(truth),
                            observed_at: None,
                        });
                    }
                    keel_store::NewPrediction {
                        id: format!("l{n}"),
                        row: i,
                        values,
                    }
                })
                .collect();
            store.append_batch_predicted(vec![(record, rows)]).unwrap();
        }
        store.append_labels("loans", None, "test", &labels).unwrap();
    }
    let file = dir.path().join("analysis.csv");
    std::fs::write(&file, csv).unwrap();
    let common = [
        "--id-column",
        "id",
        "--label-column",
        "y",
        "--score-column",
        "score",
        "--task",
        "binary",
        "--chunk-size",
        "20",
        "--format",
        "json",
    ];
    let from_file = keel_in(
        store_dir.path(),
        &[&["performance", file.to_str().unwrap()][..], &common].concat(),
    );
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    let stored = keel_in(
        store_dir.path(),
        &[&["performance", "--pipeline", "loans@1"][..], &common].concat(),
    );
    assert!(stored.status.success(), "{}", stderr(&stored));
    assert!(
        stderr(&stored).contains("loans@1: 60 predictions, 45 labelled (75.0 % label coverage)"),
        "{}",
        stderr(&stored)
    );
    let a: Value = serde_json::from_slice(&from_file.stdout).unwrap();
    let b: Value = serde_json::from_slice(&stored.stdout).unwrap();
    assert_eq!(a["overall"]["labelled"], 45, "{a}");
    assert_eq!(a["overall"], b["overall"]);
    assert_eq!(a["chunks"], b["chunks"]);
    // The newest version is the default; a pipeline without predictions is a usage error.
    let o = keel_in(
        store_dir.path(),
        &[&["performance", "--pipeline", "loans"][..], &common].concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = keel_in(
        store_dir.path(),
        &[&["performance", "--pipeline", "nope"][..], &common].concat(),
    );
    fails_with(&o, 2, "has no stored predictions");
}
