//! `cargo xtask`: the project's tasks, so that a fresh clone needs exactly two
//! commands (`cargo xtask demo`, `cargo xtask test`). Each task installs what
//! it needs (the wasm32-wasip2 target), builds every guest component once, and
//! then does its job.

mod edge;
mod langs;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  demo          build everything and run the example pipeline (examples/penguins)
  test          build guests, run every test in the workspace (extra args go to cargo test), then the edge smoke tests (x86_64, aarch64 under qemu)
  build-guests  build first-party plugins and test guests (Rust for wasm32-wasip2; Python, JS, C through keel-build)
  bench-langs   component size, build time, instantiate time and throughput per language [--dev]
  bench         run the benchmarks (criterion) and print the figures
  bench-drift   keel drift vs Evidently on 1M x 50 Parquet files (installs the Python side)
  bench-serve   keel serve under load: one-row OIP requests, open and closed loop, three audit modes
  edge          the runtime-only keel: size, bundle smoke test, footprint, Pulley [--target aarch64]
  bench-onnx    the onnx-model stage (wasi:nn, tract) vs onnxruntime on the same model and rows
  ci            what .ci/run does: fmt check, clippy -D warnings, test";

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = root()?;
    std::env::set_current_dir(&root)?;
    match task.as_str() {
        "demo" => demo(&root),
        "test" => test(&root, &std::env::args().skip(2).collect::<Vec<_>>()),
        "build-guests" => build_guests(&root).map(|_| ()),
        "bench" => bench(&root),
        "bench-drift" => bench_drift(&root),
        "bench-serve" => bench_serve(&root),
        "bench-onnx" => bench_onnx(&root),
        "bench-langs" => bench_langs(&root),
        "edge" => edge::edge(&root, &std::env::args().skip(2).collect::<Vec<_>>()),
        "ci" => {
            run(cargo().args(["fmt", "--all", "--check"]))?;
            build_guests(&root)?;
            run(cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))?;
            test(&root, &[])
        }
        _ => {
            eprintln!("{USAGE}");
            bail!("unknown task `{task}`")
        }
    }
}

fn root() -> Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent()
        .map(Path::to_path_buf)
        .context("xtask lives one level below the workspace root")
}

pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

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
fn build_guests(root: &Path) -> Result<PathBuf> {
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

fn demo(root: &Path) -> Result<()> {
    let plugins = build_guests(root)?;
    run(cargo().args(["build", "-p", "keel"]))?;
    let keel = target_dir(root).join("debug").join("keel");
    let out = target_dir(root).join("demo");
    // A fresh store each time, so the demo's audit log starts at seq 0.
    let store = out.join("store");
    let _ = std::fs::remove_dir_all(&store);
    std::fs::create_dir_all(&out)?;
    let keel_cmd = || {
        let mut c = Command::new(&keel);
        c.env("KEEL_STORE", &store);
        c
    };
    let example = root.join("examples").join("penguins");
    eprintln!("\n== the rule validator, as `keel plugin inspect` shows it ==");
    run(keel_cmd()
        .args(["plugin", "inspect"])
        .arg(plugins.join("rule-validator.wasm")))?;
    for (what, input) in [
        (
            "the reference seasons (2007-08): no drift expected",
            "reference.csv",
        ),
        (
            "the 2009 season (current.csv): drift expected",
            "current.csv",
        ),
    ] {
        eprintln!("\n== keel run: penguins pipeline on {what} ==");
        run(keel_cmd()
            .arg("run")
            .arg(example.join("pipeline.toml"))
            .arg("--input")
            .arg(example.join(input))
            .arg("--output")
            .arg(out.join(format!("predictions-{input}")))
            .arg("--summary-json")
            .arg(out.join(format!("summary-{input}.json")))
            .arg("--plugin-dir")
            .arg(&plugins))?;
    }
    eprintln!("\n== keel drift: 2009 against 2007-08, column by column, with histograms ==");
    // Exit 6 (drift found, with --fail-on-drift) is not asked for here: drift is the point.
    run(keel_cmd()
        .arg("drift")
        .arg(example.join("reference.csv"))
        .arg(example.join("current.csv"))
        .arg("--quiet"))?;
    let report = out.join("drift-report.html");
    run(keel_cmd()
        .arg("report")
        .arg(example.join("reference.csv"))
        .arg(example.join("current.csv"))
        .arg("--quiet")
        .arg("--output")
        .arg(&report))?;
    serve_demo(&keel_cmd, &example, &plugins)?;
    eprintln!("\n== keel audit log ==");
    run(keel_cmd().args(["audit", "log"]))?;
    let latest = keel_cmd()
        .args(["audit", "log", "--json", "--limit", "1"])
        .output()
        .context("running keel audit log")?;
    let text = String::from_utf8_lossy(&latest.stdout);
    let id = text
        .split("\"id\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("no record id in `keel audit log --json`")?
        .to_string();
    eprintln!(
        "\n== keel audit show {id}: the lineage of the last invocation (the served request) =="
    );
    run(keel_cmd().args(["audit", "show", &id]))?;
    eprintln!("\n== keel audit verify ==");
    run(keel_cmd().args(["audit", "verify"]))?;
    eprintln!(
        "\npredictions:  {}\ndrift report: {}\nstore:        {}",
        out.join("predictions-current.csv").display(),
        report.display(),
        store.display()
    );
    Ok(())
}

/// One HTTP/1.1 exchange on a fresh connection: the demo needs no client library.
fn http(addr: &str, method: &str, path: &str, body: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_once("\r\n\r\n")
        .map_or(out.clone(), |(_, b)| b.to_string()))
}

/// The demo's pipeline deployed and served over the Open Inference Protocol:
/// one request, its answer, the metrics it moved; its audit record is the
/// last one `keel audit show` prints.
fn serve_demo(keel_cmd: &dyn Fn() -> Command, example: &Path, plugins: &Path) -> Result<()> {
    eprintln!(
        "\n== keel pipeline deploy + keel serve: the same pipeline over the Open Inference Protocol v2 =="
    );
    run(keel_cmd()
        .args(["pipeline", "deploy"])
        .arg(example.join("pipeline.toml"))
        .arg("--plugin-dir")
        .arg(plugins))?;
    let mut server = keel_cmd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting keel serve")?;
    let mut line = String::new();
    {
        use std::io::BufRead;
        let out = server.stdout.take().context("keel serve stdout")?;
        std::io::BufReader::new(out).read_line(&mut line)?;
    }
    let result = (|| -> Result<()> {
        let addr = line
            .trim()
            .strip_prefix("keel serve: listening on http://")
            .with_context(|| format!("keel serve did not start: {line:?}"))?
            .to_string();
        let request = r#"{"id": "demo-request-1", "inputs": [
  {"name": "island", "datatype": "BYTES", "shape": [2], "data": ["Biscoe", "Dream"]},
  {"name": "bill_length_mm", "datatype": "FP64", "shape": [2], "data": [46.5, 39.2]},
  {"name": "bill_depth_mm", "datatype": "FP64", "shape": [2], "data": [15.2, 18.6]},
  {"name": "flipper_length_mm", "datatype": "FP64", "shape": [2], "data": [215, 190]},
  {"name": "body_mass_g", "datatype": "FP64", "shape": [2], "data": [5050, 3700]},
  {"name": "sex", "datatype": "BYTES", "shape": [2], "data": ["male", "female"]}]}"#;
        eprintln!("POST http://{addr}/v2/models/penguins/infer\n{request}");
        let answer = http(&addr, "POST", "/v2/models/penguins/infer", request)?;
        let v: serde_json::Value = serde_json::from_str(&answer)
            .with_context(|| format!("not an OIP answer: {answer}"))?;
        let outputs: Vec<&serde_json::Value> = v["outputs"]
            .as_array()
            .map(|o| {
                o.iter()
                    .filter(|t| t["name"] == "prob_gentoo" || t["name"] == "is_gentoo")
                    .collect()
            })
            .unwrap_or_default();
        eprintln!(
            "answer: model {} version {} id {}",
            v["model_name"], v["model_version"], v["id"]
        );
        for t in outputs {
            eprintln!(
                "  {} ({} {}): {}",
                t["name"].as_str().unwrap_or_default(),
                t["datatype"].as_str().unwrap_or_default(),
                t["shape"],
                t["data"]
            );
        }
        let metrics = http(&addr, "GET", "/metrics", "")?;
        eprintln!("metrics (excerpt):");
        for l in metrics.lines().filter(|l| {
            l.starts_with("keel_requests_total") || l.starts_with("keel_audit_records_total")
        }) {
            eprintln!("  {l}");
        }
        Ok(())
    })();
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    result
}

