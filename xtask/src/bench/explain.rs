//! `cargo xtask bench-explain`: exact Shapley values of one penguins row
//! through the whole pipeline in the sandbox (6 raw columns, 100 background
//! rows), and the same on penguins-onnx against `shap.KernelExplainer`
//! calling onnxruntime, with the same background, row and coalitions, in
//! one run; the values are compared too.

use crate::cmd::target_dir;
use crate::guests::build_guests;
use crate::tools::{ensure_onnx_tools, ensure_shap};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The goal for one row of penguins.
const GOAL_MS: f64 = 20.0;

fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn checked(what: &str, out: std::io::Result<std::process::Output>) -> Result<Vec<Value>> {
    let out = out.with_context(|| format!("running the {what} side"))?;
    if !out.status.success() {
        bail!(
            "{what} side failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(json_lines(&out.stdout))
}

pub fn bench_explain(root: &Path) -> Result<()> {
    let onnx_python = ensure_onnx_tools(root)?;
    let shap_python = ensure_shap(root)?;
    let plugins = build_guests(root)?;
    let dir = target_dir(root).join("bench-explain");
    std::fs::create_dir_all(&dir)?;
    let model = dir.join("penguins-logreg.onnx");
    crate::cmd::run(
        Command::new(&onnx_python)
            .arg(root.join("examples/penguins-onnx/export_model.py"))
            .arg(&model),
    )?;
    let keel = checked(
        "keel",
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["bench", "-q", "-p", "keel-ops", "--bench", "explain"])
            .env("KEEL_PLUGIN_DIR", &plugins)
            .env("KEEL_BENCH_MODEL", &model)
            .env("KEEL_BENCH_OUT", &dir)
            .output(),
    )?;
    let shap = checked(
        "shap",
        Command::new(&shap_python)
            .arg(root.join("benches/explain/shap_bench.py"))
            .arg(&model)
            .arg(root.join("examples/penguins/reference.csv"))
            .arg(dir.join("background.csv"))
            .arg(dir.join("row.csv"))
            .arg(dir.join("keel.json"))
            .output(),
    )?;
    let (Some(penguins), Some(onnx), Some(shap)) = (keel.first(), keel.get(1), shap.first()) else {
        bail!("missing measurements: keel {keel:?}, shap {shap:?}");
    };
    let ms = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "exact Shapley values of one row, 6 raw columns x 100 background rows (64 coalitions: 6,400 rows), median of 30:"
    );
    println!("  {:<56} {:>10} {:>10}", "what", "median ms", "min ms");
    for r in [penguins, onnx] {
        println!(
            "  {:<56} {:>10.2} {:>10.2}",
            r["what"].as_str().unwrap_or(""),
            ms(r, "median_ms"),
            ms(r, "min_ms")
        );
    }
    println!(
        "  goal for penguins: < {GOAL_MS} ms: {}",
        if ms(penguins, "median_ms") < GOAL_MS {
            "met"
        } else {
            "NOT met"
        }
    );
    println!("same row, background and coalitions through shap (median of 5):");
    println!(
        "  {:<56} {:>10.2}  (shap_values alone {:.2} ms)",
        shap["what"].as_str().unwrap_or(""),
        ms(shap, "median_ms"),
        ms(shap, "shap_values_median_ms")
    );
    // keel time / shap time: above 1, keel is the slower one.
    for (what, shap_ms) in [
        ("explainer + values", ms(shap, "median_ms")),
        ("shap_values alone", ms(shap, "shap_values_median_ms")),
    ] {
        let ratio = ms(onnx, "median_ms") / shap_ms;
        println!(
            "  keel (penguins-onnx) / shap ({what}): {ratio:.2} ({})",
            if ratio < 1.0 {
                format!("keel {:.1}x faster", 1.0 / ratio)
            } else {
                format!("keel {ratio:.1}x slower")
            }
        );
    }
    println!(
        "  values agree: max |keel φ - shap φ| = {:.2e}, |Δ base value| = {:.2e}",
        ms(shap, "max_abs_diff_vs_keel"),
        ms(shap, "base_diff_vs_keel")
    );
    Ok(())
}
