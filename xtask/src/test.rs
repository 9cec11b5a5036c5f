//! `cargo xtask test`: installs what the tests need, builds the guests, runs
//! every test in the workspace, then the edge smoke tests (x86_64, and
//! aarch64 under qemu).

use crate::cmd::{cargo, run, target_dir};
use crate::edge::{self, Arch};
use crate::guests::build_guests;
use crate::langs;
use crate::tools::{ensure_chromium, ensure_onnx_tools, ensure_tritonclient};
use anyhow::Result;
use std::path::Path;

/// `extra` goes to `cargo test` (`cargo xtask test --no-fail-fast`, or a
/// filter after `--`).
pub fn test(root: &Path, extra: &[String]) -> Result<()> {
    ensure_chromium()?;
    let triton = ensure_tritonclient(root)?;
    let onnx = ensure_onnx_tools(root)?;
    let plugins = build_guests(root)?;
    let guests = target_dir(root).join("test-guests");
    let tools = langs::toolchains(root)?;
    run(cargo()
        // DLE (keel-algos' `dle` feature) is not in the binary yet; its
        // golden test against NannyML runs here all the same.
        .args(["test", "--workspace", "--features", "keel-algos/dle"])
        .args(extra)
        .envs(langs::tool_env(&tools))
        .env("KEEL_PLUGIN_DIR", &plugins)
        .env("KEEL_TEST_GUESTS", &guests)
        .env("KEEL_SDK_EXAMPLES", target_dir(root).join("sdk-examples"))
        .env("KEEL_TRITON_PYTHON", &triton)
        .env("KEEL_ONNX_PYTHON", &onnx))?;
    // The runtime-only build is a different feature set: built and
    // smoke-tested on its own (skipped when running a subset of the tests).
    if extra.is_empty() {
        edge::edge(root, Arch::Native)?;
        // The same bundle smoke test for an aarch64 box: cross-built, run
        // under qemu-aarch64 (installs the cross gcc and qemu if missing).
        let t = std::time::Instant::now();
        edge::edge(root, Arch::Aarch64)?;
        eprintln!(
            "aarch64 edge build and qemu smoke test: {:.0} s",
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
