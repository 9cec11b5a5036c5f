//! `keel compile` and precompiled bundles: a bundle runs without compiling
//! anything and gives the same bytes and the same lineage as the spec it
//! came from; Pulley's portable artifacts run here too; a bundle for another
//! architecture, a damaged or missing artifact and an unknown target are
//! refused with errors that say what to do. (The runtime-only binary itself
//! is built and smoke-tested by `cargo xtask edge`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn keel_env(store: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .env("KEEL_STORE", store)
        .env("KEEL_PLUGIN_PATH", guest_dir("KEEL_PLUGIN_DIR", "plugins"))
        .env("KEEL_CACHE_DIR", cache)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn compile(dir: &Path, target: &str) -> PathBuf {
    let out = dir.join(format!("bundle-{target}"));
    let store = dir.join("compile-store");
    let o = keel_env(
        &store,
        &dir.join("compile-cache"),
        &[
            "compile",
            &example("pipeline.toml"),
            "--target",
            target,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let text = ok(&o);
    assert!(text.contains(&format!("for {target}")), "{text}");
    out
}

fn manifest(bundle: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(bundle.join("keel-bundle.json")).unwrap())
        .unwrap()
}

fn last_record(store: &Path) -> serde_json::Value {
    let o = keel_env(
        store,
        &store.join("unused-cache"),
        &["audit", "log", "--json"],
    );
    let text = ok(&o);
    let v: serde_json::Value = serde_json::from_str(&text)
        .ok()
        .unwrap_or_else(|| serde_json::from_str(text.lines().last().unwrap()).unwrap());
    match v {
        serde_json::Value::Array(a) => a.last().unwrap().clone(),
        v => v,
    }
}

fn plugin_digests(record: &serde_json::Value) -> Vec<String> {
    let mut d: Vec<String> = record["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["plugin_digest"].as_str().unwrap_or_default().to_string())
        .collect();
    d.sort();
    d
}

#[test]
fn a_bundle_runs_without_compiling_and_matches_the_spec_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let host = std::env::consts::ARCH;
    let bundle = compile(dir.path(), host);
    let m = manifest(&bundle);
    assert_eq!(m["target"], host);
    let plugins = m["plugins"].as_array().unwrap();
    assert!(plugins.len() >= 4, "{m}");
    for p in plugins {
        let artifact = bundle.join(p["artifact"].as_str().unwrap());
        assert!(std::fs::metadata(&artifact).unwrap().len() > 1000);
        assert!(!p["roles"].as_array().unwrap().is_empty(), "{p}");
    }

    // The spec, compiled the usual way.
    let spec_store = dir.path().join("spec-store");
    let spec_out = dir.path().join("spec.csv");
    ok(&keel_env(
        &spec_store,
        &dir.path().join("spec-cache"),
        &[
            "run",
            &example("pipeline.toml"),
            "--input",
            &example("current.csv"),
            "--output",
            spec_out.to_str().unwrap(),
            "--quiet",
        ],
    ));
    // The bundle, with an empty cache it may not fill: nothing is compiled.
    let cache = dir.path().join("bundle-cache");
    let bundle_store = dir.path().join("bundle-store");
    let bundle_out = dir.path().join("bundle.csv");
    ok(&keel_env(
        &bundle_store,
        &cache,
        &[
            "run",
            bundle.join("pipeline.toml").to_str().unwrap(),
            "--input",
            &example("current.csv"),
            "--output",
            bundle_out.to_str().unwrap(),
            "--quiet",
        ],
    ));
    assert_eq!(
        std::fs::read(&spec_out).unwrap(),
        std::fs::read(&bundle_out).unwrap()
    );
    let compiled: Vec<_> = std::fs::read_dir(&cache)
        .map(|r| r.filter_map(|e| e.ok()).collect())
        .unwrap_or_default();
    assert!(
        compiled.is_empty(),
        "the bundle run compiled something: {compiled:?}"
    );
    // Same lineage: pipeline digest and every plugin digest.
    let a = last_record(&spec_store);
    let b = last_record(&bundle_store);
    assert_eq!(a["pipeline"]["digest"], b["pipeline"]["digest"], "{a}\n{b}");
    assert_eq!(a["pipeline"]["digest"], m["pipeline"]["digest"]);
    assert_eq!(plugin_digests(&a), plugin_digests(&b));
    assert_eq!(a["output_digest"], b["output_digest"]);
}

#[test]
fn pulley_artifacts_run_here_and_agree_with_native_ones() {
    let dir = tempfile::tempdir().unwrap();
    let native = compile(dir.path(), std::env::consts::ARCH);
    let pulley = compile(dir.path(), "pulley64");
    assert_eq!(manifest(&pulley)["triple"], "pulley64");
    let mut outs = Vec::new();
    for b in [&native, &pulley] {
        let out = b.join("out.csv");
        ok(&keel_env(
            &dir.path().join("store"),
            &dir.path().join("cache"),
            &[
                "run",
                b.join("pipeline.toml").to_str().unwrap(),
                "--input",
                &example("current.csv"),
                "--output",
                out.to_str().unwrap(),
                "--quiet",
                "--no-audit",
            ],
        ));
        outs.push(std::fs::read(out).unwrap());
    }
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn bad_bundles_and_targets_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let run = |bundle: &Path| {
        keel_env(
            &dir.path().join("store"),
            &dir.path().join("cache"),
            &[
                "run",
                bundle.join("pipeline.toml").to_str().unwrap(),
                "--input",
                &example("current.csv"),
                "--quiet",
                "--no-audit",
            ],
        )
    };
    // Another architecture: refused before anything loads.
    let other = if std::env::consts::ARCH == "aarch64" {
        "x86_64"
    } else {
        "aarch64"
    };
    let foreign = compile(dir.path(), other);
    let o = run(&foreign);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!("compiled for {other}")) && e.contains("--target"),
        "{e}"
    );

    // A damaged artifact: named, never recompiled behind the operator's back.
    let host = compile(dir.path(), std::env::consts::ARCH);
    let m = manifest(&host);
    let artifact = host.join(m["plugins"][0]["artifact"].as_str().unwrap());
    let bytes = std::fs::read(&artifact).unwrap();
    std::fs::write(&artifact, &bytes[..bytes.len() / 3]).unwrap();
    let o = run(&host);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("precompiled artifact")
            && e.contains(artifact.file_name().unwrap().to_str().unwrap()),
        "{e}"
    );

    // A missing artifact: the bundle may not compile it either.
    std::fs::remove_file(&artifact).unwrap();
    let o = run(&host);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not precompiled"), "{}", stderr(&o));

    // An unknown target.
    let o = keel(&["compile", &example("pipeline.toml"), "--target", "mips"]);
    fails_with(&o, 2, "not a target keel compiles for");
}
