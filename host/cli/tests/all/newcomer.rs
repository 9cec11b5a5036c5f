//! What a newcomer meets (issue 29): a closed pipe ends a command quietly,
//! a failed run moves no monitor state, one exit-code table, config typos
//! named at load, errors that say what is wrong, output a person can read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

/// `keel` with the test environment, not yet run.
fn keel_cmd(store: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keel"));
    cmd.args(args)
        .env("KEEL_STORE", store)
        .env("KEEL_PLUGIN_PATH", guest_dir("KEEL_PLUGIN_DIR", "plugins"))
        .env(
            "KEEL_CACHE_DIR",
            workspace().join("target").join("keel-test-cache"),
        );
    cmd
}

/// Ended as `ls | head` ends: killed by SIGPIPE, or done.
fn ended_quietly(status: ExitStatus) -> bool {
    status.signal() == Some(13) || status.code() == Some(0)
}

#[test]
fn a_closed_stdout_ends_plugin_inspect_quietly() {
    let store = tempfile::tempdir().unwrap();
    let errors = tempfile::NamedTempFile::new().unwrap();
    let p = guest_dir("KEEL_PLUGIN_DIR", "plugins").join("standard-scaler.wasm");
    // `keel plugin inspect X | head -0`: the reader is gone before the first line.
    let mut child = keel_cmd(store.path(), &["plugin", "inspect", p.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(errors.reopen().unwrap())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let err = std::fs::read_to_string(errors.path()).unwrap();
    assert!(ended_quietly(status), "{status:?}: {err}");
    assert!(err.is_empty(), "nothing on stderr: {err}");
}

#[test]
fn a_closed_pipe_ends_a_run_quietly_and_the_run_is_still_recorded() {
    let store = tempfile::tempdir().unwrap();
    // `keel run … --output - 2>&1 | head -0`: results and logs into one
    // pipe whose reader is gone.
    let (reader, writer) = std::io::pipe().unwrap();
    let mut child = keel_cmd(
        store.path(),
        &[
            "run",
            &example("pipeline.toml"),
            "--input",
            &example("current.csv"),
            "--output",
            "-",
        ],
    )
    .stdout(writer.try_clone().unwrap())
    .stderr(writer)
    .spawn()
    .unwrap();
    drop(reader);
    let status = child.wait().unwrap();
    assert!(ended_quietly(status), "{status:?}");
    // What the run did is in the audit log all the same.
    let o = keel_in(store.path(), &["audit", "log", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(log.contains("\"penguins\""), "{log}");
}

/// The penguins pipeline in `dir`, every monitor's alerts also written to
/// `alerts.jsonl` there by a `command` sink.
fn penguins_with_alert_log(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let log = dir.join("alerts.jsonl");
    let sink = format!(
        "command = [\"sh\", \"-c\", \"cat >> {} && echo >> {}\"]\n",
        log.display(),
        log.display()
    );
    let text = std::fs::read_to_string(example("pipeline.toml")).unwrap();
    let text =
        text.replace(
            "clear_after = 2       # a raised alert",
            &format!("{sink}clear_after = 2       # a raised alert"),
        )
        .replace(
            "threshold = 0.2\n",
            &format!("threshold = 0.2\n[monitors.alerts]\n{sink}"),
        ) + "[monitors.alerts]\n"
            + &sink;
    let spec = dir.join("pipeline.toml");
    std::fs::write(&spec, text).unwrap();
    std::fs::copy(example("reference.csv"), dir.join("reference.csv")).unwrap();
    (spec, log)
}

/// `current.csv` with line 5's bill length spelled out.
fn bad_cell_at_line_5(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(example("current.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[4] = "Gentoo,Biscoe,forty,14.0,210.0,5000.0,male,2009";
    let p = dir.join("bad.csv");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

#[test]
fn a_failed_run_moves_no_monitor_state_and_raises_no_alert() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (spec, alerts) = penguins_with_alert_log(dir.path());
    let bad = bad_cell_at_line_5(dir.path());
    let o = keel_in(&store, &["pipeline", "deploy", spec.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A whole run: state saved, alerts delivered.
    let o = keel_in(&store, &["run", "penguins", "-i", &example("current.csv")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::metadata(&alerts).unwrap().len() > 0);
    std::fs::remove_file(&alerts).unwrap();
    let status = |store: &Path| {
        let o = keel_in(store, &["monitor", "status", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        o.stdout
    };
    let before = status(&store);

    // Stops at line 5 after 3 good rows: nothing moves, nobody is paged.
    let o = keel_in(&store, &["run", "penguins", "-i", bad.to_str().unwrap()]);
    fails_with(
        &o,
        3,
        "bad.csv:5: column `bill_length_mm`: expected f64, found `forty`",
    );
    assert!(!alerts.exists(), "a failed run delivered an alert");
    assert_eq!(
        String::from_utf8_lossy(&status(&store)),
        String::from_utf8_lossy(&before)
    );
    let summary = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
    assert!(
        summary.contains("prediction-drift @ model: not judged"),
        "{summary}"
    );
    assert!(!summary.contains("ALERT"), "{summary}");
    // The record says what happened.
    let o = keel_in(&store, &["audit", "log", "--json", "--limit", "1"]);
    let last: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    let o = keel_in(
        &store,
        &["audit", "show", "--json", last["id"].as_str().unwrap()],
    );
    let record: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(record["outcome"], "error", "{record}");
    assert_eq!(
        record["alerts"].as_array().map_or(0, Vec::len),
        0,
        "{record}"
    );
    let verdicts = record["monitor_verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 3, "{record}");
    assert!(
        verdicts.iter().all(|v| v["alert"] == false
            && v["summary"]
                .as_str()
                .unwrap()
                .starts_with("not judged: the run failed")),
        "{record}"
    );

    // --partial: the user keeps what the monitors saw of the 3 good rows.
    let o = keel_in(
        &store,
        &["run", "penguins", "-i", bad.to_str().unwrap(), "--partial"],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_ne!(
        String::from_utf8_lossy(&status(&store)),
        String::from_utf8_lossy(&before)
    );
}
