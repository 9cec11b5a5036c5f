//! The fuzz targets' bodies (fuzz/harness.rs) over every committed seed
//! (fuzz/corpus/) and every finding kept as a regression (fuzz/regressions/),
//! on stable, so CI checks them without nightly or cargo-fuzz.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../../fuzz/harness.rs"]
mod harness;

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for set in ["corpus", "regressions"] {
        let dir = fuzz.join(set).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep") {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 5, "fuzz/corpus/{target} has too few seeds");
    out
}

fn run(target: &str, f: fn(&[u8])) {
    for (path, bytes) in inputs(target) {
        // A panic names the input that caused it.
        if std::panic::catch_unwind(|| f(&bytes)).is_err() {
            panic!("{}: the {target} harness panicked", path.display());
        }
    }
}

#[test]
fn csv_inputs() {
    run("csv", harness::csv);
}

#[test]
fn jsonl_inputs() {
    run("jsonl", harness::jsonl);
}

#[test]
fn spec_inputs() {
    run("spec", harness::spec);
}

#[test]
fn oip_inputs() {
    run("oip", harness::oip);
}
