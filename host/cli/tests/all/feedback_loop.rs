//! The outcome loop end to end (examples/feedback-loop): a model trained and
//! exported by the example's script serves loan decisions from a real daemon;
//! labels arrive later through the feedback endpoint and feed the
//! `performance-monitor`; when the world changes, the realized ROC AUC falls
//! out of its bounds, the alert runs the stand-in retraining job, which
//! writes a candidate model; the candidate becomes model version 2 and
//! `keel replay --with model=loan-model@2` tries it on the recorded inputs
//! since the change, showing it doing better on the labelled rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::onnx::python;
use crate::serve::{oip_request, read_csv};

use common::daemon::*;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn example_dir() -> PathBuf {
    workspace().join("examples/feedback-loop")
}

/// The example's pipeline with absolute paths: reference, retraining job
/// (run with the test's Python) and where it writes the candidate.
fn spec(dir: &Path, candidate: &Path) -> PathBuf {
    let text = std::fs::read_to_string(example_dir().join("pipeline.toml")).unwrap();
    let command = "command = [\"sh\", \"examples/feedback-loop/retrain.sh\", \"target/feedback-loop/candidate\"]";
    assert!(
        text.contains(command),
        "the example's alert command changed"
    );
    let text = text
        .replace(
            "reference = \"reference.csv\"",
            &format!("reference = {:?}", example_dir().join("reference.csv")),
        )
        .replace(
            command,
            &format!(
                "command = [\"env\", \"PYTHON={}\", \"sh\", {:?}, {:?}]",
                python().display(),
                example_dir().join("retrain.sh"),
                candidate
            ),
        );
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Serves rows `range` of the traffic in requests of 200 rows.
fn serve(d: &Daemon, range: std::ops::Range<usize>) {
    let traffic = read_csv(&example_dir().join("traffic.csv"));
    for start in range.step_by(200) {
        let batch = traffic.slice(start, start + 200);
        let r = post_json(
            &d.url("/v2/models/loans/infer"),
            None,
            &oip_request(&batch, Some(&format!("req-{start}"))),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

/// Posts the labels of rows `range`, in order, 250 per call.
fn label(d: &Daemon, range: std::ops::Range<usize>) {
    let text = std::fs::read_to_string(example_dir().join("labels.csv")).unwrap();
    let labels: Vec<(String, i64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let (id, y) = l.split_once(',').unwrap();
            (id.to_string(), y.parse().unwrap())
        })
        .collect();
    for chunk in labels[range].chunks(250) {
        let items: Vec<_> = chunk
            .iter()
            .map(|(id, y)| json!({"id": id, "truth": y}))
            .collect();
        let r = post_json(
            &d.url("/v2/models/loans/feedback"),
            None,
            &json!({ "items": items }),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["accepted"], json!(chunk.len()), "{}", r.body);
    }
}

#[test]
fn labels_drop_the_realized_auc_the_alert_retrains_and_replay_shows_the_candidate_better() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let candidate = tmp.path().join("candidate");
    let model = tmp.path().join("loan-model-1.onnx");
    let o = std::process::Command::new(python())
        .arg(example_dir().join("train.py"))
        .arg(example_dir().join("reference.csv"))
        .arg(&model)
        .output()
        .unwrap();
    assert!(o.status.success(), "train.py: {}", stderr(&o));
    let add = |file: &Path, v: &str| {
        let f = file.to_str().unwrap();
        ok(&keel_in(
            &store,
            &["model", "add", f, "--name", "loan-model", "--version", v],
        ));
    };
    add(&model, "1");
    let spec = spec(tmp.path(), &candidate);
    ok(&keel_in(
        &store,
        &["pipeline", "deploy", spec.to_str().unwrap()],
    ));

    let mut d = Daemon::start(&store, &[]);
    // Before the change: served, labelled, judged within bounds.
    serve(&d, 0..1000);
    label(&d, 0..1000);
    std::thread::sleep(Duration::from_millis(1100));
    let since = keel_store::now_rfc3339();
    // After it: the realized AUC falls; the alert starts the retraining job.
    serve(&d, 1000..2000);
    label(&d, 1000..2000);
    let onnx = candidate.join("loan-model-2.onnx");
    let deadline = Instant::now() + Duration::from_secs(90);
    while !onnx.exists() {
        assert!(
            Instant::now() < deadline,
            "the alert did not run the retraining job\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The job's stdin was the alert: the realized monitor, out of bounds.
    let deadline = Instant::now() + Duration::from_secs(60);
    let alert = loop {
        let text = std::fs::read_to_string(candidate.join("alert.json")).unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            break v;
        }
        assert!(Instant::now() < deadline, "no alert JSON: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(alert["monitor"], "realized", "{alert}");
    let metrics = get(&d.url("/metrics"), None).body;
    assert!(metrics.contains("keel_performance_realized"), "{metrics}");
    d.stop();

    // History: the first windows judged fine, a later one alerting.
    let history = ok(&keel_in(
        &store,
        &["monitor", "history", "loans", "realized"],
    ));
    assert!(history.to_lowercase().contains("alert"), "{history}");

    add(&onnx, "2");
    let out = ok(&keel_in(
        &store,
        &[
            "replay",
            "--pipeline",
            "loans",
            "--since",
            &since,
            "--with",
            "model=loan-model@2",
        ],
    ));
    assert!(out.contains("5 identical, 0 different"), "{out}");
    let auc = |who: &str| -> f64 {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with("roc_auc"))
            .unwrap_or_else(|| panic!("no roc_auc line: {out}"));
        let at = line.find(who).unwrap_or_else(|| panic!("{who}: {line}"));
        line[at + who.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(out.contains("on 1000 labelled rows"), "{out}");
    let (recorded, cand) = (auc("recorded "), auc("candidate "));
    assert!(recorded < 0.7 && cand > recorded + 0.15, "{out}");
}
