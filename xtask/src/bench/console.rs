//! `cargo xtask bench-console`: every console page's server time with a
//! million audit records in the store (host/server/examples/console_bench.rs).
//! The store is filled once under target/bench-console/ and kept: later runs
//! only time the pages (delete the folder to fill it again).

use crate::cmd::{cargo, run, target_dir};
use crate::guests::build_guests;
use anyhow::Result;
use std::path::Path;

/// `cargo xtask bench-console [--records N]`.
pub fn bench_console(root: &Path, records: u64) -> Result<()> {
    let plugins = build_guests(root)?;
    run(cargo()
        .args([
            "run",
            "--release",
            "-p",
            "keel-server",
            "--example",
            "console_bench",
            "--",
            "--records",
            &records.to_string(),
            "--spec",
            "examples/penguins/pipeline.toml",
            "--dir",
        ])
        .arg(target_dir(root).join("bench-console"))
        .arg("--plugin-dir")
        .arg(&plugins))
}
