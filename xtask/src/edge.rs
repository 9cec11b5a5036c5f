//! `cargo xtask edge`: the runtime-only keel (no Cranelift, no daemon), its
//! size, a smoke test of a precompiled bundle of the demo pipeline against
//! the full build's output, and the footprint figures: cold start, resident
//! memory, per-instance memory, Pulley's speed. `--target aarch64` cross-builds
//! and runs the smoke test under qemu-aarch64.

use crate::cmd::{cargo, run, target_dir};
use crate::guests::build_guests;
use crate::langs::{apt_install, has};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CROSS_TRIPLE: &str = "aarch64-unknown-linux-gnu";

/// Where qemu-aarch64 finds the target's dynamic loader and libc (`-L`).
const CROSS_SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// Debian's cross gcc and qemu-user, and the rustup target.
fn ensure_cross() -> Result<()> {
    // The loader comes with libc6-arm64-cross, which gcc only recommends.
    let loader = Path::new(CROSS_SYSROOT).join("lib/ld-linux-aarch64.so.1");
    if !has("aarch64-linux-gnu-gcc") || !has("qemu-aarch64") || !loader.exists() {
        apt_install(
            "the aarch64 edge build",
            &[
                "gcc-aarch64-linux-gnu",
                "libc6-dev-arm64-cross",
                "qemu-user",
            ],
        )?;
    }
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(CROSS_TRIPLE));
    if !installed {
        run(Command::new("rustup").args(["target", "add", CROSS_TRIPLE]))?;
    }
    Ok(())
}

/// Builds the edge binary; returns its path.
fn build_edge(root: &Path, cross: bool) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--profile",
        "edge",
        "-p",
        "keel",
        "--no-default-features",
    ]);
    let dir = if cross {
        // A target dir of its own: the cross build neither waits for the
        // lock of the native one nor shares its cache, so it runs alongside
        // and its cost is measured from cold.
        let cross_dir = target_dir(root).join("cross");
        cmd.args(["--target", CROSS_TRIPLE])
            .arg("--target-dir")
            .arg(&cross_dir)
            .env(
                "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
                "aarch64-linux-gnu-gcc",
            )
            .env("CC_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-gcc")
            .env("AR_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-ar");
        cross_dir.join(CROSS_TRIPLE).join("edge")
    } else {
        target_dir(root).join("edge")
    };
    run(&mut cmd)?;
    Ok(dir.join("keel"))
}

/// Runs `cmd`, waits with `wait4` for its resource usage; returns (exit
/// status, wall time, peak resident set in KiB, stderr).
fn measured(cmd: &mut Command) -> Result<(i32, Duration, u64, String)> {
    let t = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = std::io::Read::read_to_string(e, &mut s);
        }
        s
    });
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, reaped here exactly once (the Child
    // handle was consumed above and never waits on it).
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = t.elapsed();
    if r != pid {
        bail!("wait4 on {cmd:?} failed");
    }
    let stderr = reader.join().unwrap_or_default();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((code, wall, usage.ru_maxrss as u64, stderr))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Which machine the edge binary is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// This machine's architecture (the full checks, footprint and Pulley included).
    #[value(name = "x86_64")]
    Native,
    /// Cross-built, smoke-tested under qemu-aarch64.
    Aarch64,
}

/// `cargo xtask edge [--target x86_64|aarch64]`.
#[derive(Debug, clap::Args)]
pub struct EdgeArgs {
    /// Cross-build for aarch64 and run the smoke test under qemu-aarch64.
    #[arg(long, value_enum, default_value = "x86_64")]
    pub target: Arch,
}

pub fn edge(root: &Path, target: Arch) -> Result<()> {
    let cross = target == Arch::Aarch64;
    if cross {
        ensure_cross()?;
    }
    let e = Edge::build(root, cross)?;
    let rss_smoke_kib = e.smoke()?;
    e.refusals()?;
    if cross {
        return Ok(());
    }
    e.footprint(rss_smoke_kib)?;
    e.instance_peaks()?;
    e.pulley()
}

/// The binaries and files every step shares: the edge binary (run natively
/// or under qemu), the full build that compiles bundles and gives the
/// reference output, the demo pipeline and its bundle.
struct Edge {
    cross: bool,
    arch: &'static str,
    plugins: PathBuf,
    full: PathBuf,
    bin: PathBuf,
    work: PathBuf,
    spec: PathBuf,
    input: PathBuf,
    bundle: PathBuf,
    /// The audit store of the smoke test's run.
    store: PathBuf,
}

