//! `cargo xtask bench-serve`: `keel serve` under load on loopback, in three
//! audit modes, driven by the load generator (host/server/examples/loadgen.rs).

use crate::cmd::{cargo, run, target_dir};
use crate::guests::build_guests;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `keel serve` under load on loopback: one-row requests through a scaler
/// and a logistic regression, auditing on, driven by the load generator
/// (`host/server/examples/loadgen.rs`) open-loop at fixed rates and closed-loop
/// at full speed. `cargo xtask bench-serve [SECONDS]`.
pub fn bench_serve(root: &Path, seconds: u64) -> Result<()> {
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
    let store = deployed_store(&keel, &dir, &plugins)?;
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
        let (mut server, addr) = start_server(&keel, &store, config)?;
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
    print_table(&rows);
    Ok(())
}

/// Starts `keel serve` on a free loopback port; returns it and its address.
/// A fresh store under `dir` with the serving benchmark's pipeline
/// (benches/serve) deployed: what bench-serve and bench-feedback start from.
pub(crate) fn deployed_store(keel: &Path, dir: &Path, plugins: &Path) -> Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let store = dir.join("store");
    run(Command::new(keel)
        .args([
            "pipeline",
            "deploy",
            "benches/serve/pipeline.toml",
            "--plugin-dir",
        ])
        .arg(plugins)
        .env("KEEL_STORE", &store))?;
    Ok(store)
}

pub(crate) fn start_server(
    keel: &Path,
    store: &Path,
    config: Option<&std::path::PathBuf>,
) -> Result<(std::process::Child, String)> {
    let mut cmd = Command::new(keel);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("KEEL_STORE", store)
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
    Ok((server, addr))
}

/// One line per (audit mode, scenario) from the load generator's JSON.
fn print_table(rows: &[(&str, &str, String)]) {
    println!(
        "\n{:<15} {:<28} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "audit", "scenario", "ok", "req/s", "p50 µs", "p90 µs", "p99 µs", "max µs"
    );
    for (mode, name, json) in rows {
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
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
}
