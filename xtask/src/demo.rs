//! `cargo xtask demo`: builds everything and runs the example pipeline
//! (examples/penguins) through `keel run`, `keel drift`, `keel report`,
//! `keel serve` and the audit log, on a fresh store; then the model's
//! outcome: `keel performance` on examples/performance (labels joined to
//! predictions, realized metrics and CBPE estimates per chunk), and the
//! `performance-monitor` estimating a pipeline's windows before labels.

use crate::cmd::{cargo, run, target_dir};
use crate::guests::build_guests;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn demo(root: &Path) -> Result<()> {
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
    labels_demo(&keel_cmd, root, &plugins)?;
    let explanation = explain_demo(&keel_cmd, &example, &out, &plugins)?;
    serve_demo(&keel_cmd, &example, &plugins)?;
    let performance = performance_demo(&keel_cmd, root, &out)?;
    performance_monitor_demo(&keel_cmd, root, &out, &plugins)?;
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
        "\npredictions:  {}\ndrift report: {}\nperformance:  {}\nexplanation:  {}\nstore:        {}",
        out.join("predictions-current.csv").display(),
        report.display(),
        performance.display(),
        explanation.display(),
        store.display()
    );
    Ok(())
}

/// Predictions stored by id (the loan pipeline's `[run] id_column`), the
/// outcomes that came later imported and joined to them, and the analysis
/// of what the store holds: `keel performance --pipeline`.
fn labels_demo(keel_cmd: &dyn Fn() -> Command, root: &Path, plugins: &Path) -> Result<()> {
    let example = root.join("examples").join("performance");
    eprintln!(
        "\n== keel run examples/performance/pipeline.toml: 3,000 loan predictions, stored by id =="
    );
    run(keel_cmd()
        .arg("run")
        .arg(example.join("pipeline.toml"))
        .arg("-i")
        .arg(example.join("analysis.csv"))
        .arg("--plugin-dir")
        .arg(plugins)
        .arg("--quiet"))?;
    eprintln!("\n== keel feedback import: the outcomes that came in later, joined by id ==");
    run(keel_cmd()
        .args(["feedback", "import"])
        .arg(example.join("labels.csv"))
        .args([
            "--pipeline",
            "loans",
            "--id-column",
            "id",
            "--label-column",
            "defaulted",
        ]))?;
    eprintln!(
        "\n== keel performance --pipeline loans: the stored predictions with their labels =="
    );
    run(keel_cmd()
        .args(["performance", "--pipeline", "loans", "--reference"])
        .arg(example.join("reference.csv"))
        .args([
            "--id-column",
            "id",
            "--label-column",
            "defaulted",
            "--score-column",
            "score",
        ])
        .args(["--prediction-column", "prediction", "--chunk-size", "500"]))?;
    Ok(())
}

/// Why did the model say that? Shapley values of `prob_gentoo` over the raw
/// columns (in log-odds, so they add up to the logit of the prediction) for
/// the first three 2009 penguins; returns the HTML page it writes.
fn explain_demo(
    keel_cmd: &dyn Fn() -> Command,
    example: &Path,
    out: &Path,
    plugins: &Path,
) -> Result<PathBuf> {
    eprintln!("\n== keel explain: why prob_gentoo, column by column, for three 2009 penguins ==");
    let text = std::fs::read_to_string(example.join("current.csv"))?;
    let rows = out.join("explain-rows.csv");
    let head: Vec<&str> = text.lines().take(4).collect();
    std::fs::write(&rows, head.join("\n") + "\n")?;
    let page = out.join("explanation.html");
    let args = |c: &mut Command| {
        c.arg("explain")
            .arg(example.join("pipeline.toml"))
            .arg("--input")
            .arg(&rows)
            .args(["--output", "prob_gentoo", "--link", "logit"])
            // The raw measurements the pipeline reads (the file also holds `species` and `year`).
            .args([
                "--features",
                "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex",
            ])
            .arg("--plugin-dir")
            .arg(plugins);
    };
    let mut table = keel_cmd();
    args(&mut table);
    run(&mut table)?;
    let mut html = keel_cmd();
    args(&mut html);
    run(html.args(["--format", "html", "-o"]).arg(&page))?;
    Ok(page)
}