impl Edge {
    /// Builds the guests, the full keel and the edge keel; compiles the demo
    /// pipeline into a bundle and runs the original spec for the reference output.
    fn build(root: &Path, cross: bool) -> Result<Self> {
        let plugins = build_guests(root)?;
        run(cargo().args(["build", "-p", "keel"]))?;
        let full = target_dir(root).join("debug").join("keel");
        let bin = build_edge(root, cross)?;
        let size = std::fs::metadata(&bin)?.len();
        println!(
            "edge binary: {} ({:.1} MB, stripped; goal <= 10 MB)",
            bin.display(),
            size as f64 / 1e6
        );
        let arch = if cross {
            "aarch64"
        } else {
            std::env::consts::ARCH
        };
        let work = target_dir(root).join("edge-smoke");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        let example = root.join("examples").join("penguins");
        let e = Edge {
            cross,
            arch,
            bundle: work.join(format!("penguins-{arch}")),
            store: work.join("store"),
            spec: example.join("pipeline.toml"),
            input: example.join("current.csv"),
            plugins,
            full,
            bin,
            work,
        };
        e.compile(arch, &e.bundle)?;
        run(Command::new(&e.full)
            .arg("run")
            .arg(&e.spec)
            .arg("--input")
            .arg(&e.input)
            .arg("--output")
            .arg(e.work.join("expected.csv"))
            .args(["--quiet", "--no-audit", "--plugin-dir"])
            .arg(&e.plugins))?;
        Ok(e)
    }

    /// `keel compile` of the demo pipeline for `target` into `out`, by the full build.
    fn compile(&self, target: &str, out: &Path) -> Result<()> {
        run(Command::new(&self.full)
            .args(["compile"])
            .arg(&self.spec)
            .args(["--target", target, "--out"])
            .arg(out)
            .arg("--plugin-dir")
            .arg(&self.plugins))
    }

    /// The edge binary, natively or under qemu-aarch64.
    fn cmd(&self) -> Command {
        let mut c = if self.cross {
            let mut c = Command::new("qemu-aarch64");
            c.args(["-L", CROSS_SYSROOT]).arg(&self.bin);
            // qemu-user tracks every page of a reservation, and the pool's
            // terabytes of address space take it minutes: allocate on demand.
            c.env("KEEL_POOLING", "0");
            c
        } else {
            Command::new(&self.bin)
        };
        // No cache to fall back on: every artifact comes from the bundle.
        c.env("KEEL_CACHE_DIR", self.work.join("no-cache"));
        c
    }

    /// `keel run SPEC --input INPUT --quiet` on the edge binary, audited into
    /// `store` or with `--no-audit`.
    fn run(&self, spec: &Path, input: &Path, store: Option<&Path>) -> Command {
        let mut c = self.cmd();
        if let Some(store) = store {
            c.arg("--store").arg(store);
        }
        c.arg("run")
            .arg(spec)
            .arg("--input")
            .arg(input)
            .arg("--quiet");
        if store.is_none() {
            c.arg("--no-audit");
        }
        c
    }

    fn bundle_spec(&self) -> PathBuf {
        self.bundle.join("pipeline.toml")
    }

    /// The bundle, with the audit log on, gives the full build's bytes.
    /// Returns the run's peak resident memory (KiB).
    fn smoke(&self) -> Result<u64> {
        let got = self.work.join("edge.csv");
        let expected = self.work.join("expected.csv");
        let (_, rss_kib) = succeeded(
            self.run(&self.bundle_spec(), &self.input, Some(&self.store))
                .arg("--output")
                .arg(&got),
            "the bundle",
        )?;
        if std::fs::read(&got)? != std::fs::read(&expected)? {
            bail!(
                "the edge binary's output {} differs from the full build's {}",
                got.display(),
                expected.display()
            );
        }
        println!(
            "smoke ({}{}): the bundle's predictions equal the full build's ({} rows), audited",
            self.arch,
            if self.cross {
                ", under qemu-aarch64"
            } else {
                ""
            },
            std::fs::read_to_string(&got)?
                .lines()
                .count()
                .saturating_sub(1)
        );
        Ok(rss_kib)
    }

