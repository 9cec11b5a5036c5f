//! `cargo xtask build-guests`: every first-party plugin and test guest,
//! Rust for wasm32-wasip2, then the Python, JavaScript and C ones through
//! keel-build; the components land in `target/plugins` and `target/test-guests`.

use crate::cmd::{cargo, run, target_dir};
use crate::langs;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Guest crates: (package name, short name) for every crate under `dir`.
fn guest_crates(root: &Path, dir: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let base = root.join(dir);
    let mut entries: Vec<_> = std::fs::read_dir(&base)
        .with_context(|| format!("reading {}", base.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    entries.sort();
    for path in entries {
        let manifest = std::fs::read_to_string(path.join("Cargo.toml"))?;
        let name = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|l| l.strip_suffix('"'))
            .with_context(|| format!("no package name in {}", path.display()))?
            .to_string();
        let short = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        out.push((name, short));
    }
    Ok(out)
}

/// Builds every guest for wasm32-wasip2 and copies the components to
/// `target/plugins/<name>.wasm` (first-party) and `target/test-guests/<name>.wasm`.
pub fn build_guests(root: &Path) -> Result<PathBuf> {
    let rustup = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let installed = rustup
        .as_ref()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2"))
        .unwrap_or(false);
    if !installed {
        run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))?;
    }
    let plugins = guest_crates(root, "plugins")?;
    let tests = guest_crates(root, "tests/guests")?;
    let mut cmd = cargo();
    cmd.args(["build", "--target", "wasm32-wasip2", "--profile", "guest"]);
    for (name, _) in plugins.iter().chain(&tests) {
        cmd.args(["-p", name]);
    }
    run(&mut cmd)?;
    let target = target_dir(root);
    let built = target.join("wasm32-wasip2").join("guest");
    for (set, dir) in [(&plugins, "plugins"), (&tests, "test-guests")] {
        let out = target.join(dir);
        std::fs::create_dir_all(&out)?;
        for (name, short) in set {
            // A library's file has `_` for `-`; a command's (bin) keeps its name.
            let lib = built.join(format!("{}.wasm", name.replace('-', "_")));
            let file = if lib.is_file() {
                lib
            } else {
                built.join(format!("{name}.wasm"))
            };
            let dest = out.join(format!("{short}.wasm"));
            std::fs::copy(&file, &dest)
                .with_context(|| format!("copying {} to {}", file.display(), dest.display()))?;
        }
        eprintln!("guests: {} component(s) in {}", set.len(), out.display());
    }
    langs::build_lang_guests(root)?;
    Ok(target.join("plugins"))
}
