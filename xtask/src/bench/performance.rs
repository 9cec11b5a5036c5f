//! `cargo xtask bench-performance`: `keel performance` against NannyML (CBPE +
//! PerformanceCalculator) on the files of benches/performance/generate.py, in
//! one run, with a check that both report the same values per chunk and segment.

use crate::cmd::{cargo, run, target_dir};
use crate::tools::ensure_nannyml;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Realized metrics both compute (per chunk and per segment).
const REALIZED: [&str; 6] = [
    "roc_auc",
    "f1",
    "precision",
    "recall",
    "specificity",
    "accuracy",
];
/// Metrics both estimate with CBPE.
const ESTIMATED: [&str; 5] = ["roc_auc", "f1", "precision", "recall", "accuracy"];
/// The same formulas on the same rows: only summation order may differ.
const REALIZED_TOL: f64 = 1e-9;
/// Calibration and the estimates go through more floating-point steps.
const ESTIMATED_TOL: f64 = 1e-3;
/// The goals: wall time and speed-up over NannyML.
const GOAL_SECS: f64 = 1.5;
const GOAL_RATIO: f64 = 50.0;

/// `rows` predictions (1,000,000 by default; a tenth as reference, 80 %
/// labelled), chunks of `rows / 20`.
pub fn bench_performance(root: &Path, rows: u64) -> Result<()> {
    let python = ensure_nannyml(root)?;
    let dir = files(root, rows)?;
    run(cargo().args(["build", "--release", "-p", "keel"]))?;
    // After the build, whose compilers would otherwise count as other load.
    let load_before = uptime();
    let busy_before = busiest();
    let keel = target_dir(root).join("release").join("keel");
    let chunk = (rows / 20).max(1);

    let keel_json = dir.join("keel.json");
    let args = keel_args(&dir, chunk, &keel_json);
    eprintln!("timing {} {} (3 runs)", keel.display(), args.join(" "));
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let out = Command::new(&keel).args(&args).output()?;
        times.push(t.elapsed());
        if !out.status.success() {
            bail!(
                "keel performance failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let rss_kib = peak_rss(&keel, &args);

    let nannyml_json = dir.join("nannyml.json");
    run(Command::new(&python)
        .arg(root.join("benches/performance/nannyml_bench.py"))
        .arg("--dir")
        .arg(&dir)
        .arg("--chunk-size")
        .arg(chunk.to_string())
        .arg("--out")
        .arg(&nannyml_json)
        .env("NML_DISABLE_USAGE_LOGGING", "1"))?;
    let load_after = uptime();
    let busy_after = busiest();

    let keel_out = read_json(&keel_json)?;
    let nml = read_json(&nannyml_json)?;
    let checked = compare(&keel_out, &nml)?;
    println!("\n{rows} predictions, chunks of {chunk}: {checked}");
    report(&times, rss_kib, &nml);
    println!("\nload before: {load_before}\nload after:  {load_after}");
    println!("busiest processes before:\n{busy_before}busiest processes after:\n{busy_after}");
    Ok(())
}

/// The benchmark files for `rows`, written by generate.py when missing.
fn files(root: &Path, rows: u64) -> Result<PathBuf> {
    let dir = if rows == 1_000_000 {
        target_dir(root).join("bench-performance")
    } else {
        target_dir(root).join(format!("bench-performance-{rows}"))
    };
    let names = ["analysis.csv", "labels.csv", "reference.csv"];
    if !names.iter().all(|n| dir.join(n).exists()) {
        run(Command::new("python3")
            .arg(root.join("benches/performance/generate.py"))
            .arg("--rows")
            .arg(rows.to_string())
            .arg("--out")
            .arg(&dir))?;
    }
    Ok(dir)
}

fn keel_args(dir: &Path, chunk: u64, out: &Path) -> Vec<String> {
    let path = |n: &str| dir.join(n).display().to_string();
    let mut args: Vec<String> = vec!["performance".into(), path("analysis.csv")];
    args.extend(["--labels".into(), path("labels.csv")]);
    args.extend(["--reference".into(), path("reference.csv")]);
    for (flag, value) in [
        ("--id-column", "id"),
        ("--label-column", "y"),
        ("--score-column", "score"),
        ("--prediction-column", "prediction"),
        ("--segment-column", "region"),
        ("--format", "json"),
    ] {
        args.extend([flag.into(), value.into()]);
    }
    args.extend(["--chunk-size".into(), chunk.to_string()]);
    args.extend(["-o".into(), out.display().to_string()]);
    args
}

/// Peak resident set of one more run, from `/usr/bin/time -v`; `None` where
/// that tool is missing (the timed runs do not depend on it).
fn peak_rss(keel: &Path, args: &[String]) -> Option<u64> {
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(keel)
        .args(args)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Largest difference so far, and where.
#[derive(Default)]
struct Worst {
    diff: f64,
    at: String,
}

impl Worst {
    /// Both null (no value: a chunk without both classes) agree; one null does not.
    fn see(&mut self, keel: &Value, nml: &Value, at: impl Fn() -> String) -> Result<()> {
        let diff = match (keel.as_f64(), nml.as_f64()) {
            (Some(k), Some(n)) => (k - n).abs(),
            (None, None) => 0.0,
            _ => bail!("{}: keel {keel}, NannyML {nml}", at()),
        };
        if diff > self.diff || self.at.is_empty() {
            self.diff = diff;
            self.at = at();
        }
        Ok(())
    }
}

/// Checks chunk bounds and every compared value; returns a one-line summary.
fn compare(keel: &Value, nml: &Value) -> Result<String> {
    let empty = Vec::new();
    let chunks = keel["chunks"].as_array().unwrap_or(&empty);
    let estimated = nml["estimated"].as_array().unwrap_or(&empty);
    let realized = nml["realized"].as_array().unwrap_or(&empty);
    if chunks.is_empty() || chunks.len() != estimated.len() || chunks.len() != realized.len() {
        bail!(
            "chunk counts differ: keel {}, NannyML {} estimated / {} realized",
            chunks.len(),
            estimated.len(),
            realized.len()
        );
    }
    let (mut real, mut est) = (Worst::default(), Worst::default());
    for (i, ((k, e), r)) in chunks.iter().zip(estimated).zip(realized).enumerate() {
        for n in [e, r] {
            if k["start"] != n["start"] || k["end"] != n["end"] {
                bail!(
                    "chunk {i}: keel rows {}-{}, NannyML {}-{}",
                    k["start"],
                    k["end"],
                    n["start"],
                    n["end"]
                );
            }
        }
        for m in REALIZED {
            real.see(&k["realized"][m], &r[m], || {
                format!("chunk {i} realized {m}")
            })?;
        }
        for m in ESTIMATED {
            est.see(&k["estimated"][m], &e[m], || {
                format!("chunk {i} estimated {m}")
            })?;
        }
    }
    let segments = nml["segments"]
        .as_object()
        .context("NannyML: no segments")?;
    let keel_segments = keel["segments"].as_object().context("keel: no segments")?;
    if segments.len() != keel_segments.len() {
        bail!(
            "segment counts differ: keel {}, NannyML {}",
            keel_segments.len(),
            segments.len()
        );
    }
    for (name, n) in segments {
        let k = keel_segments
            .get(name)
            .with_context(|| format!("keel has no segment {name}"))?;
        for m in REALIZED {
            real.see(&k["realized"][m], &n[m], || {
                format!("segment {name} realized {m}")
            })?;
        }
    }
    if real.diff > REALIZED_TOL || est.diff > ESTIMATED_TOL {
        bail!(
            "keel and NannyML disagree: realized {:.3e} at {} (tolerance {REALIZED_TOL:e}), estimated {:.3e} at {} (tolerance {ESTIMATED_TOL:e})",
            real.diff,
            real.at,
            est.diff,
            est.at
        );
    }
    Ok(format!(
        "same values: {} chunks x {} realized + {} estimated metrics, {} segments; largest difference realized {:.1e} ({}), estimated {:.1e} ({})",
        chunks.len(),
        REALIZED.len(),
        ESTIMATED.len(),
        segments.len(),
        real.diff,
        real.at,
        est.diff,
        est.at
    ))
}

/// The table: keel's best and median of 3, NannyML's parts, the ratio.
fn report(times: &[Duration], rss_kib: Option<u64>, nml: &Value) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let best = sorted[0].as_secs_f64();
    let median = sorted[sorted.len() / 2].as_secs_f64();
    let runs: Vec<String> = times
        .iter()
        .map(|t| format!("{:.2}", t.as_secs_f64()))
        .collect();
    let mib = |kib: Option<u64>| kib.map_or("?".into(), |k| format!("{} MB", k * 1024 / 1_000_000));
    let total = nml["total_s"].as_f64().unwrap_or(f64::NAN);
    let part = |k: &str| nml["parts_s"][k].as_f64().unwrap_or(f64::NAN);
    let version = nml["versions"]["nannyml"].as_str().unwrap_or("?");
    println!("\n| tool | time | peak RSS |\n|---|---|---|");
    println!(
        "| `keel performance` | **{best:.2} s** best of 3 ({}; median {median:.2} s) | {} |",
        runs.join(", "),
        mib(rss_kib)
    );
    println!(
        "| NannyML {version} | **{total:.2} s** (read CSV {:.2} + join {:.2} + CBPE {:.2} + realized {:.2} + segments {:.2}; import {:.2} s apart) | {} |",
        part("read"),
        part("join"),
        part("cbpe"),
        part("realized"),
        part("segments"),
        nml["import_s"].as_f64().unwrap_or(f64::NAN),
        mib(nml["peak_rss_kib"].as_u64())
    );
    let ratio = total / best;
    println!(
        "| ratio NannyML / keel | **{ratio:.0}x** (on keel's median: {:.0}x) | |",
        total / median
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "\ngoals: keel under {GOAL_SECS} s: {} ({best:.2} s); at least {GOAL_RATIO}x faster than NannyML: {} ({ratio:.0}x)",
        verdict(best < GOAL_SECS),
        verdict(ratio >= GOAL_RATIO)
    );
}

fn uptime() -> String {
    Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("uptime: {e}"))
}

/// What else used the CPU: the top five by CPU share over their lifetime
/// (a compiler or test binary started by someone else shows here).
fn busiest() -> String {
    Command::new("ps")
        .args(["-eo", "pid,pcpu,etime,args", "--sort=-pcpu"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .take(6)
                .map(|l| format!("  {}\n", l.chars().take(110).collect::<String>()))
                .collect()
        })
        .unwrap_or_else(|e| format!("  ps: {e}\n"))
}
