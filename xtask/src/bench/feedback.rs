//! `cargo xtask bench-feedback`: label import through `keel serve` on
//! loopback — predictions served in requests of 1,000 rows, then a label for
//! each posted from one client in batches of 1,000, closed loop, each answer
//! waiting for its labels to be durable (host/server/examples/feedback_bench.rs).

use super::serve::{deployed_store, start_server};
use crate::cmd::{cargo, run, target_dir};
use crate::guests::build_guests;
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

/// `cargo xtask bench-feedback [--predictions N] [--dev]`.
pub fn bench_feedback(root: &Path, predictions: u64, dev: bool) -> Result<()> {
    let plugins = build_guests(root)?;
    let profile = if dev { "dev" } else { "release" };
    run(cargo().args(["build", "--profile", profile, "-p", "keel"]))?;
    run(cargo().args([
        "build",
        "--profile",
        profile,
        "-p",
        "keel-server",
        "--example",
        "feedback_bench",
    ]))?;
    let bin = target_dir(root).join(if dev { "debug" } else { "release" });
    let keel = bin.join("keel");
    let dir = target_dir(root).join("bench-feedback");
    let store = deployed_store(&keel, &dir, &plugins)?;
    let (mut server, addr) = start_server(&keel, &store, None)?;
    let out = Command::new(bin.join("examples").join("feedback_bench"))
        .args(["--addr", &addr, "--model", "bench"])
        .args(["--predictions", &predictions.to_string(), "--batch", "1000"])
        .output()
        .context("running the feedback benchmark");
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    let out = out?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("the feedback benchmark failed");
    }
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}
