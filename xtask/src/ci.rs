//! `cargo xtask ci`: what .ci/run does after installing the machine's
//! packages: format check, guests, clippy -D warnings, the layout check,
//! then every test.

use crate::cmd::{cargo, run};
use crate::guests::build_guests;
use crate::layout::{self, LayoutArgs};
use crate::test::test;
use anyhow::Result;
use std::path::Path;

pub fn ci(root: &Path) -> Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    build_guests(root)?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    layout::layout(root, &LayoutArgs { max_fn_lines: 120 })?;
    test(root, &[])
}
