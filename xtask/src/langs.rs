//! The Python, JavaScript and C toolchains (installed under `target/` on first
//! use, re-used after), and the builds of the non-Rust plugins and
//! conformance guests through `keel-build` — the same code as `keel build`.

use crate::cmd::{is_root, run, target_dir};
use anyhow::{Context, Result, bail};
use keel_build::{Lang, Project, Toolchains, versions};
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn has(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub(crate) fn apt_install(what: &str, packages: &[&str]) -> Result<()> {
    if !is_root() {
        bail!(
            "{what} needs Debian packages: `sudo apt-get install {}`, then run again",
            packages.join(" ")
        );
    }
    eprintln!(
        "installing {} (Debian packages) for {what}",
        packages.join(" ")
    );
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// A fresh virtualenv at `venv` for `what`. Debian's python3 comes without
/// ensurepip; python3-venv brings it.
pub(crate) fn make_venv(venv: &Path, what: &str) -> Result<()> {
    let make = || {
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(venv)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !make() {
        apt_install(&format!("{what} (a virtualenv)"), &["python3-venv"])?;
        if !make() {
            bail!("python3 -m venv {} failed", venv.display());
        }
    }
    Ok(())
}

/// componentize-py in its own virtualenv, `target/venvs/componentize-py`.
fn ensure_python(root: &Path) -> Result<PathBuf> {
    let venv = target_dir(root).join("venvs").join("componentize-py");
    let bin = venv.join("bin").join("componentize-py");
    let stamp = venv.join("keel-version");
    if bin.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == versions::COMPONENTIZE_PY)
    {
        return Ok(bin);
    }
    make_venv(&venv, "Python plugins")?;
    eprintln!(
        "installing componentize-py {} into {}",
        versions::COMPONENTIZE_PY,
        venv.display()
    );
    run(Command::new(venv.join("bin").join("python"))
        .args(["-m", "pip", "install", "--quiet"])
        .arg(format!("componentize-py=={}", versions::COMPONENTIZE_PY)))?;
    std::fs::write(&stamp, versions::COMPONENTIZE_PY)?;
    Ok(bin)
}

/// componentize-js and jco from npm, in `target/js-tools`.
fn ensure_js(root: &Path) -> Result<PathBuf> {
    let dir = target_dir(root).join("js-tools");
    let bin = dir
        .join("node_modules")
        .join(".bin")
        .join("componentize-js");
    let wanted = format!("{} {}", versions::COMPONENTIZE_JS, versions::JCO);
    let stamp = dir.join("keel-version");
    if bin.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(bin);
    }
    if !has("npm") || !has("node") {
        apt_install("JavaScript plugins", &["nodejs", "npm"])?;
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("package.json"),
        r#"{"name": "keel-js-tools", "private": true, "type": "module"}"#,
    )?;
    eprintln!("installing componentize-js and jco into {}", dir.display());
    run(Command::new("npm")
        .current_dir(&dir)
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .arg(format!(
            "@bytecodealliance/componentize-js@{}",
            versions::COMPONENTIZE_JS
        ))
        .arg(format!("@bytecodealliance/jco@{}", versions::JCO)))?;
    std::fs::write(&stamp, wanted)?;
    Ok(bin)
}

/// clang, lld and wasi-libc from Debian; wit-bindgen and wasm-tools from
/// crates.io into `target/tools` (a few minutes, once).
fn ensure_c(root: &Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let v = versions::CLANG;
    let clang = PathBuf::from(format!("/usr/bin/clang-{v}"));
    let needed = [
        clang.clone(),
        PathBuf::from(format!("/usr/bin/wasm-ld-{v}")),
        PathBuf::from("/usr/include/wasm32-wasi/stdlib.h"),
        PathBuf::from(format!(
            "/usr/lib/llvm-{v}/lib/clang/{v}/lib/wasi/libclang_rt.builtins-wasm32.a"
        )),
    ];
    if needed.iter().any(|p| !p.exists()) {
        apt_install(
            "C plugins",
            &[
                &format!("clang-{v}"),
                &format!("lld-{v}"),
                "wasi-libc",
                &format!("libclang-rt-{v}-dev-wasm32"),
            ],
        )?;
    }
    let tools = target_dir(root).join("tools");
    let mut bins = Vec::new();
    // Only the features `keel build` uses (wit-bindgen: C; wasm-tools:
    // `component new`): a fraction of the compile time.
    for (krate, bin, version, features) in [
        (
            "wit-bindgen-cli",
            "wit-bindgen",
            versions::WIT_BINDGEN_CLI,
            Some("c"),
        ),
        (
            "wasm-tools",
            "wasm-tools",
            versions::WASM_TOOLS,
            Some("component,validate,print"),
        ),
    ] {
        let path = tools.join("bin").join(bin);
        let current = Command::new(&path)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if !current.contains(version) {
            eprintln!(
                "installing {krate} {version} into {} (once; takes minutes)",
                tools.display()
            );
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.args(["install", "--locked"]);
            if let Some(f) = features {
                cmd.args(["--no-default-features", "--features", f]);
            }
            run(cmd
                .arg("--root")
                .arg(&tools)
                .arg(format!("{krate}@{version}"))
                // Its own target dir: the workspace's is locked by this build.
                .env("CARGO_TARGET_DIR", tools.join("build")))?;
        }
        bins.push(path);
    }
    let _ = std::fs::remove_dir_all(tools.join("build"));
    let wasm_tools = bins.pop().context("wasm-tools")?;
    let wit_bindgen = bins.pop().context("wit-bindgen")?;
    Ok((clang, wit_bindgen, wasm_tools))
}

/// Every toolchain, installed if missing.
pub fn toolchains(root: &Path) -> Result<Toolchains> {
    let componentize_py = ensure_python(root)?;
    let componentize_js = ensure_js(root)?;
    let (clang, wit_bindgen, wasm_tools) = ensure_c(root)?;
    Ok(Toolchains {
        cargo: std::env::var_os("CARGO")
            .map(PathBuf::from)
            .unwrap_or_else(|| "cargo".into()),
        componentize_py,
        componentize_js,
        wit_bindgen,
        wasm_tools,
        clang,
    })
}

/// The environment the tests get, so `keel build` in them finds the same tools.
pub fn tool_env(tools: &Toolchains) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("KEEL_COMPONENTIZE_PY", tools.componentize_py.clone()),
        ("KEEL_COMPONENTIZE_JS", tools.componentize_js.clone()),
        ("KEEL_WIT_BINDGEN", tools.wit_bindgen.clone()),
        ("KEEL_WASM_TOOLS", tools.wasm_tools.clone()),
        ("KEEL_CLANG", tools.clang.clone()),
    ]
}

