//! The `performance-monitor` in a pipeline through the `keel` binary: the
//! loan model's predictions in windows, judged on CBPE estimates before any
//! label, history in the store, an alert (run as a command) when squeezed
//! scores drag the estimated accuracy below its bounds, and hysteresis
//! carried to the next run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use common::*;

use std::path::Path;

fn loans(file: &str) -> String {
    workspace()
        .join("examples/performance")
        .join(file)
        .display()
        .to_string()
}

/// The example's first 1,500 predictions, the last 500 with their scores
/// squeezed towards 0.5 (`0.45 + 0.1·score`): the model grows unsure.
fn drifted_input(dir: &Path) -> String {
    let text = std::fs::read_to_string(loans("analysis.csv")).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    assert_eq!(out, "id,region,score,prediction\n");
    for (i, line) in lines.take(1500).enumerate() {
        if i < 1000 {
            out.push_str(line);
        } else {
            let f: Vec<&str> = line.split(',').collect();
            let s = 0.45 + 0.1 * f[2].parse::<f64>().unwrap();
            out.push_str(&format!("{},{},{s:.5},{}", f[0], f[1], u8::from(s >= 0.5)));
        }
        out.push('\n');
    }
    let path = dir.join("predictions.csv");
    std::fs::write(&path, out).unwrap();
    path.display().to_string()
}

fn write_spec(dir: &Path, alerts_log: &Path) -> String {
    let spec = dir.join("loans.toml");
    std::fs::write(
        &spec,
        format!(
            r#"name = "loans"
version = "1.0.0"

[[monitors]]
name = "performance"
plugin = "performance-monitor"
at = "input"
reference = "{reference}"
window = {{ rows = 500 }}
[monitors.config]
task = "binary"
label_column = "defaulted"
score_column = "score"
prediction_column = "prediction"
segment_columns = ["region"]
reference_chunk_rows = 500
[monitors.alerts]
clear_after = 3
command = ["sh", "-c", "cat >> {log} && echo >> {log}"]
"#,
            reference = loans("reference.csv"),
            log = alerts_log.display(),
        ),
    )
    .unwrap();
    spec.display().to_string()
}