    /// What the edge build cannot do is refused, saying so: a spec that was
    /// not compiled, Parquet input, and bundles that need models (`nn`) or
    /// alert webhooks, refused when they load, before any row runs.
    fn refusals(&self) -> Result<()> {
        refused(
            self.run(&self.spec, &self.input, None)
                .arg("--plugin-dir")
                .arg(&self.plugins),
            "not precompiled",
            "ran a spec that was never compiled",
        )?;
        let parquet = self.work.join("input.parquet");
        std::fs::write(&parquet, b"")?;
        refused(
            &mut self.run(&self.bundle_spec(), &parquet, None),
            "without parquet support",
            "did not refuse Parquet input clearly",
        )?;
        let bundled = std::fs::read_to_string(self.bundle_spec())?;
        for (feature, variant) in [
            ("nn", with_model(&bundled)?),
            ("webhook", with_webhook(&bundled)?),
        ] {
            let spec = self.bundle.join(format!("pipeline-{feature}.toml"));
            std::fs::write(&spec, variant)?;
            refused(
                &mut self.run(&spec, &self.input, None),
                &format!("without the `{feature}` feature"),
                &format!("did not refuse a spec that needs `{feature}` clearly"),
            )?;
        }
        Ok(())
    }

    /// Cold start to the first prediction (one row, median of 21), with and
    /// without the audit log; peak resident memory on one row and on the
    /// demo data, to tell what the rows cost from what the store costs.
    /// `rss_smoke_kib`: the smoke test's peak, the demo data audited.
    fn footprint(&self, rss_smoke_kib: u64) -> Result<()> {
        let one = self.work.join("one-row.csv");
        let text = std::fs::read_to_string(&self.input)?;
        let mut lines = text.lines();
        std::fs::write(
            &one,
            format!(
                "{}\n{}\n",
                lines.next().unwrap_or_default(),
                lines.next().unwrap_or_default()
            ),
        )?;
        let cold = |audit: bool| -> Result<(Duration, u64)> {
            let mut walls = Vec::new();
            let mut rss = 0;
            for i in 0..21 {
                let store = audit.then(|| self.work.join(format!("cold-store-{i}")));
                let (wall, r) = succeeded(
                    self.run(&self.bundle_spec(), &one, store.as_deref())
                        .arg("--output")
                        .arg(self.work.join("one-out.csv")),
                    "a cold start run",
                )?;
                walls.push(wall);
                rss = rss.max(r);
            }
            Ok((median(walls), rss))
        };
        let (cold_plain, rss_plain) = cold(false)?;
        let (cold_audit, rss_audit) = cold(true)?;
        println!(
            "cold start to first prediction (median of 21, 1 row): {:.1} ms without audit, {:.1} ms with the audit log (fdatasync); goal <= 50 ms",
            cold_plain.as_secs_f64() * 1e3,
            cold_audit.as_secs_f64() * 1e3
        );
        let (_, rss_data_plain) = succeeded(
            self.run(&self.bundle_spec(), &self.input, None)
                .arg("--output")
                .arg(self.work.join("plain.csv")),
            "the demo data without audit",
        )?;
        let mb = |kib: u64| kib as f64 / 1024.0;
        println!(
            "peak resident memory (goal <= 30 MB): {:.1} MB on one row, {:.1} MB on the demo data without audit; {:.1} / {:.1} MB with the audit log",
            mb(rss_plain),
            mb(rss_data_plain),
            mb(rss_audit),
            mb(rss_smoke_kib),
        );
        Ok(())
    }

    /// The per-instance peak linear memory of the smoke test's audit record.
    fn instance_peaks(&self) -> Result<()> {
        let log = Command::new(&self.bin)
            .arg("--store")
            .arg(&self.store)
            .args(["audit", "log", "--json"])
            .output()?;
        let text = String::from_utf8_lossy(&log.stdout);
        let records: Vec<serde_json::Value> = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_else(|| {
                text.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            });
        if let Some(r) = records.last() {
            println!("per-instance peak linear memory (audit record):");
            for s in r["stages"].as_array().into_iter().flatten() {
                // Every instance has a peak; an old record may lack one.
                let peak = s["peak_memory_bytes"].as_f64().map_or_else(
                    || "not recorded".to_string(),
                    |b| format!("{:.1} KiB", b / 1024.0),
                );
                println!(
                    "  {:<10} {:<22} {:>12}",
                    s["role"].as_str().unwrap_or(""),
                    s["name"].as_str().unwrap_or(""),
                    peak
                );
            }
        }
        Ok(())
    }

