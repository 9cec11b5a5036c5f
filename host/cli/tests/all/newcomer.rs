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

/// The README's exit-code table, one case (or more) per code: the same
/// mistake exits the same way whichever command meets it.
#[test]
fn every_exit_code_of_the_readme_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = d.join("store");
    let scaler = guest_dir("KEEL_PLUGIN_DIR", "plugins").join("standard-scaler.wasm");
    let scaler = scaler.to_str().unwrap();
    let (pipeline, current) = (example("pipeline.toml"), example("current.csv"));
    let code = |args: &[&str]| {
        let o = keel_in(&store, args);
        (o.status.code(), stderr(&o))
    };
    let expect = |args: &[&str], want: i32, says: &str| {
        let (got, err) = code(args);
        assert_eq!(got, Some(want), "keel {}: {err}", args.join(" "));
        assert!(err.contains(says), "keel {}: {err}", args.join(" "));
    };

    // 0: ok.
    expect(&["plugin", "inspect", scaler], 0, "");
    expect(&["run", &pipeline, "-i", &current], 0, "");

    // 1: another failure: stdout cannot be written (a full disk).
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = keel_cmd(&store, &["plugin", "inspect", scaler])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("writing to stdout: No space left on device"),
        "{}",
        stderr(&o)
    );

    // 2: usage: arguments, a spec, an unknown plugin (in every command that
    // names one), a format this keel does not read or write.
    expect(&["run", &pipeline], 2, "--input");
    let spec = d.join("unknown.toml");
    std::fs::write(
        &spec,
        "name = \"x\"\n[[stages]]\nname = \"s\"\nplugin = \"no-such-plugin\"\n",
    )
    .unwrap();
    expect(
        &["run", spec.to_str().unwrap(), "-i", &current],
        2,
        "no plugin `no-such-plugin`",
    );
    expect(
        &["plugin", "inspect", "/no/such/plugin.wasm"],
        2,
        "cannot read plugin",
    );
    expect(
        &[
            "plugin",
            "add",
            "/no/such/plugin.wasm",
            "--name",
            "x",
            "--version",
            "1.0.0",
        ],
        2,
        "cannot read plugin",
    );
    expect(&["pipeline", "deploy", &pipeline], 0, "");
    expect(&["run", "penguins", "-i", &current], 0, "");
    expect(
        &[
            "replay",
            "--pipeline",
            "penguins",
            "--with",
            "scale=no-such-plugin@1.0.0",
        ],
        2,
        "--with scale=no-such-plugin@1.0.0",
    );
    expect(
        &["replay", "--pipeline", "nosuch"],
        2,
        "no successful records of `nosuch`",
    );
    let xlsx = d.join("current.xlsx");
    std::fs::copy(&current, &xlsx).unwrap();
    expect(
        &["run", &pipeline, "-i", xlsx.to_str().unwrap()],
        2,
        "unknown format",
    );
    expect(
        &[
            "run",
            &pipeline,
            "-i",
            &current,
            "-o",
            xlsx.to_str().unwrap(),
        ],
        2,
        "unknown format",
    );
    expect(
        &["drift", &example("reference.csv"), xlsx.to_str().unwrap()],
        2,
        "unknown format",
    );
    expect(&["profile", xlsx.to_str().unwrap()], 2, "unknown format");
    // (A .parquet file in a build without the `parquet` feature is the same
    // case, for an input and an output: keel-data's
    // `parquet_is_supported_only_with_its_feature` checks it is refused as
    // `Unsupported`, which `exit::read_failure` maps here.)

    // 3: bad data.
    let bad = bad_cell_at_line_5(d);
    expect(
        &["run", &pipeline, "-i", bad.to_str().unwrap()],
        3,
        "bad.csv:5:",
    );
    expect(&["profile", bad.to_str().unwrap()], 0, "");
    let ragged = d.join("ragged.csv");
    std::fs::write(&ragged, "a,b\n1,2\n3\n").unwrap();
    expect(
        &["drift", ragged.to_str().unwrap(), ragged.to_str().unwrap()],
        3,
        "ragged.csv:3",
    );

    // 4: a plugin failed.
    let hostile = guest_dir("KEEL_TEST_GUESTS", "test-guests").join("hostile.wasm");
    let spec = d.join("hostile.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"h\"\n[[stages]]\nname = \"bad\"\nplugin = \"{}\"\n[stages.config]\nmode = \"panic\"\n",
            hostile.display()
        ),
    )
    .unwrap();
    expect(
        &["run", spec.to_str().unwrap(), "-i", &current],
        4,
        "stage `bad`",
    );

    // 5: the audit chain is broken.
    {
        use keel_store::layout;
        let db = sled::open(store.join(layout::DB_DIR)).unwrap();
        let audit = db.open_tree(layout::AUDIT).unwrap();
        let key = 0u64.to_be_bytes();
        let text = String::from_utf8(audit.get(key).unwrap().unwrap().to_vec()).unwrap();
        assert!(text.contains("\"rows_in\":75"));
        audit
            .insert(
                key,
                text.replace("\"rows_in\":75", "\"rows_in\":74").as_bytes(),
            )
            .unwrap();
        db.flush().unwrap();
    }
    expect(
        &["audit", "verify"],
        5,
        "audit chain broken at record seq 0",
    );

    // 6: drift found, when asked to fail on it.
    expect(&["drift", &example("reference.csv"), &current], 0, "");
    expect(
        &[
            "drift",
            &example("reference.csv"),
            &current,
            "--fail-on-drift",
        ],
        6,
        "drift",
    );
}

