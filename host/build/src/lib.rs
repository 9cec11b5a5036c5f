//! `keel-build`: turns a plugin project (a directory with a `keel.toml`) written
//! in Rust, Python, JavaScript or C into a component the host loads, driving
//! cargo, componentize-py, componentize-js or wit-bindgen + clang + wasm-tools;
//! and writes new projects from templates (`keel new`).
//!
//! The contract (`wit/`) and the non-Rust SDKs are compiled into this crate,
//! so a build needs the language's toolchain and nothing from this repository.

pub mod templates;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Why a build (or `keel new`) failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The project is malformed: the message says what, the path where.
    #[error("{}: {message}", path.display())]
    Project { path: PathBuf, message: String },
    /// A toolchain program is not installed.
    #[error("`{tool}` not found ({hint})")]
    ToolMissing { tool: String, hint: String },
    /// A toolchain program ran and failed; `output` is what it printed.
    #[error("{what} failed ({status}):\n{output}")]
    ToolFailed {
        what: String,
        status: String,
        output: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T, E = BuildError> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The language a plugin is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::Js, Lang::C];
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Lang, String> {
        Lang::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("unknown language `{s}` (expected rust, python, js or c)"))
    }
}

/// Which world a plugin exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Transform,
    Validator,
    Monitor,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Transform, Kind::Validator, Kind::Monitor];
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Transform => "transform",
            Kind::Validator => "validator",
            Kind::Monitor => "monitor",
        }
    }
    /// The WIT world, e.g. `transform-plugin`.
    pub fn world(self) -> String {
        format!("{}-plugin", self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown kind `{s}` (expected transform, validator or monitor)"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    lang: Lang,
    kind: Kind,
}

/// A plugin project: a directory holding `keel.toml` (`name`, `lang`, `kind`)
/// and the sources.
#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub name: String,
    pub lang: Lang,
    pub kind: Kind,
}

impl Project {
    /// Reads `DIR/keel.toml`.
    pub fn open(dir: &Path) -> Result<Project> {
        let path = dir.join("keel.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| BuildError::Project {
            path: path.clone(),
            message: format!("cannot read the project manifest ({e}); `keel new` writes one"),
        })?;
        let m: Manifest = toml::from_str(&text).map_err(|e| BuildError::Project {
            path: path.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        if m.name.is_empty()
            || !m
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(BuildError::Project {
                path,
                message: format!(
                    "name `{}` must be lowercase letters, digits and `-`",
                    m.name
                ),
            });
        }
        Ok(Project {
            dir: dir.to_path_buf(),
            name: m.name,
            lang: m.lang,
            kind: m.kind,
        })
    }

    /// The source file every project of this language has.
    pub fn entry(&self) -> PathBuf {
        self.dir.join(match self.lang {
            Lang::Rust => "src/lib.rs",
            Lang::Python => "plugin.py",
            Lang::Js => "plugin.js",
            Lang::C => "plugin.c",
        })
    }
}

/// Where the toolchain programs are: `KEEL_<TOOL>` environment variables,
/// else the usual names on `PATH`.
#[derive(Debug, Clone)]
pub struct Toolchains {
    pub cargo: PathBuf,
    pub componentize_py: PathBuf,
    pub componentize_js: PathBuf,
    pub wit_bindgen: PathBuf,
    pub wasm_tools: PathBuf,
    pub clang: PathBuf,
}

impl Toolchains {
    pub fn from_env() -> Toolchains {
        let get = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(default))
        };
        Toolchains {
            cargo: get("CARGO", "cargo"),
            componentize_py: get("KEEL_COMPONENTIZE_PY", "componentize-py"),
            componentize_js: get("KEEL_COMPONENTIZE_JS", "componentize-js"),
            wit_bindgen: get("KEEL_WIT_BINDGEN", "wit-bindgen"),
            wasm_tools: get("KEEL_WASM_TOOLS", "wasm-tools"),
            clang: get("KEEL_CLANG", "clang-19"),
        }
    }
}

/// The versions these builds are tested with (`cargo xtask test` installs them).
pub mod versions {
    pub const COMPONENTIZE_PY: &str = "0.25.1";
    pub const COMPONENTIZE_JS: &str = "0.23.0";
    pub const JCO: &str = "1.35.0";
    pub const WASM_TOOLS: &str = "1.254.2";
    pub const WIT_BINDGEN_CLI: &str = "0.57.1";
    pub const CLANG: &str = "19";
}

