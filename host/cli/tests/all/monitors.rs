//! Monitors end to end through the `keel` binary: `keel drift` against scipy's
//! numbers, windows (rows, event time), alerts delivered to a real loopback
//! webhook and a command with hysteresis, and monitor state carried across
//! runs in the store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

fn json_of(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn column<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[test]
fn drift_between_files_matches_scipy() {
    let o = keel(&[
        "drift",
        &example("reference.csv"),
        &example("current.csv"),
        "--format",
        "json",
    ]);
    let r = json_of(&o);
    // scipy 1.17: ks_2samp(reference, current) (exact: 224 vs 74 values) and
    // chi2_contingency([[108, 80, 36], [60, 11, 4]]), NaNs dropped.
    let expected_ks = [
        ("bill_length_mm", 0.20397527572415464, 0.016990173505211863),
        (
            "flipper_length_mm",
            0.2669373409283723,
            0.000582175421921807,
        ),
        ("body_mass_g", 0.30317537268209915, 5.328933425670996e-05),
        ("bill_depth_mm", 0.25893831050781724, 0.0008460044678138958),
    ];
    for (name, d, p) in expected_ks {
        let c = column(&r, name);
        assert_eq!(c["method"], "ks", "{c}");
        assert!((c["statistic"].as_f64().unwrap() - d).abs() < 1e-9, "{c}");
        assert!((c["p_value"].as_f64().unwrap() - p).abs() < 1e-6, "{c}");
        assert_eq!(c["drift"], true);
        assert_eq!(c["threshold"], 0.05);
    }
    let island = column(&r, "island");
    assert_eq!(island["method"], "chisquare");
    assert!((island["statistic"].as_f64().unwrap() - 23.12470068027211).abs() < 1e-9);
    assert!((island["p_value"].as_f64().unwrap() - 9.517766575143048e-06).abs() < 1e-9);
    assert_eq!(
        island["histogram"]["categories"],
        serde_json::json!(["Biscoe", "Dream", "Torgersen"])
    );
    assert_eq!(
        island["histogram"]["current"],
        serde_json::json!([60, 11, 4])
    );
    assert_eq!(column(&r, "sex")["method"], "z");
    assert_eq!(r["dataset_drift"], true);
    assert_eq!(
        (
            r["reference"]["rows"].as_u64(),
            r["current"]["rows"].as_u64()
        ),
        (Some(224), Some(75))
    );

    // One method for all, and a threshold: PSI of the measurements.
    let o = keel(&[
        "drift",
        &example("reference.csv"),
        &example("current.csv"),
        "--columns",
        "bill_length_mm,island",
        "--method",
        "psi",
        "--threshold",
        "0.2",
        "--format",
        "json",
    ]);
    let r = json_of(&o);
    assert_eq!(r["columns"].as_array().unwrap().len(), 2);
    let c = column(&r, "bill_length_mm");
    assert_eq!(
        (c["method"].as_str(), c["p_value"].is_null()),
        (Some("psi"), true)
    );
    // examples/penguins/prepare.py computes the same PSI definition.
    assert!(
        (c["statistic"].as_f64().unwrap() - 0.3577483929640563).abs() < 1e-12,
        "{c}"
    );

    // The table shows verdicts and histograms; --fail-on-drift exits 6.
    let o = keel(&[
        "drift",
        &example("reference.csv"),
        &example("current.csv"),
        "--fail-on-drift",
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("DATASET DRIFT"), "{table}");
    assert!(table.contains("ref ") && table.contains("cur "), "{table}");
    let o = keel(&[
        "drift",
        &example("reference.csv"),
        &example("reference.csv"),
        "--fail-on-drift",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no dataset drift"));

    // Bad input says what and where.
    let o = keel(&[
        "drift",
        &example("reference.csv"),
        &example("current.csv"),
        "--columns",
        "beak",
    ]);
    fails_with(&o, 3, "beak");
    let o = keel(&[
        "drift",
        &example("reference.csv"),
        &example("current.csv"),
        "--columns",
        "island",
        "--method",
        "ks",
    ]);
    fails_with(&o, 2, "ks compares numbers; `island` is string");
    let o = keel(&["drift", &example("reference.csv"), "/no/such.csv"]);
    fails_with(&o, 3, "/no/such.csv");
}

#[test]
fn report_writes_a_self_contained_html_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.html");
    let o = keel(&[
        "report",
        &example("reference.csv"),
        &example("current.csv"),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") || html.starts_with("<!doctype html>"));
    // One chart per compared column (8 columns in the penguins files).
    assert_eq!(html.matches("class=\"keel-hist\"").count(), 8, "charts");
    assert!(
        !html.contains("http://") || !html.contains("<script src"),
        "no external fetches"
    );
}

/// A loopback HTTP server that records each request body and answers 200.
fn webhook() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            seen.lock().unwrap().push(String::from_utf8(body).unwrap());
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

fn write_spec(dir: &Path, window: &str, alerts: &str) -> String {
    let spec = dir.join("watch.toml");
    std::fs::write(
        &spec,
        format!(
            r#"name = "penguins-watch"
version = "1.0.0"
reference = "{reference}"

[run]
batch_size = 16

[[monitors]]
name = "input-drift"
plugin = "drift-monitor"
at = "input"
window = {window}
[monitors.config]
columns = ["bill_length_mm", "flipper_length_mm", "body_mass_g", "island"]
method = "psi"
threshold = 0.2
{alerts}
"#,
            reference = example("reference.csv"),
        ),
    )
    .unwrap();
    spec.display().to_string()
}

#[test]
fn windows_raise_alerts_once_and_deliver_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (url, bodies) = webhook();
    let log = dir.path().join("alerts.jsonl");
    let alerts = format!(
        "[monitors.alerts]\nclear_after = 2\nwebhook = \"{url}\"\ncommand = [\"sh\", \"-c\", \"cat >> {} && echo >> {}\"]\n",
        log.display(),
        log.display()
    );
    let spec = write_spec(dir.path(), "{ rows = 25 }", &alerts);
    let summary = dir.path().join("s.json");
    let o = keel_in(
        &store,
        &[
            "run",
            &spec,
            "-i",
            &example("current.csv"),
            "--summary-json",
            summary.to_str().unwrap(),
            "-q",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let m = &s["monitors"][0];
    let windows = m["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3, "75 rows in windows of 25");
    for (i, w) in windows.iter().enumerate() {
        assert_eq!(w["window"]["index"], i);
        assert_eq!(w["window"]["start_row"], 25 * i);
        assert_eq!(w["window"]["rows"], 25);
        assert_eq!(w["report"]["rows"], 25);
    }
    // Nothing left open: the last window closed exactly at the end.
    assert_eq!(m["window"]["rows"], 0);

    // Each drifting column raises once across the three windows (hysteresis).
    let raised: Vec<String> = m["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            a["raised"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["key"].as_str().unwrap().to_string())
        })
        .collect();
    assert!(!raised.is_empty(), "the 2009 data drifts");
    let mut unique = raised.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), raised.len(), "raised twice: {raised:?}");
    let alert_count = m["alerts"].as_array().unwrap().len();
    for a in m["alerts"].as_array().unwrap() {
        let d = a["deliveries"].as_array().unwrap();
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| d["ok"] == true), "{d:?}");
    }
    // The webhook and the command each got every alert, as JSON.
    let posted = bodies.lock().unwrap().clone();
    assert_eq!(posted.len(), alert_count);
    let first: serde_json::Value = serde_json::from_str(&posted[0]).unwrap();
    assert_eq!(
        (first["pipeline"].as_str(), first["monitor"].as_str()),
        (Some("penguins-watch"), Some("input-drift"))
    );
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), alert_count);

    // The audit record holds the window verdicts and the alerts.
    let o = keel_in(&store, &["audit", "log", "--json", "--limit", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rec: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(rec["alerts"].as_array().unwrap().len(), alert_count);
    let windowed = rec["monitor_verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["window"].is_object())
        .count();
    assert_eq!(windowed, 3);
    let o = keel_in(&store, &["audit", "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The alerts still active are saved for the next run, and shown.
    let o = keel_in(&store, &["monitor", "status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("penguins-watch/input-drift: open window #3"),
        "{text}"
    );
    assert!(text.contains("⚑ "), "{text}");
}

#[test]
fn an_open_window_carries_over_to_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let spec = write_spec(dir.path(), "{ rows = 50 }", "");
    let current = example("current.csv");
    let summary = dir.path().join("s.json");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            spec.as_str(),
            "-i",
            current.as_str(),
            "--summary-json",
            summary.to_str().unwrap(),
            "-q",
        ];
        args.extend_from_slice(extra);
        let o = keel_in(&store, &args);
        assert!(o.status.success(), "{}", stderr(&o));
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        s["monitors"][0].clone()
    };
    // 75 rows: window #0 closes at 50, 25 rows stay open.
    let m = run(&[]);
    let starts = |m: &serde_json::Value| -> Vec<(u64, u64)> {
        m["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["window"]["index"].as_u64().unwrap(),
                    w["window"]["start_row"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(starts(&m), vec![(0, 0)]);
    assert_eq!(
        (
            m["window"]["index"].as_u64(),
            m["window"]["rows"].as_u64(),
            m["window"]["partial"].as_bool()
        ),
        (Some(1), Some(25), Some(true))
    );
    // The next run carries on: 25 saved + 25 new close #1, then #2 closes at 150.
    let m = run(&[]);
    assert_eq!(starts(&m), vec![(1, 50), (2, 100)]);
    assert_eq!(m["window"]["rows"], 0);
    // What the store holds: the open window, and the closed windows' reports.
    let o = keel_in(&store, &["monitor", "status", "--json"]);
    let status = json_of(&o);
    assert_eq!(status[0]["pipeline"], "penguins-watch");
    assert_eq!(status[0]["monitor"], "input-drift");
    assert_eq!(status[0]["window"]["index"], 3);
    assert_eq!(status[0]["window"]["start_row"], 150);
    assert_eq!(status[0]["last_report"]["report"]["window"]["index"], 2);
    let o = keel_in(
        &store,
        &["monitor", "history", "penguins-watch", "input-drift"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("#2") && lines[2].starts_with("#0"),
        "{text}"
    );
    assert!(lines[0].contains("rows 100..150"), "{text}");
    // Afresh on request.
    let m = run(&["--fresh-monitors"]);
    assert_eq!(starts(&m), vec![(0, 0)]);
}

#[test]
fn event_time_windows_follow_the_time_column() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("ref.csv");
    let current = dir.path().join("cur.csv");
    let mut r = String::from("ts,x\n");
    let mut c = String::from("ts,x\n");
    for i in 0..60 {
        r.push_str(&format!("2026-11-01T00:{:02}:00Z,{}\n", i, i % 10));
    }
    // Three hours; the third hour's values shift far away.
    for h in 0..3 {
        for i in 0..20 {
            let x = if h == 2 { 100 + i } else { i % 10 };
            c.push_str(&format!("2026-11-22T{:02}:{:02}:30Z,{x}\n", 10 + h, i * 3));
        }
    }
    std::fs::write(&reference, r).unwrap();
    std::fs::write(&current, c).unwrap();
    let spec = dir.path().join("t.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"timed\"\nreference = \"{}\"\n[[monitors]]\nname = \"x-drift\"\nplugin = \"drift-monitor\"\nat = \"input\"\nwindow = {{ seconds = 3600, time_column = \"ts\" }}\n[monitors.config]\ncolumns = [\"x\"]\nmethod = \"wasserstein\"\n",
            reference.display()
        ),
    )
    .unwrap();
    let summary = dir.path().join("s.json");
    let o = keel(&[
        "run",
        spec.to_str().unwrap(),
        "-i",
        current.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let m = &s["monitors"][0];
    let w = m["windows"].as_array().unwrap();
    assert_eq!(w.len(), 2, "hours 10 and 11 closed; 12 is open");
    assert_eq!(w[0]["window"]["start_time"], "2026-11-22T10:00:00Z");
    assert_eq!(w[0]["window"]["end_time"], "2026-11-22T11:00:00Z");
    assert_eq!(w[1]["window"]["start_time"], "2026-11-22T11:00:00Z");
    assert!(
        w.iter()
            .all(|w| w["report"]["alert"] == false && w["window"]["rows"] == 20)
    );
    assert_eq!(m["window"]["start_time"], "2026-11-22T12:00:00Z");
    assert_eq!(
        m["report"]["alert"], true,
        "the shifted hour drifts: {}",
        m["report"]
    );
    // A partial window raises no alert.
    assert!(m["alerts"].as_array().unwrap().is_empty());

    // A time column that is not a time stops the monitor with a message naming it; the run goes on.
    std::fs::write(&current, "ts,x\nyesterday,1\n").unwrap();
    let o = keel(&[
        "run",
        spec.to_str().unwrap(),
        "-i",
        current.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let e = s["monitors"][0]["error"].as_str().unwrap();
    assert!(e.contains("`yesterday` is not an RFC 3339 time"), "{e}");
}

#[test]
fn window_and_alert_spec_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "{ rows = 10, step = 20 }", "");
    let o = keel(&["run", &spec, "-i", &example("current.csv")]);
    fails_with(&o, 2, "monitors[0].window.step");
    let spec = write_spec(
        dir.path(),
        "{ rows = 10 }",
        "[monitors.alerts]\nwebhook = \"ftp://x\"\n",
    );
    let o = keel(&["run", &spec, "-i", &example("current.csv")]);
    fails_with(&o, 2, "monitors[0].alerts.webhook");
}

#[test]
fn sliding_windows_report_the_last_rows_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "{ rows = 50, step = 25 }", "");
    let summary = dir.path().join("s.json");
    let o = keel(&[
        "run",
        &spec,
        "-i",
        &example("current.csv"),
        "--summary-json",
        summary.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let w: Vec<(u64, u64, u64)> = s["monitors"][0]["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["window"]["index"].as_u64().unwrap(),
                w["window"]["start_row"].as_u64().unwrap(),
                w["report"]["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    // Full windows only: rows 0-49 at row 50, rows 25-74 at row 75.
    assert_eq!(w, vec![(0, 0, 50), (1, 25, 50)]);
}

#[test]
fn parquet_files_give_the_same_drift_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    // A pipeline with no stages copies its input: CSV in, Parquet out.
    let copy = dir.path().join("copy.toml");
    std::fs::write(&copy, "name = \"copy\"\n").unwrap();
    let mut parquet = Vec::new();
    for f in ["reference.csv", "current.csv"] {
        let out = dir.path().join(f.replace(".csv", ".parquet"));
        let o = keel(&[
            "run",
            copy.to_str().unwrap(),
            "-i",
            &example(f),
            "-o",
            out.to_str().unwrap(),
            "--no-audit",
            "-q",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        parquet.push(out.display().to_string());
    }
    let from_csv = json_of(&keel(&[
        "drift",
        &example("reference.csv"),
        &example("current.csv"),
        "--format",
        "json",
    ]));
    let from_parquet = json_of(&keel(&[
        "drift",
        &parquet[0],
        &parquet[1],
        "--format",
        "json",
    ]));
    assert_eq!(from_parquet["columns"], from_csv["columns"]);
    assert_eq!(from_parquet["dataset_drift"], true);
}
