//! The benchmark tasks: `bench` (criterion, the sandbox) here, one module
//! for each of the others.

pub mod console;
pub mod drift;
pub mod explain;
pub mod feedback;
pub mod langs;
pub mod onnx;
pub mod performance;
pub mod serve;

use crate::cmd::{cargo, run, target_dir};
use crate::guests::build_guests;
use anyhow::Result;
use std::path::Path;

pub fn bench(root: &Path) -> Result<()> {
    let plugins = build_guests(root)?;
    run(cargo()
        .args(["bench", "-p", "keel-runtime", "--bench", "sandbox"])
        .env("KEEL_PLUGIN_DIR", &plugins)
        .env("KEEL_TEST_GUESTS", target_dir(root).join("test-guests")))
}
