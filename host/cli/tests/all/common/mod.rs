//! Helpers shared by the CLI test files: the `keel` binary with a store of
//! its own, the built plugins, and the example files.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../../../report/tests/support/chromium.rs"]
pub mod chromium;
pub mod daemon;

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn guest_dir(var: &str, default: &str) -> PathBuf {
    let d = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target").join(default));
    assert!(
        d.is_dir(),
        "{} missing: run `cargo xtask build-guests`",
        d.display()
    );
    d
}

/// Runs `keel` with a store of its own, so parallel tests never share one.
pub fn keel(args: &[&str]) -> Output {
    let store = tempfile::tempdir().unwrap();
    keel_in(store.path(), args)
}

/// `keel` with extra environment variables.
pub fn keel_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let store = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keel"));
    cmd.args(args).env("KEEL_STORE", store.path()).env(
        "KEEL_CACHE_DIR",
        workspace().join("target").join("keel-test-cache"),
    );
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub fn keel_in(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .env("KEEL_STORE", store)
        .env("KEEL_PLUGIN_PATH", guest_dir("KEEL_PLUGIN_DIR", "plugins"))
        .env(
            "KEEL_CACHE_DIR",
            workspace().join("target").join("keel-test-cache"),
        )
        .output()
        .unwrap()
}

/// Asserts a failed run: its exit code, and that stderr says `needle`.
pub fn fails_with(o: &Output, code: i32, needle: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", stderr(o));
    assert!(stderr(o).contains(needle), "{}", stderr(o));
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn example(file: &str) -> String {
    workspace()
        .join("examples/penguins")
        .join(file)
        .display()
        .to_string()
}