fn hint(tool: &str) -> String {
    match tool {
        "componentize-py" => format!(
            "pip install componentize-py=={}, or set KEEL_COMPONENTIZE_PY",
            versions::COMPONENTIZE_PY
        ),
        "componentize-js" => format!(
            "npm install @bytecodealliance/componentize-js@{}, or set KEEL_COMPONENTIZE_JS to its bin/componentize-js",
            versions::COMPONENTIZE_JS
        ),
        "wit-bindgen" => format!(
            "cargo install --locked wit-bindgen-cli@{}, or set KEEL_WIT_BINDGEN",
            versions::WIT_BINDGEN_CLI
        ),
        "wasm-tools" => format!(
            "cargo install --locked wasm-tools@{}, or set KEEL_WASM_TOOLS",
            versions::WASM_TOOLS
        ),
        "clang" => format!(
            "apt-get install clang-{v} lld-{v} wasi-libc libclang-rt-{v}-dev-wasm32, or set KEEL_CLANG",
            v = versions::CLANG
        ),
        _ => "install it".into(),
    }
}

/// Runs a toolchain program, capturing its output for the error.
fn run(cmd: &mut Command, tool: &str, what: &str) -> Result<()> {
    tracing::debug!(?cmd, "keel build");
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            BuildError::ToolMissing {
                tool: format!("{} ({tool})", cmd.get_program().to_string_lossy()),
                hint: hint(tool),
            }
        } else {
            BuildError::ToolFailed {
                what: what.into(),
                status: "could not start".into(),
                output: e.to_string(),
            }
        }
    })?;
    if !out.status.success() {
        let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        // componentize-py prints a Rust backtrace after the Python one; the
        // first lines say what is wrong.
        let output: String = output
            .lines()
            .take_while(|l| !l.starts_with("Stack backtrace:"))
            .take(60)
            .collect::<Vec<_>>()
            .join("\n");
        return Err(BuildError::ToolFailed {
            what: what.into(),
            status: out.status.to_string(),
            output,
        });
    }
    Ok(())
}

/// The contract, compiled in.
pub const WIT: &[(&str, &str)] = &[
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("transform.wit", include_str!("../../../wit/transform.wit")),
    ("validator.wit", include_str!("../../../wit/validator.wit")),
    ("monitor.wit", include_str!("../../../wit/monitor.wit")),
];
const PY_SDK: &[(&str, &str)] = &[
    ("keel.py", include_str!("../../../sdk/python/keel.py")),
    (
        "keel_app.py",
        include_str!("../../../sdk/python/keel_app.py"),
    ),
    (
        "transform.py",
        include_str!("../../../sdk/python/transform.py"),
    ),
    (
        "validator.py",
        include_str!("../../../sdk/python/validator.py"),
    ),
    ("monitor.py", include_str!("../../../sdk/python/monitor.py")),
];
const JS_SDK: &[(&str, &str)] = &[("keel.js", include_str!("../../../sdk/js/keel.js"))];
const C_SDK: &[(&str, &str)] = &[
    ("keel.h", include_str!("../../../sdk/c/keel.h")),
    ("keel.c", include_str!("../../../sdk/c/keel.c")),
];

fn write_files(dir: &Path, files: &[(&str, &str)]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(io(&p))?;
    }
    Ok(())
}

