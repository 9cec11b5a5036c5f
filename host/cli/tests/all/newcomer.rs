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
