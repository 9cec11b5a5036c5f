//! Hostile plugins through `keel run`: every misbehaviour fails the run with
//! exit 4 and an error naming plugin, stage and limit, is recorded in the
//! audit log with its outcome, and never takes the host down; concurrent
//! runs of good pipelines are unaffected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn guest(name: &str) -> PathBuf {
    guest_dir("KEEL_TEST_GUESTS", "test-guests").join(format!("{name}.wasm"))
}

/// A one-stage pipeline running `plugin` in `mode` under small limits.
/// A deadline generous enough that the modes that are not about time (a 40 MB
/// output, say) finish inside it on a loaded 2-core CI machine.
fn hostile_spec(dir: &Path, plugin: &str, mode: &str, extra: &str) -> PathBuf {
    let p = dir.join(format!("{plugin}-{mode}.toml"));
    std::fs::write(
        &p,
        format!(
            "name = \"hostile-{mode}\"\n[run]\nbatch_size = 5\n[[stages]]\nname = \"bad\"\nplugin = \"{}\"\n[stages.config]\nmode = \"{mode}\"\n{extra}[stages.limits]\nmemory_mb = 64\ntimeout_ms = 2000\nmax_output_rows = 1000\n",
            guest(plugin).display()
        ),
    )
    .unwrap();
    p
}

struct Case {
    plugin: &'static str,
    mode: &'static str,
    outcome: &'static str,
    /// What stderr and the audit record's error must say (the limit, when one was hit).
    says: &'static str,
}

const CASES: &[Case] = &[
    Case {
        plugin: "hostile",
        mode: "panic",
        outcome: "trap",
        says: "hostile plugin panicked on purpose",
    },
    Case {
        plugin: "hostile",
        mode: "unreachable",
        outcome: "trap",
        says: "unreachable",
    },
    Case {
        plugin: "hostile",
        mode: "abort",
        outcome: "trap",
        says: "trapped",
    },
    Case {
        plugin: "hostile",
        mode: "loop",
        outcome: "timeout",
        says: "[limit timeout_ms = 2000]",
    },
    Case {
        plugin: "hostile",
        mode: "spin-clock",
        outcome: "timeout",
        says: "[limit timeout_ms = 2000]",
    },
    Case {
        plugin: "hostile",
        mode: "recurse",
        outcome: "trap",
        says: "[limit wasm stack = 512 KiB]",
    },
    Case {
        plugin: "hostile",
        mode: "grow",
        outcome: "trap",
        says: "[limit memory_mb = 64]",
    },
    Case {
        plugin: "hostile",
        mode: "huge-alloc",
        outcome: "trap",
        says: "[limit memory_mb = 64]",
    },
    Case {
        plugin: "hostile",
        mode: "leak",
        outcome: "trap",
        says: "[limit memory_mb = 64]",
    },
    Case {
        plugin: "hostile",
        mode: "huge-output",
        outcome: "error",
        says: "[limit max_output_rows = 1000]",
    },
    Case {
        plugin: "hostile",
        mode: "socket",
        outcome: "error",
        says: "connect: Err",
    },
    Case {
        plugin: "hostile",
        mode: "read-file",
        outcome: "error",
        says: "open /etc/passwd",
    },
    Case {
        plugin: "hostile",
        mode: "write-file",
        outcome: "error",
        says: "write /tmp/keel-pwned",
    },
    Case {
        plugin: "raw",
        mode: "ragged",
        outcome: "error",
        says: "column `short` has 4 values but the batch has 5 rows",
    },
    Case {
        plugin: "raw",
        mode: "ragged-validity",
        outcome: "error",
        says: "returned a malformed batch",
    },
    Case {
        plugin: "raw",
        mode: "rows-lie",
        outcome: "error",
        says: "returned a malformed batch",
    },
    Case {
        plugin: "raw",
        mode: "duplicate",
        outcome: "error",
        says: "`dup`",
    },
];

fn extra(mode: &str) -> &'static str {
    match mode {
        "read-file" => "path = \"/etc/passwd\"\n",
        "write-file" => "path = \"/tmp/keel-pwned\"\n",
        _ => "",
    }
}