fn raised(m: &serde_json::Value) -> Vec<String> {
    m["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["raised"].as_array().unwrap().clone())
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn estimates_in_windows_alert_on_squeezed_scores_and_keep_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log = dir.path().join("alerts.jsonl");
    let spec = write_spec(dir.path(), &log);
    let input = drifted_input(dir.path());
    let summary = dir.path().join("s.json");
    let run = || {
        let o = keel_in(
            &store,
            &[
                "run",
                &spec,
                "-i",
                &input,
                "--summary-json",
                summary.to_str().unwrap(),
                "-q",
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        s["monitors"][0].clone()
    };
    let m = run();
    let windows = m["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3, "1,500 rows in windows of 500");
    let verdicts: Vec<bool> = windows
        .iter()
        .map(|w| w["report"]["alert"].as_bool().unwrap())
        .collect();
    assert_eq!(verdicts, [false, false, true]);
    // Judged on estimates (no labels): the estimated accuracy of the
    // squeezed window is below its lower bound, and carries it as threshold.
    let metrics = windows[2]["report"]["metrics"].as_array().unwrap();
    let find = |column: &str, name: &str| {
        metrics
            .iter()
            .find(|x| x["column"] == column && x["name"] == name)
            .unwrap_or_else(|| panic!("no {column}/{name}: {metrics:?}"))
    };
    let acc = find("estimated", "accuracy");
    let low = find("bound-low", "accuracy")["value"].as_f64().unwrap();
    assert_eq!(acc["alert"], true);
    assert_eq!(acc["threshold"].as_f64(), Some(low));
    assert!(acc["value"].as_f64().unwrap() < low);
    assert!(
        metrics
            .iter()
            .all(|x| x["column"] != "realized" || x["name"] == "labelled"),
        "no labels, no realized metric"
    );
    let first = raised(&m);
    assert!(
        first.contains(&"estimated/accuracy".to_owned()),
        "{first:?}"
    );
    // The command got each alert as JSON.
    let delivered: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(delivered.len(), m["alerts"].as_array().unwrap().len());
    assert_eq!(delivered[0]["monitor"], "performance");

    // History, newest first, with the verdict and the summary.
    let o = keel_in(&store, &["monitor", "history", "loans", "performance"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("#2") && lines[0].contains("estimated accuracy"),
        "{text}"
    );
    assert!(
        lines[2].contains("5 judged metrics within their bounds; 500 rows, 0 labelled"),
        "{text}"
    );

    // The next run carries on (#3..#5); the squeezed window alerts again,
    // but the alert is still active (3 clear windows needed, 2 seen): held,
    // not raised again.
    let m = run();
    let windows = m["windows"].as_array().unwrap();
    assert_eq!(windows[0]["window"]["index"], 3);
    assert_eq!(windows[2]["report"]["alert"], true);
    let again = raised(&m);
    assert!(
        !again.contains(&"estimated/accuracy".to_owned()),
        "{again:?}"
    );
    let o = keel_in(&store, &["monitor", "status", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        status[0]["active_alerts"]["estimated/accuracy"].is_object(),
        "{status}"
    );
}

/// The value of the exposition line that starts with `series` (name and labels).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[test]
fn the_daemon_exports_estimates_bounds_and_verdicts_per_version() {
    use crate::serve::oip_request;
    use common::daemon::{Daemon, get};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let spec = write_spec(dir.path(), &dir.path().join("alerts.jsonl"));
    let o = keel_in(&store, &["pipeline", "deploy", &spec]);
    assert!(o.status.success(), "{}", stderr(&o));
    let input = keel_data::io::read_all(Path::new(&drifted_input(dir.path())), None).unwrap();
    let d = Daemon::start(&store, &[]);
    for k in 0..3 {
        let r = common::daemon::post_json(
            &d.url("/v2/models/loans/infer"),
            None,
            &oip_request(&input.slice(k * 500, (k + 1) * 500), None),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let m = get(&d.url("/metrics"), None).body;
        if m.contains(
            r#"keel_monitor_windows_total{pipeline="loans",version="1.0.0",monitor="performance"} 3"#,
        ) {
            break m;
        }
        assert!(Instant::now() < deadline, "windows did not close: {m}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // The gauges hold the last window's report, as the history has it.
    let history = get(&d.url("/admin/monitors/loans/performance/history"), None).json();
    let last = &history["windows"][0]["report"];
    assert_eq!(last["window"]["index"], 2, "{history}");
    let value = |column: &str, name: &str| {
        last["report"]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["column"] == column && x["name"] == name)
            .unwrap_or_else(|| panic!("no {column}/{name}"))["value"]
            .as_f64()
            .unwrap()
    };
    let series = |family: &str, extra: &str| {
        format!(
            r#"keel_performance_{family}{{pipeline="loans",version="1.0.0",monitor="performance",{extra}}}"#
        )
    };
    for m in ["accuracy", "precision", "recall", "f1", "roc_auc"] {
        let metric = format!(r#"metric="{m}""#);
        let got = sample(&metrics, &series("estimated", &metric))
            .unwrap_or_else(|| panic!("no estimated {m}: {metrics}"));
        assert!((got - value("estimated", m)).abs() < 1e-12, "{m}");
        for (side, column) in [("low", "bound-low"), ("high", "bound-high")] {
            let got = sample(
                &metrics,
                &series("bound", &format!(r#"{metric},side="{side}""#)),
            )
            .unwrap_or_else(|| panic!("no {side} bound of {m}: {metrics}"));
            assert!((got - value(column, m)).abs() < 1e-12, "{m} {side}");
        }
        let band = sample(
            &metrics,
            &series("confidence", &format!(r#"{metric},side="low""#)),
        );
        assert!((band.unwrap() - value("confidence-low", m)).abs() < 1e-12);
    }
    assert!(
        value("estimated", "accuracy") < value("bound-low", "accuracy"),
        "the squeezed window"
    );
    assert_eq!(
        sample(&metrics, &series("alert", r#"metric="accuracy""#)),
        Some(1.0)
    );
    // No labels came: nothing realized to export, and no verdict on
    // metrics that only labels can judge.
    assert!(!metrics.contains("keel_performance_realized{"), "{metrics}");
    assert_eq!(
        sample(&metrics, &series("alert", r#"metric="log_loss""#)),
        None
    );
}

/// The example pipeline as printed in the README: its windows' estimates and
/// bounds are `keel performance`'s chunks of the same size, exactly.
#[test]
fn the_example_pipeline_agrees_with_keel_performance() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let summary = dir.path().join("s.json");
    let o = keel_in(
        &store,
        &[
            "run",
            &loans("pipeline.toml"),
            "-i",
            &loans("analysis.csv"),
            "--summary-json",
            summary.to_str().unwrap(),
            "-q",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let windows = s["monitors"][0]["windows"].as_array().unwrap().clone();
    assert_eq!(windows.len(), 6);
    let o = keel_in(
        &store,
        &[
            "performance",
            &loans("analysis.csv"),
            "--labels",
            &loans("labels.csv"),
            "--reference",
            &loans("reference.csv"),
            "--id-column",
            "id",
            "--label-column",
            "defaulted",
            "--score-column",
            "score",
            "--prediction-column",
            "prediction",
            "--chunk-size",
            "500",
            "--format",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let chunks = report["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 6);
    for (w, c) in windows.iter().zip(chunks) {
        let metrics = w["report"]["metrics"].as_array().unwrap();
        let value = |column: &str, name: &str| {
            metrics
                .iter()
                .find(|x| x["column"] == column && x["name"] == name)
                .map(|x| x["value"].clone())
        };
        for m in ["accuracy", "precision", "recall", "f1", "roc_auc"] {
            assert_eq!(
                value("estimated", m),
                Some(c["estimated"][m].clone()),
                "{m}"
            );
            assert_eq!(
                value("bound-low", m),
                Some(c["bounds"][m][0].clone()),
                "{m}"
            );
            assert_eq!(
                value("confidence-high", m),
                Some(c["confidence"][m][1].clone()),
                "{m}"
            );
        }
        assert_eq!(w["report"]["alert"], false);
    }
}