/// `extra` goes to `cargo test` (`cargo xtask test --no-fail-fast`, or a
/// filter after `--`).
fn test(root: &Path, extra: &[String]) -> Result<()> {
    ensure_chromium()?;
    let triton = ensure_tritonclient(root)?;
    let onnx = ensure_onnx_tools(root)?;
    let plugins = build_guests(root)?;
    let guests = target_dir(root).join("test-guests");
    let tools = langs::toolchains(root)?;
    run(cargo()
        .args(["test", "--workspace"])
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
        edge::edge(root, &[])?;
        // The same bundle smoke test for an aarch64 box: cross-built, run
        // under qemu-aarch64 (installs the cross gcc and qemu if missing).
        let t = std::time::Instant::now();
        edge::edge(root, &["--target".into(), "aarch64".into()])?;
        eprintln!(
            "aarch64 edge build and qemu smoke test: {:.0} s",
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The `keel serve` tests drive the daemon with Triton's own Python client:
/// a virtualenv with `tritonclient[http]`. Returns its python.
fn ensure_tritonclient(root: &Path) -> Result<PathBuf> {
    ensure_venv(
        root,
        "tritonclient",
        &root.join("host/cli/tests/tritonclient/requirements.txt"),
    )
}

/// The ONNX tests and `bench-onnx` train and export the example's model with
/// scikit-learn + skl2onnx and check Keel against onnxruntime: a virtualenv
/// with examples/penguins-onnx/requirements.txt. Returns its python.
fn ensure_onnx_tools(root: &Path) -> Result<PathBuf> {
    ensure_venv(
        root,
        "onnx",
        &root.join("examples/penguins-onnx/requirements.txt"),
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
fn ensure_chromium() -> Result<()> {
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

/// `keel drift` against Evidently on the same files, in one run (only
/// ratios mean anything on a shared 2-core machine).
fn bench_drift(root: &Path) -> Result<()> {
    run(cargo().args(["build", "--release", "-p", "keel"]))?;
    // A virtualenv of its own: Evidently pins pandas below 3.
    let dir = target_dir(root).join("bench-drift");
    let venv = dir.join("venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "-r",
        "benches/drift/requirements.txt",
    ]))?;
    let keel = target_dir(root).join("release").join("keel");
    let mut cmd = Command::new(&python);
    cmd.arg("benches/drift/bench.py")
        .arg("--keel")
        .arg(keel)
        .arg("--dir")
        .arg(&dir);
    cmd.args(std::env::args().skip(2));
    run(&mut cmd)
}

/// `keel serve` under load on loopback: one-row requests through a scaler
/// and a logistic regression, auditing on, driven by the load generator
/// (`host/server/examples/loadgen.rs`) open-loop at fixed rates and closed-loop
/// at full speed. `cargo xtask bench-serve [SECONDS]`.
fn bench_serve(root: &Path) -> Result<()> {
    let seconds: u64 = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()
        .context("bench-serve [SECONDS]")?
        .unwrap_or(10);
    let plugins = build_guests(root)?;
    run(cargo().args(["build", "--release", "-p", "keel"]))?;
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "keel-server",
        "--example",
        "loadgen",
    ]))?;
    let release = target_dir(root).join("release");
    let keel = release.join("keel");
    let loadgen = release.join("examples").join("loadgen");
    let dir = target_dir(root).join("bench-serve");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let store = dir.join("store");
    run(Command::new(&keel)
        .args([
            "pipeline",
            "deploy",
            "benches/serve/pipeline.toml",
            "--plugin-dir",
        ])
        .arg(&plugins)
        .env("KEEL_STORE", &store))?;
    let body = dir.join("request.json");
    std::fs::write(
        &body,
        r#"{"id": "bench", "inputs": [
  {"name": "bill_length_mm", "datatype": "FP64", "shape": [1], "data": [46.5]},
  {"name": "bill_depth_mm", "datatype": "FP64", "shape": [1], "data": [15.2]},
  {"name": "flipper_length_mm", "datatype": "FP64", "shape": [1], "data": [215.0]},
  {"name": "body_mass_g", "datatype": "FP64", "shape": [1], "data": [5050.0]}]}"#,
    )?;
    // The default (each group commit one frame of the audit write-ahead log,
    // fdatasync'ed: survives power loss), a sled flush + fdatasync per group
    // (the log off), and the log without fdatasync (survives a crash of the
    // daemon), same run.
    let no_wal = dir.join("no-wal.toml");
    std::fs::write(&no_wal, "[audit]\nwal_mb = 0\n")?;
    let relaxed = dir.join("no-fdatasync.toml");
    std::fs::write(&relaxed, "[audit]\nfdatasync = false\n")?;
    let mut rows = Vec::new();
    for (mode, config) in [
        ("wal+fdatasync", None),
        ("sled+fdatasync", Some(&no_wal)),
        ("wal, no sync", Some(&relaxed)),
    ] {
        let mut cmd = Command::new(&keel);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("KEEL_STORE", &store)
            .stdout(std::process::Stdio::piped());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let mut server = cmd.spawn().context("starting keel serve")?;
        let mut line = String::new();
        {
            use std::io::BufRead;
            let out = server.stdout.take().context("keel serve stdout")?;
            std::io::BufReader::new(out).read_line(&mut line)?;
        }
        let addr = line
            .trim()
            .strip_prefix("keel serve: listening on http://")
            .with_context(|| format!("keel serve did not start: {line:?}"))?
            .to_string();
        let scenarios: [(&str, Option<u32>, u32); 5] = [
            ("open loop 500 req/s", Some(500), 32),
            ("open loop 1000 req/s", Some(1000), 32),
            ("open loop 2000 req/s", Some(2000), 32),
            ("closed loop, 1 connection", None, 1),
            ("closed loop, 8 connections", None, 8),
        ];
        for (name, rate, conns) in scenarios {
            let mut cmd = Command::new(&loadgen);
            cmd.args(["--addr", &addr, "--path", "/v2/models/bench/infer"])
                .arg("--body-file")
                .arg(&body)
                .args(["--connections", &conns.to_string()])
                .args([
                    "--duration",
                    &format!("{seconds}s"),
                    "--warmup",
                    "2s",
                    "--unique-ids",
                ]);
            if let Some(r) = rate {
                cmd.args(["--rate", &r.to_string()]);
            }
            eprintln!("bench-serve: {mode}: {name} for {seconds} s");
            let out = cmd.output().context("running the load generator")?;
            if !out.status.success() {
                let _ = server.kill();
                bail!("loadgen failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            rows.push((
                mode,
                name,
                String::from_utf8_lossy(&out.stdout).into_owned(),
            ));
        }
        let _ = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status();
        let _ = server.wait();
    }
    println!(
        "\n{:<15} {:<28} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "audit", "scenario", "ok", "req/s", "p50 µs", "p90 µs", "p99 µs", "max µs"
    );
    for (mode, name, json) in rows {
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        let num = |p: &[&str]| {
            p.iter()
                .fold(&v, |v, k| &v[*k])
                .as_f64()
                .unwrap_or(f64::NAN)
        };
        println!(
            "{:<15} {:<28} {:>8} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>8.0}",
            mode,
            name,
            num(&["ok"]),
            num(&["throughput_rps"]),
            num(&["latency_us", "p50"]),
            num(&["latency_us", "p90"]),
            num(&["latency_us", "p99"]),
            num(&["latency_us", "max"])
        );
    }
    Ok(())
}