/// A typo in a plugin's config is named at load by spec file, entry and key
/// (exit 2), from the plugin's own JSON Schema, before any data is read.
#[test]
fn a_config_typo_names_the_spec_the_stage_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("pipeline.toml")).unwrap();
    std::fs::copy(example("reference.csv"), dir.path().join("reference.csv")).unwrap();
    let spec = dir.path().join("typo.toml");
    std::fs::write(
        &spec,
        text.replace("strategy = \"median\"", "stratgy = \"median\""),
    )
    .unwrap();
    // The input does not even exist: the config is judged first.
    let o = keel(&["run", spec.to_str().unwrap(), "-i", "/no/such/input.csv"]);
    fails_with(
        &o,
        2,
        "typo.toml: `stages[0].config.stratgy`: stage `impute` (plugin `imputer`): unknown key (allowed: columns, fill_value, strategy)",
    );
    // A nested key and a monitor: the same.
    std::fs::write(
        &spec,
        text.replace("disparate_impact_min = 0.8", "disparate_impact_mn = 0.8"),
    )
    .unwrap();
    let o = keel(&["run", spec.to_str().unwrap(), "-i", &example("current.csv")]);
    fails_with(
        &o,
        2,
        "`monitors[2].config.disparate_impact_mn`: monitor `prediction-bias` (plugin `bias-monitor`): unknown key",
    );
    std::fs::write(
        &spec,
        text.replace(
            "[validators.config.columns.sex]\ntype = \"string\"",
            "[validators.config.columns.sex]\ntpye = \"string\"",
        ),
    )
    .unwrap();
    let o = keel(&["run", spec.to_str().unwrap(), "-i", &example("current.csv")]);
    fails_with(
        &o,
        2,
        "`validators[0].config.columns.sex.tpye`: validator `input-rules` (plugin `rule-validator`)",
    );
}

/// Errors that say what is wrong, once: a missing input, a missing spec,
/// a file that is not WebAssembly; and an output directory made on demand.
#[test]
fn errors_say_what_is_wrong_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A missing input: exit 3, the OS message once.
    let o = keel(&[
        "run",
        &example("pipeline.toml"),
        "-i",
        "/no/such/current.csv",
    ]);
    fails_with(
        &o,
        3,
        "/no/such/current.csv: cannot read: No such file or directory",
    );
    assert_eq!(
        stderr(&o).matches("No such file").count(),
        1,
        "{}",
        stderr(&o)
    );
    // A missing spec file: no such file, not a lecture on deployed pipelines.
    let o = keel(&[
        "run",
        "examples/nosuch/pipeline.toml",
        "-i",
        &example("current.csv"),
    ]);
    fails_with(&o, 2, "examples/nosuch/pipeline.toml: no such file");
    // A bare name is still looked up among deployed pipelines.
    let o = keel(&["run", "nosuch", "-i", &example("current.csv")]);
    fails_with(&o, 2, "nosuch: not a spec file nor a deployed pipeline");
    // A CSV named .wasm: not WebAssembly, said so (no WAT syntax error).
    let fake = d.join("model.wasm");
    std::fs::copy(example("current.csv"), &fake).unwrap();
    let o = keel(&["plugin", "inspect", fake.to_str().unwrap()]);
    fails_with(
        &o,
        2,
        "is not WebAssembly at all: it starts with `species,island,b`",
    );
    assert!(!stderr(&o).contains("expected `(`"), "{}", stderr(&o));
    // --output into a directory that does not exist yet: made.
    let out = d.join("out/nested/x.csv");
    let o = keel(&[
        "run",
        &example("pipeline.toml"),
        "-i",
        &example("current.csv"),
        "-o",
        out.to_str().unwrap(),
        "--no-audit",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 76);
}