/// Labels that arrived after the predictions, joined to them by id:
/// realized metrics where labels are known, CBPE estimates where not, per
/// chunk and segment against the reference's bounds (examples/performance).
/// Returns the HTML page it writes.
fn performance_demo(keel_cmd: &dyn Fn() -> Command, root: &Path, out: &Path) -> Result<PathBuf> {
    eprintln!(
        "\n== keel performance: is the model still right? labels joined to predictions, realized and estimated =="
    );
    let example = root.join("examples").join("performance");
    let page = out.join("performance.html");
    let args = |c: &mut Command| {
        c.arg("performance")
            .arg(example.join("analysis.csv"))
            .arg("--labels")
            .arg(example.join("labels.csv"))
            .arg("--reference")
            .arg(example.join("reference.csv"))
            .args(["--id-column", "id", "--label-column", "defaulted"])
            .args([
                "--score-column",
                "score",
                "--prediction-column",
                "prediction",
            ])
            .args(["--chunk-size", "500", "--segment-column", "region"]);
    };
    let mut table = keel_cmd();
    args(&mut table);
    run(&mut table)?;
    let mut html = keel_cmd();
    args(&mut html);
    run(html.args(["--format", "html", "-o"]).arg(&page))?;
    Ok(page)
}

/// The same predictions through a pipeline whose `performance-monitor`
/// judges each window of 500 on CBPE estimates before any label: the last
/// window's estimates, their ±3σ band and the reference's bounds. Run with
/// `--no-audit`, so the last audit record stays the served request.
fn performance_monitor_demo(
    keel_cmd: &dyn Fn() -> Command,
    root: &Path,
    out: &Path,
    plugins: &Path,
) -> Result<()> {
    eprintln!(
        "\n== keel run examples/performance/pipeline.toml: the performance-monitor estimates each window before its labels =="
    );
    let example = root.join("examples").join("performance");
    let summary = out.join("performance-monitor.json");
    run(keel_cmd()
        .arg("run")
        .arg(example.join("pipeline.toml"))
        .arg("-i")
        .arg(example.join("analysis.csv"))
        .arg("-o")
        .arg(out.join("performance-monitor-out.csv"))
        .arg("--plugin-dir")
        .arg(plugins)
        .args([
            "--no-audit",
            "--fresh-monitors",
            "--quiet",
            "--summary-json",
        ])
        .arg(&summary))?;
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary)?)
        .context("reading the run summary")?;
    let windows = s["monitors"][0]["windows"]
        .as_array()
        .context("no monitor windows in the run summary")?;
    let last = windows.last().context("no window closed")?;
    let metrics = last["report"]["metrics"]
        .as_array()
        .context("no metrics in the last window's report")?;
    let value = |column: &str, name: &str| {
        metrics
            .iter()
            .find(|m| m["column"] == column && m["name"] == name)
            .and_then(|m| m["value"].as_f64())
    };
    eprintln!(
        "window #{} (rows {}..{}), no labels yet:",
        last["window"]["index"],
        last["window"]["start_row"],
        last["window"]["start_row"].as_u64().unwrap_or(0)
            + last["window"]["rows"].as_u64().unwrap_or(0)
    );
    eprintln!("  metric       estimated  confidence          bounds");
    for m in ["accuracy", "precision", "recall", "f1", "roc_auc"] {
        let f = |c: &str| value(c, m).map_or("-".to_string(), |v| format!("{v:.4}"));
        eprintln!(
            "  {m:<12} {:>9}  [{}, {}]    [{}, {}]",
            f("estimated"),
            f("confidence-low"),
            f("confidence-high"),
            f("bound-low"),
            f("bound-high")
        );
    }
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