/// Source files of a project (not `target/`, not hidden), sorted.
fn sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(io(&d))? {
            let e = e.map_err(io(&d))?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "target" || name == "__pycache__" {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A digest of everything a build of `project` depends on in this crate and
/// the project (sources, SDK, contract), so a caller can skip rebuilding.
pub fn fingerprint(project: &Project) -> Result<String> {
    let mut h = Sha256::new();
    for (name, text) in WIT.iter().chain(PY_SDK).chain(JS_SDK).chain(C_SDK) {
        h.update(name.as_bytes());
        h.update(text.as_bytes());
    }
    h.update(versions::COMPONENTIZE_PY);
    h.update(versions::COMPONENTIZE_JS);
    h.update(versions::WASM_TOOLS);
    h.update(versions::WIT_BINDGEN_CLI);
    for p in sources(&project.dir)? {
        let rel = p.strip_prefix(&project.dir).unwrap_or(&p);
        h.update(rel.to_string_lossy().as_bytes());
        h.update(std::fs::read(&p).map_err(io(&p))?);
    }
    Ok(hex::encode(h.finalize()))
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct Built {
    pub output: PathBuf,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Builds `project` into the component `output`.
pub fn build(project: &Project, tools: &Toolchains, output: &Path) -> Result<Built> {
    let start = Instant::now();
    let entry = project.entry();
    if !entry.is_file() {
        return Err(BuildError::Project {
            path: entry,
            message: format!("a {} plugin needs this file", project.lang.as_str()),
        });
    }
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let stage = tempfile::tempdir().map_err(io(&std::env::temp_dir()))?;
    let wit = stage.path().join("wit");
    write_files(&wit, WIT)?;
    let world = project.kind.world();
    match project.lang {
        Lang::Rust => build_rust(project, tools, output)?,
        Lang::Python => {
            let sdk = stage.path().join("sdk");
            write_files(&sdk, PY_SDK)?;
            run(
                Command::new(&tools.componentize_py)
                    .arg("-d")
                    .arg(&wit)
                    .args(["-w", &world, "componentize", "keel_app", "-p"])
                    .arg(&project.dir)
                    .arg("-p")
                    .arg(&sdk)
                    .arg("-o")
                    .arg(output),
                "componentize-py",
                "componentize-py",
            )?;
        }
        Lang::Js => {
            // componentize-js takes one module and resolves its imports
            // relative to it: the project's modules and the SDK side by side.
            let src = stage.path().join("src");
            write_files(&src, JS_SDK)?;
            for p in sources(&project.dir)? {
                if p.extension().is_some_and(|e| e == "js" || e == "mjs") {
                    let rel = p.strip_prefix(&project.dir).unwrap_or(&p);
                    let dest = src.join(rel);
                    if let Some(d) = dest.parent() {
                        std::fs::create_dir_all(d).map_err(io(d))?;
                    }
                    std::fs::copy(&p, &dest).map_err(io(&p))?;
                }
            }
            // No outgoing HTTP and no fetch events: the host grants neither.
            run(
                Command::new(&tools.componentize_js)
                    .arg("--wit")
                    .arg(&wit)
                    .args(["-n", &world, "-d", "http", "fetch-event", "-o"])
                    .arg(output)
                    .arg(src.join("plugin.js")),
                "componentize-js",
                "componentize-js",
            )?;
        }
        Lang::C => build_c(project, tools, stage.path(), &wit, &world, output)?,
    }
    let bytes = std::fs::metadata(output).map_err(io(output))?.len();
    Ok(Built {
        output: output.to_path_buf(),
        bytes,
        elapsed: start.elapsed(),
    })
}

fn build_rust(project: &Project, tools: &Toolchains, output: &Path) -> Result<()> {
    let manifest = project.dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(io(&manifest))?;
    #[derive(Deserialize)]
    struct Cargo {
        package: Package,
    }
    #[derive(Deserialize)]
    struct Package {
        name: String,
    }
    let pkg: Cargo = toml::from_str(&text).map_err(|e| BuildError::Project {
        path: manifest.clone(),
        message: e.to_string(),
    })?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project.dir.join("target"));
    run(
        Command::new(&tools.cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target),
        "cargo",
        "cargo build --target wasm32-wasip2",
    )?;
    let built = target
        .join("wasm32-wasip2")
        .join("release")
        .join(format!("{}.wasm", pkg.package.name.replace('-', "_")));
    std::fs::copy(&built, output).map_err(io(&built))?;
    Ok(())
}

fn build_c(
    project: &Project,
    tools: &Toolchains,
    stage: &Path,
    wit: &Path,
    world: &str,
    output: &Path,
) -> Result<()> {
    let gen_dir = stage.join("gen");
    let sdk = stage.join("sdk");
    write_files(&sdk, C_SDK)?;
    run(
        Command::new(&tools.wit_bindgen)
            .arg("c")
            .arg(wit)
            .args(["--world", world, "--out-dir"])
            .arg(&gen_dir),
        "wit-bindgen",
        "wit-bindgen c",
    )?;
    let stem = world.replace('-', "_");
    let mut cc = Command::new(&tools.clang);
    // Debian's wasi-libc is installed for the `wasm32-wasi` triple (preview 1).
    cc.args([
        "--target=wasm32-wasi",
        "-mexec-model=reactor",
        "-O2",
        "-Wall",
    ])
    .arg(format!("-DKEEL_WORLD_H=\"{stem}.h\""))
    .arg(format!("-DKEEL_{}", project.kind.as_str().to_uppercase()))
    .arg("-I")
    .arg(&gen_dir)
    .arg("-I")
    .arg(&sdk)
    .arg("-I")
    .arg(&project.dir)
    .arg(gen_dir.join(format!("{stem}.c")))
    .arg(gen_dir.join(format!("{stem}_component_type.o")))
    .arg(sdk.join("keel.c"));
    for p in sources(&project.dir)? {
        if p.extension().is_some_and(|e| e == "c") {
            cc.arg(p);
        }
    }
    let core = stage.join("core.wasm");
    cc.arg("-o").arg(&core);
    run(&mut cc, "clang", "clang (wasm32-wasi)")?;
    let adapter = stage.join("wasi_snapshot_preview1.reactor.wasm");
    std::fs::write(
        &adapter,
        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    )
    .map_err(io(&adapter))?;
    run(
        Command::new(&tools.wasm_tools)
            .args(["component", "new"])
            .arg(&core)
            .arg("--adapt")
            .arg(format!("wasi_snapshot_preview1={}", adapter.display()))
            .arg("-o")
            .arg(output),
        "wasm-tools",
        "wasm-tools component new",
    )?;
    Ok(())
}
