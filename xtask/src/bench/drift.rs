//! `cargo xtask bench-drift`: `keel drift` against Evidently on 1M x 50
//! Parquet files (benches/drift), the Python side in a virtualenv of its own.

use crate::cmd::{cargo, run, target_dir};
use anyhow::Result;
use std::path::Path;
use std::process::Command;

/// `keel drift` against Evidently on the same files, in one run (only
/// ratios mean anything on a shared 2-core machine).
/// `args` go to benches/drift/bench.py.
pub fn bench_drift(root: &Path, args: &[String]) -> Result<()> {
    run(cargo().args(["build", "--release", "-p", "keel"]))?;
    // A virtualenv of its own: Evidently pins pandas below 3.
    let dir = target_dir(root).join("bench-drift");
    let venv = dir.join("venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "-r",
        "benches/drift/requirements.txt",
    ]))?;
    let keel = target_dir(root).join("release").join("keel");
    let mut cmd = Command::new(&python);
    cmd.arg("benches/drift/bench.py")
        .arg("--keel")
        .arg(keel)
        .arg("--dir")
        .arg(&dir);
    cmd.args(args);
    run(&mut cmd)
}