fn projects(root: &Path, dir: &str) -> Result<Vec<Project>> {
    let base = root.join(dir);
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(&base) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join("keel.toml").is_file())
            .collect(),
        Err(_) => return Ok(Vec::new()),
    };
    dirs.sort();
    dirs.iter()
        .map(|d| Project::open(d).with_context(|| format!("reading {}", d.display())))
        .collect()
}

/// Builds the example plugins of each SDK into `target/sdk-examples/<name>.wasm`
/// (not `target/plugins`, which holds the first-party Rust plugins) and the conformance guests into `target/test-guests/<name>-<lang>.wasm`,
/// skipping those whose sources, SDK and contract have not changed.
pub fn build_lang_guests(root: &Path) -> Result<()> {
    let tools = toolchains(root)?;
    let target = target_dir(root);
    let mut jobs = Vec::new();
    for lang in ["python", "js", "c"] {
        for p in projects(root, &format!("sdk/{lang}/examples"))? {
            let out = target.join("sdk-examples").join(format!("{}.wasm", p.name));
            jobs.push((p, out));
        }
        for p in projects(root, &format!("tests/conformance/{lang}"))? {
            let out =
                target
                    .join("test-guests")
                    .join(format!("{}-{}.wasm", p.name, p.lang.as_str()));
            jobs.push((p, out));
        }
    }
    let mut built = 0;
    for (p, out) in &jobs {
        debug_assert!(p.lang != Lang::Rust);
        let stamps = target.join("keel-build-stamps");
        std::fs::create_dir_all(&stamps)?;
        let stamp = stamps.join(out.file_name().context("output name")?);
        let fp = keel_build::fingerprint(p)?;
        if out.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == fp) {
            continue;
        }
        eprintln!("+ keel build {} ({})", p.dir.display(), p.lang.as_str());
        let b = keel_build::build(p, &tools, out)
            .with_context(|| format!("building {}", p.dir.display()))?;
        eprintln!(
            "  {} ({} KiB) in {:.1} s",
            out.display(),
            b.bytes / 1024,
            b.elapsed.as_secs_f64()
        );
        std::fs::write(&stamp, fp)?;
        built += 1;
    }
    eprintln!(
        "guests: {} Python/JavaScript/C component(s), {built} rebuilt",
        jobs.len()
    );
    Ok(())
}
