//! What the tests and benchmarks need besides Rust, installed on first use:
//! Chromium for the HTML report tests, and virtualenvs for Triton's client,
//! the ONNX tooling and NannyML (re-used while their requirements are unchanged).

use crate::cmd::{is_root, run, target_dir};
use crate::langs;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `keel serve` tests drive the daemon with Triton's own Python client:
/// a virtualenv with `tritonclient[http]`. Returns its python.
pub fn ensure_tritonclient(root: &Path) -> Result<PathBuf> {
    ensure_venv(
        root,
        "tritonclient",
        &root.join("host/cli/tests/tritonclient/requirements.txt"),
    )
}

/// The ONNX tests and `bench-onnx` train and export the example's model with
/// scikit-learn + skl2onnx and check Keel against onnxruntime: a virtualenv
/// with examples/penguins-onnx/requirements.txt. Returns its python.
pub fn ensure_onnx_tools(root: &Path) -> Result<PathBuf> {
    ensure_venv(
        root,
        "onnx",
        &root.join("examples/penguins-onnx/requirements.txt"),
    )
}

/// `bench-explain` runs shap's KernelExplainer on onnxruntime (and
/// algos/tests/golden/explain.py writes the Shapley golden values with it):
/// a virtualenv with algos/tests/golden/requirements-explain.txt. Returns its python.
pub fn ensure_shap(root: &Path) -> Result<PathBuf> {
    ensure_venv(
        root,
        "shap",
        &root.join("algos/tests/golden/requirements-explain.txt"),
    )
}

/// `bench-performance` runs NannyML (CBPE, PerformanceCalculator) beside
/// `keel performance`: a virtualenv with benches/performance/requirements.txt.
/// Returns its python.
pub fn ensure_nannyml(root: &Path) -> Result<PathBuf> {
    ensure_venv(
        root,
        "nannyml",
        &root.join("benches/performance/requirements.txt"),
    )
}

/// A virtualenv under target/venvs/NAME with `requirements` installed, made
/// once and re-used while the requirements file is unchanged. Returns its python.
fn ensure_venv(root: &Path, name: &str, requirements: &Path) -> Result<PathBuf> {
    let wanted = std::fs::read_to_string(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let venv = target_dir(root).join("venvs").join(name);
    let python = venv.join("bin").join("python");
    let stamp = venv.join("keel-requirements.txt");
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(python);
    }
    langs::make_venv(&venv, &format!("the {name} tests"))?;
    eprintln!(
        "installing {} into {}",
        requirements.display(),
        venv.display()
    );
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "-r"])
        .arg(requirements))?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// The HTML report test loads pages in headless Chromium: install Debian's
/// package when it is missing and we may (root), else say how.
pub fn ensure_chromium() -> Result<()> {
    let found = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "the HTML report tests need `chromium`: install it with `sudo apt-get install chromium` and run again"
        );
    }
    eprintln!("installing chromium (Debian package) for the HTML report tests");
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