#[test]
fn every_hostile_mode_fails_the_run_names_stage_and_limit_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    for c in CASES {
        let store = tempfile::tempdir().unwrap();
        let spec = hostile_spec(dir.path(), c.plugin, c.mode, extra(c.mode));
        let out = dir.path().join(format!("{}.csv", c.mode));
        let t = Instant::now();
        let o = keel_in(
            store.path(),
            &[
                "run",
                spec.to_str().unwrap(),
                "-i",
                &example("current.csv"),
                "-o",
                out.to_str().unwrap(),
                "--workers",
                "1",
            ],
        );
        let took = t.elapsed();
        let e = stderr(&o);
        // The host exits on its own terms, never by a signal.
        assert_eq!(o.status.code(), Some(4), "{}: {e}", c.mode);
        let stage = format!("stage `bad` (plugin `{}`)", c.plugin);
        assert!(e.contains(&stage) && e.contains(c.says), "{}: {e}", c.mode);
        assert!(e.contains("current.csv: lines "), "{}: {e}", c.mode);
        assert!(took < Duration::from_secs(30), "{}: {took:?}", c.mode);

        let log = keel_in(store.path(), &["audit", "log", "--json"]);
        assert!(log.status.success(), "{}", stderr(&log));
        let records: Vec<serde_json::Value> = stdout(&log)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 1, "{}: {records:?}", c.mode);
        let r = &records[0];
        assert_eq!(r["outcome"], c.outcome, "{}: {r}", c.mode);
        let error = r["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&stage) && error.contains(c.says),
            "{}: {error}",
            c.mode
        );
        let bad = r["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "bad")
            .unwrap();
        assert_eq!(bad["outcome"], c.outcome, "{}: {bad}", c.mode);
        assert_eq!(bad["plugin"], c.plugin, "{}: {bad}", c.mode);
        let verify = keel_in(store.path(), &["audit", "verify"]);
        assert!(verify.status.success(), "{}", stderr(&verify));
    }
    assert!(!Path::new("/tmp/keel-pwned").exists());
}

#[test]
fn a_component_of_the_wrong_world_or_broken_bytes_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plugins = guest_dir("KEEL_PLUGIN_DIR", "plugins");
    // A validator where a stage (a transform) is expected.
    let spec = d.join("wrong.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"w\"\n[[stages]]\nname = \"check\"\nplugin = \"{}\"\n",
            plugins.join("rule-validator.wasm").display()
        ),
    )
    .unwrap();
    let o = keel(&["run", spec.to_str().unwrap(), "-i", &example("current.csv")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("is a validator") && e.contains("needs a transform"),
        "{e}"
    );

    // Truncated, junk and empty bytes: refused, naming the file.
    let bytes = std::fs::read(plugins.join("standard-scaler.wasm")).unwrap();
    for (name, b) in [
        ("truncated.wasm", bytes[..bytes.len() / 3].to_vec()),
        ("junk.wasm", b"\0asm but not really".to_vec()),
        ("empty.wasm", Vec::new()),
    ] {
        let p = d.join(name);
        std::fs::write(&p, b).unwrap();
        let o = keel(&["plugin", "inspect", p.to_str().unwrap()]);
        fails_with(&o, 2, name);
        fails_with(&o, 2, "not a valid WebAssembly component");
        let store = tempfile::tempdir().unwrap();
        let o = keel_in(
            store.path(),
            &[
                "plugin",
                "add",
                p.to_str().unwrap(),
                "--name",
                "x",
                "--version",
                "1.0.0",
            ],
        );
        fails_with(&o, 2, "not a valid WebAssembly component");
    }
}

fn keel_cmd(store: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keel"));
    c.args(args)
        .env("KEEL_STORE", store)
        .env("KEEL_PLUGIN_PATH", guest_dir("KEEL_PLUGIN_DIR", "plugins"))
        .env(
            "KEEL_CACHE_DIR",
            workspace().join("target").join("keel-test-cache"),
        );
    c
}

#[test]
fn good_pipelines_are_unaffected_by_hostile_ones_running_at_the_same_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stores: Vec<_> = (0..8).map(|_| tempfile::tempdir().unwrap()).collect();
    let good = |i: usize| {
        let out = d.join(format!("good-{i}.csv"));
        let c = keel_cmd(
            stores[i].path(),
            &[
                "run",
                &example("pipeline.toml"),
                "-i",
                &example("current.csv"),
                "-o",
                out.to_str().unwrap(),
                "--quiet",
            ],
        );
        (c, out)
    };
    // The answer with nothing else running.
    let (mut c, quiet) = good(0);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let quiet = std::fs::read(quiet).unwrap();

    let hostile_modes = ["loop", "grow", "panic", "recurse", "leak"];
    let mut bad = Vec::new();
    for (i, mode) in hostile_modes.iter().enumerate() {
        let spec = hostile_spec(d, "hostile", mode, "");
        let mut c = keel_cmd(
            stores[1 + i].path(),
            &[
                "run",
                spec.to_str().unwrap(),
                "-i",
                &example("current.csv"),
                "--workers",
                "1",
                "-o",
                "-",
            ],
        );
        bad.push((
            mode,
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        ));
    }
    let goods: Vec<_> = (6..8)
        .map(|i| {
            let (mut c, out) = good(i);
            (c.stderr(std::process::Stdio::piped()).spawn().unwrap(), out)
        })
        .collect();
    for (child, out) in goods {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            std::fs::read(out).unwrap(),
            quiet,
            "a good run's output changed"
        );
    }
    for (mode, child) in bad {
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(4), "{mode}: {}", stderr(&o));
    }
}