/// The `onnx-model` stage against onnxruntime on the example's model and the
/// same 1,000,000 rows, in one run: throughput by batch size and per-row
/// latency, with tract called natively as a third line (what wasm and the
/// batch boundary cost on top of the backend).
fn bench_onnx(root: &Path) -> Result<()> {
    let python = ensure_onnx_tools(root)?;
    let plugins = build_guests(root)?;
    let dir = target_dir(root).join("bench-onnx");
    std::fs::create_dir_all(&dir)?;
    let model = dir.join("penguins-logreg.onnx");
    let data = dir.join("features.f32");
    run(Command::new(&python)
        .arg(root.join("examples/penguins-onnx/export_model.py"))
        .arg(&model))?;
    let keel = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["bench", "-q", "-p", "keel-runtime", "--bench", "onnx"])
        .env("KEEL_PLUGIN_DIR", &plugins)
        .env("KEEL_BENCH_MODEL", &model)
        .env("KEEL_BENCH_DATA", &data)
        .output()
        .context("running the keel side")?;
    if !keel.status.success() {
        bail!(
            "keel side failed: {}",
            String::from_utf8_lossy(&keel.stderr)
        );
    }
    let ort = Command::new(&python)
        .arg(root.join("benches/onnx/ort_bench.py"))
        .arg(&model)
        .arg(&data)
        .output()
        .context("running the onnxruntime side")?;
    if !ort.status.success() {
        bail!(
            "onnxruntime side failed: {}",
            String::from_utf8_lossy(&ort.stderr)
        );
    }
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for out in [&keel.stdout, &ort.stdout] {
        for line in String::from_utf8_lossy(out).lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                rows.push(v);
            }
        }
    }
    let ort_of = |batch: u64, key: &str| {
        rows.iter()
            .find(|r| {
                r["batch"] == batch
                    && r["what"]
                        .as_str()
                        .is_some_and(|w| w.starts_with("onnxruntime"))
            })
            .and_then(|r| r[key].as_f64())
    };
    println!("throughput, 1,000,000 rows x 7 features (median of 3 passes), one thread:");
    println!(
        "  {:<34} {:>6} {:>14} {:>16}",
        "what", "batch", "rows/s", "vs onnxruntime"
    );
    for r in rows.iter().filter(|r| r["rows_per_s"].is_number()) {
        let b = r["batch"].as_u64().unwrap_or(0);
        let v = r["rows_per_s"].as_f64().unwrap_or(0.0);
        let ratio = ort_of(b, "rows_per_s").map_or("-".into(), |o| format!("{:.2}x", v / o));
        println!(
            "  {:<34} {:>6} {:>14.0} {:>16}",
            r["what"].as_str().unwrap_or(""),
            b,
            v,
            ratio
        );
    }
    println!("per-row latency, 1-row batches (5,000 calls):");
    println!(
        "  {:<34} {:>9} {:>9} {:>16}",
        "what", "p50 µs", "p99 µs", "p50 vs ort"
    );
    for r in rows.iter().filter(|r| r["p50_us"].is_number()) {
        let p50 = r["p50_us"].as_f64().unwrap_or(0.0);
        let ratio = ort_of(1, "p50_us").map_or("-".into(), |o| format!("{:.2}x", p50 / o));
        println!(
            "  {:<34} {:>9.1} {:>9.1} {:>16}",
            r["what"].as_str().unwrap_or(""),
            p50,
            r["p99_us"].as_f64().unwrap_or(0.0),
            ratio
        );
    }
    Ok(())
}

fn bench(root: &Path) -> Result<()> {
    let plugins = build_guests(root)?;
    run(cargo()
        .args(["bench", "-p", "keel-runtime", "--bench", "sandbox"])
        .env("KEEL_PLUGIN_DIR", &plugins)
        .env("KEEL_TEST_GUESTS", target_dir(root).join("test-guests")))
}

/// Per language: the conformance transform's build time (here: a fresh
/// `keel-build` build for Python, JavaScript and C; for Rust, recompiling the
/// plugin crate with its dependencies already built), then the runtime
/// figures from `cargo bench -p keel-runtime --bench langs`.
fn bench_langs(root: &Path) -> Result<()> {
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
    if std::env::args().any(|a| a == "--dev") {
        cmd.args(["--profile", "dev"]);
    }
    run(cmd.env("KEEL_TEST_GUESTS", target_dir(root).join("test-guests")))
}
