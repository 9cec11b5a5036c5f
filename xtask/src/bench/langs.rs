//! `cargo xtask bench-langs`: per plugin language, the conformance
//! transform's build time, then component size, instantiate time and
//! throughput (`cargo bench -p keel-runtime --bench langs`).

use crate::cmd::{cargo, run, target_dir};
use crate::guests::build_guests;
use crate::langs;
use anyhow::Result;
use std::path::Path;

/// Per language: the conformance transform's build time (here: a fresh
/// `keel-build` build for Python, JavaScript and C; for Rust, recompiling the
/// plugin crate with its dependencies already built), then the runtime
/// figures from `cargo bench -p keel-runtime --bench langs`.
pub fn bench_langs(root: &Path, dev: bool) -> Result<()> {
    build_guests(root)?;
    let tools = langs::toolchains(root)?;
    let out = target_dir(root).join("bench-langs");
    std::fs::create_dir_all(&out)?;
    let mut times = Vec::new();
    let lib = root.join("tests/guests/conformance-transform/src/lib.rs");
    let text = std::fs::read(&lib)?;
    std::fs::write(&lib, text)?;
    let t = std::time::Instant::now();
    run(cargo().args([
        "build",
        "--target",
        "wasm32-wasip2",
        "--profile",
        "guest",
        "-p",
        "keel-test-conformance-transform",
    ]))?;
    times.push(("rust", t.elapsed()));
    for lang in ["python", "js", "c"] {
        let project = keel_build::Project::open(
            &root.join("tests/conformance").join(lang).join("transform"),
        )?;
        let built = keel_build::build(&project, &tools, &out.join(format!("{lang}.wasm")))?;
        times.push((lang, built.elapsed));
    }
    eprintln!(
        "\nbuild time of the conformance transform (Rust: the plugin crate, dependencies built):"
    );
    for (lang, d) in &times {
        eprintln!("  {lang:<8} {:>6.1} s", d.as_secs_f64());
    }
    // `--dev`: the test profile (wasmtime and Cranelift optimised, the rest
    // not), for a machine where a release build of wasmtime is too slow.
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "keel-runtime", "--bench", "langs"]);
    if dev {
        cmd.args(["--profile", "dev"]);
    }
    run(cmd.env("KEEL_TEST_GUESTS", target_dir(root).join("test-guests")))
}