    /// Pulley: the same pipeline compiled for wasmtime's interpreter, on a
    /// bigger input, against the native bundle; both must give the same bytes.
    fn pulley(&self) -> Result<()> {
        let pulley = self.work.join("penguins-pulley64");
        self.compile("pulley64", &pulley)?;
        let big = self.work.join("big.csv");
        let mut body = String::new();
        let mut it = text_lines(&self.input)?;
        let header = it.remove(0);
        body.push_str(&header);
        body.push('\n');
        for _ in 0..(20_000 / it.len().max(1)) {
            for l in &it {
                body.push_str(l);
                body.push('\n');
            }
        }
        std::fs::write(&big, body)?;
        let timed = |b: &Path, out: &str| -> Result<Duration> {
            let mut walls = Vec::new();
            for _ in 0..3 {
                let (wall, _) = succeeded(
                    self.run(&b.join("pipeline.toml"), &big, None)
                        .arg("--output")
                        .arg(self.work.join(out)),
                    &b.display().to_string(),
                )?;
                walls.push(wall);
            }
            Ok(median(walls))
        };
        let native = timed(&self.bundle, "big-native.csv")?;
        let interp = timed(&pulley, "big-pulley.csv")?;
        if std::fs::read(self.work.join("big-native.csv"))?
            != std::fs::read(self.work.join("big-pulley.csv"))?
        {
            bail!("Pulley's output differs from the native bundle's");
        }
        let rows = text_lines(&big)?.len() - 1;
        println!(
            "pulley64 (interpreter) vs {} (Cranelift), {rows} rows, same output: {:.0} ms vs {:.0} ms, {:.1}x slower",
            self.arch,
            interp.as_secs_f64() * 1e3,
            native.as_secs_f64() * 1e3,
            interp.as_secs_f64() / native.as_secs_f64()
        );
        Ok(())
    }
}
/// Runs `cmd`, which must succeed; returns its wall time and peak RSS (KiB).
fn succeeded(cmd: &mut Command, what: &str) -> Result<(Duration, u64)> {
    let (code, wall, rss_kib, stderr) = measured(cmd)?;
    if code != 0 {
        bail!("the edge binary failed on {what} (exit {code}): {stderr}");
    }
    Ok((wall, rss_kib))
}

/// Runs `cmd`, which must fail with `needle` in its stderr; prints the line.
fn refused(cmd: &mut Command, needle: &str, otherwise: &str) -> Result<()> {
    let (code, _, _, stderr) = measured(cmd)?;
    if code == 0 || !stderr.contains(needle) {
        bail!("the edge binary {otherwise} (exit {code}): {stderr}");
    }
    println!(
        "refused (exit {code}): {}",
        stderr
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or("")
            .trim()
    );
    Ok(())
}

/// The first `[[KIND]]` table's `plugin = ...` line of a bundle's spec.
fn first_plugin_line<'a>(spec: &'a str, kind: &str) -> Result<&'a str> {
    let header = format!("[[{kind}]]");
    spec.lines()
        .skip_while(|l| l.trim() != header)
        .find(|l| l.trim_start().starts_with("plugin ="))
        .ok_or_else(|| anyhow::anyhow!("the bundle's spec has no {header} with a plugin"))
}

/// The bundle's spec with one more stage that names an ONNX model. Arrays
/// of tables may be extended anywhere, so appending keeps it valid TOML.
fn with_model(spec: &str) -> Result<String> {
    let plugin = first_plugin_line(spec, "stages")?;
    Ok(format!(
        "{spec}\n[[stages]]\nname = \"edge-model\"\n{plugin}\nmodels = [\"model.onnx\"]\n"
    ))
}

/// The bundle's spec with one more monitor whose alerts post to a webhook.
fn with_webhook(spec: &str) -> Result<String> {
    let plugin = first_plugin_line(spec, "monitors")?;
    Ok(format!(
        "{spec}\n[[monitors]]\nname = \"edge-webhook\"\n{plugin}\n[monitors.alerts]\nwebhook = \"http://127.0.0.1:9/\"\n"
    ))
}

fn text_lines(p: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_to_string(p)?
        .lines()
        .map(str::to_string)
        .collect())
}
