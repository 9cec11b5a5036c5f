//! The `keel` binary end to end: the example pipeline on real data, and bad
//! input, bad specs and failing plugins mapped to clear errors and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common;
use common::*;

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

#[test]
fn penguins_pipeline_matches_sklearn_and_reports_drift() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pred.csv");
    let summary = dir.path().join("summary.json");
    let o = keel(&[
        "run",
        &example("pipeline.toml"),
        "--input",
        &example("current.csv"),
        "--output",
        out.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stderr(&o);
    assert!(text.contains("75 rows in, 75 out, 0 rejected"), "{text}");
    assert!(text.contains("input-drift @ input: ALERT"), "{text}");

    // Predictions equal scikit-learn's to 1e-9, row by row, in input order.
    let (header, rows) = read_csv(&out);
    let col = header.iter().position(|h| h == "prob_gentoo").unwrap();
    let (_, expected) = read_csv(&workspace().join("examples/penguins/expected_predictions.csv"));
    assert_eq!(rows.len(), expected.len());
    for (i, (r, e)) in rows.iter().zip(&expected).enumerate() {
        let got: f64 = r[col].parse().unwrap();
        let want: f64 = e[1].parse().unwrap();
        assert!(
            (got - want).abs() < 1e-9,
            "row {i}: keel {got} vs sklearn {want}"
        );
    }

    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let not_null: u64 = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "not-null")
        .map(|f| f["count"].as_u64().unwrap())
        .sum();
    assert_eq!(not_null, 7, "{s}");
    let monitors = s["monitors"].as_array().unwrap();
    let input = monitors
        .iter()
        .find(|m| m["name"] == "input-drift")
        .unwrap();
    assert_eq!(input["report"]["alert"], true);
    let drifted: Vec<&str> = input["report"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["alert"] == true && !m["column"].is_null())
        .map(|m| m["column"].as_str().unwrap())
        .collect();
    for c in [
        "bill_length_mm",
        "flipper_length_mm",
        "body_mass_g",
        "island",
    ] {
        assert!(drifted.contains(&c), "{c} should drift: {drifted:?}");
    }
    assert!(!drifted.contains(&"sex"), "sex should not drift");
    // Every plugin is named with its digest.
    let plugins = s["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), 8);
    // The bias monitor: the model flags Gentoo (all on Biscoe) less often
    // among females in 2009, below the four-fifths rule.
    let bias = s["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "prediction-bias")
        .unwrap();
    assert_eq!(bias["report"]["alert"], true, "{bias}");
    let di = bias["report"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "disparate-impact" && m["column"] == "sex=female")
        .unwrap();
    assert!(di["value"].as_f64().unwrap() < 0.8, "{di}");
    assert!(
        plugins
            .iter()
            .all(|p| p["digest"].as_str().unwrap().starts_with("sha256:"))
    );
}

#[test]
fn no_drift_when_current_is_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    let o = keel(&[
        "run",
        &example("pipeline.toml"),
        "--input",
        &example("reference.csv"),
        "--summary-json",
        summary.to_str().unwrap(),
        "--workers",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    for m in s["monitors"].as_array().unwrap() {
        assert_eq!(m["report"]["alert"], false, "{m}");
    }
}

#[test]
fn jsonl_in_and_out() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let (header, rows) = read_csv(&workspace().join("examples/penguins/current.csv"));
    let mut text = String::new();
    for r in rows.iter().take(10) {
        let mut obj = serde_json::Map::new();
        for (h, v) in header.iter().zip(r) {
            let val = if v.is_empty() {
                serde_json::Value::Null
            } else if let Ok(n) = v.parse::<i64>() {
                n.into()
            } else if let Ok(f) = v.parse::<f64>() {
                f.into()
            } else {
                v.clone().into()
            };
            obj.insert(h.clone(), val);
        }
        text.push_str(&serde_json::Value::Object(obj).to_string());
        text.push('\n');
    }
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("out.jsonl");
    let o = keel(&[
        "run",
        &example("pipeline.toml"),
        "-i",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    assert!(
        lines
            .iter()
            .all(|l| l["prob_gentoo"].is_f64() && l["is_gentoo"].is_boolean())
    );
}

/// Writes a copy of current.csv with `bad` replacing line `line` (1-based).
fn corrupt(dir: &Path, line: usize, bad: &str) -> PathBuf {
    let text = std::fs::read_to_string(workspace().join("examples/penguins/current.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[line - 1] = bad;
    let p = dir.join("bad.csv");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

#[test]
fn bad_data_names_file_line_and_column_and_keeps_earlier_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("partial.csv");
    // Line 31 (row 30): ragged.
    let bad = corrupt(dir.path(), 31, "Gentoo,Biscoe,45.0");
    let o = keel(&[
        "run",
        &example("pipeline.toml"),
        "-i",
        bad.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--batch-size",
        "10",
        "--workers",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("bad.csv:31: row has 3 fields but the header has 8"),
        "{e}"
    );
    // Every row before the bad line was written, even the 9 in its batch.
    let (_, rows) = read_csv(&out);
    assert_eq!(rows.len(), 29, "rows written before the failure");

    // A wrong type.
    let bad = corrupt(
        dir.path(),
        5,
        "Gentoo,Biscoe,forty,14.0,210.0,5000.0,male,2009",
    );
    let o = keel(&[
        "run",
        &example("pipeline.toml"),
        "-i",
        bad.to_str().unwrap(),
    ]);
    fails_with(
        &o,
        3,
        "bad.csv:5: column `bill_length_mm`: expected f64, found `forty`",
    );

    // A missing column the pipeline needs.
    let p = dir.path().join("noisland.csv");
    std::fs::write(&p, "species,bill_length_mm\nAdelie,39.1\n").unwrap();
    let o = keel(&["run", &example("pipeline.toml"), "-i", p.to_str().unwrap()]);
    fails_with(&o, 3, "column `island` is missing");

    // Invalid UTF-8 and an empty file.
    let p = dir.path().join("latin1.csv");
    std::fs::write(&p, b"species,island\nAd\xe9lie,Biscoe\n").unwrap();
    let o = keel(&["run", &example("pipeline.toml"), "-i", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    let p = dir.path().join("empty.csv");
    std::fs::write(&p, b"").unwrap();
    let o = keel(&["run", &example("pipeline.toml"), "-i", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

fn write_spec(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_specs_are_usage_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = example("current.csv");
    let spec = write_spec(
        dir.path(),
        "name = \"x\"\n[[stages]]\nname = \"s\"\nplugin = \"imputer\"\ncolour = \"red\"\n",
    );
    let o = keel(&["run", spec.to_str().unwrap(), "-i", &data]);
    fails_with(&o, 2, "line 5: unknown field `colour`");

    let spec = write_spec(
        dir.path(),
        "name = \"x\"\n[[stages]]\nname = \"s\"\nplugin = \"no-such-plugin\"\n",
    );
    let o = keel(&["run", spec.to_str().unwrap(), "-i", &data]);
    fails_with(&o, 2, "`stages[0].plugin`: no plugin `no-such-plugin`");

    // A validator where a transform belongs.
    let spec = write_spec(
        dir.path(),
        "name = \"x\"\n[[stages]]\nname = \"s\"\nplugin = \"rule-validator\"\n",
    );
    let o = keel(&["run", spec.to_str().unwrap(), "-i", &data]);
    fails_with(&o, 2, "is a validator, but this entry needs a transform");
}

#[test]
fn plugin_failures_name_stage_limit_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = guest_dir("KEEL_TEST_GUESTS", "test-guests").join("hostile.wasm");
    let spec = write_spec(
        dir.path(),
        &format!(
            "name = \"x\"\n[run]\nbatch_size = 20\n[[stages]]\nname = \"spin\"\nplugin = \"{}\"\n[stages.config]\nmode = \"loop\"\nafter_calls = 1\n[stages.limits]\ntimeout_ms = 300\n",
            hostile.display()
        ),
    );
    let out = dir.path().join("o.csv");
    let o = keel(&[
        "run",
        spec.to_str().unwrap(),
        "-i",
        &example("current.csv"),
        "-o",
        out.to_str().unwrap(),
        "--workers",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("current.csv: lines 22-41: stage `spin` (plugin `hostile`) timed out"),
        "{e}"
    );
    assert!(e.contains("[limit timeout_ms = 300]"), "{e}");
    // The first batch made it out before the failure.
    assert_eq!(read_csv(&out).1.len(), 20);

    // A stage missing a column it needs: the plugin says which.
    let spec = write_spec(
        dir.path(),
        "name = \"x\"\n[[stages]]\nname = \"scale\"\nplugin = \"standard-scaler\"\n[stages.config]\ncolumns = [\"wingspan\"]\nmean = [1.0]\nstd = [1.0]\n",
    );
    let o = keel(&["run", spec.to_str().unwrap(), "-i", &example("current.csv")]);
    fails_with(&o, 4, "wingspan");
}

#[test]
fn reject_policy_drops_offending_rows() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "name = \"x\"\n[[validators]]\nname = \"rules\"\nplugin = \"rule-validator\"\npolicy = \"reject\"\n[validators.config.columns.body_mass_g]\nmax = 5000.0\n",
    );
    let out = dir.path().join("kept.csv");
    let o = keel(&[
        "run",
        spec.to_str().unwrap(),
        "-i",
        &example("current.csv"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (header, rows) = read_csv(&out);
    let mass = header.iter().position(|h| h == "body_mass_g").unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r[mass].is_empty() || r[mass].parse::<f64>().unwrap() <= 5000.0)
    );
    let e = stderr(&o);
    let rejected = 75 - rows.len();
    assert!(
        rejected > 0
            && e.contains(&format!(
                "75 rows in, {} out, {rejected} rejected",
                rows.len()
            )),
        "{e}"
    );
}

#[test]
fn inspect_describes_a_plugin() {
    let p = guest_dir("KEEL_PLUGIN_DIR", "plugins").join("standard-scaler.wasm");
    let o = keel(&["plugin", "inspect", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("standard-scaler "), "{text}");
    assert!(
        text.contains("(transform)") && text.contains("digest   sha256:"),
        "{text}"
    );
    assert!(text.contains("keel:plugin/transform@0.1.0"), "{text}");
    let o = keel(&["plugin", "inspect", "--json", p.to_str().unwrap()]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["kind"], "transform");
    assert!(j["config_schema"].is_object());

    let o = keel(&["plugin", "inspect", "/nonexistent.wasm"]);
    fails_with(&o, 2, "/nonexistent.wasm: cannot read plugin");
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_run_is_audited_with_lineage_and_a_verifiable_chain() {
    let store = tempfile::tempdir().unwrap();
    let s = store.path();
    let out = store.path().join("out.csv");
    for input in ["current.csv", "reference.csv"] {
        let o = keel_in(
            s,
            &[
                "run",
                &example("pipeline.toml"),
                "-i",
                &example(input),
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("audit: record "), "{}", stderr(&o));
    }
    // A failing run is recorded too, with its outcome.
    let bad = corrupt(s, 5, "Gentoo,Biscoe,forty,14.0,210.0,5000.0,male,2009");
    let o = keel_in(
        s,
        &[
            "run",
            &example("pipeline.toml"),
            "-i",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(3));

    let o = keel_in(s, &["audit", "log", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let records: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["outcome"], "error", "newest first");
    let current = &records[2];
    assert_eq!(current["outcome"], "ok");
    assert_eq!(current["rows_in"], 75);
    assert_eq!(current["pipeline"]["name"], "penguins");
    let stages = current["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 8);
    assert!(
        stages
            .iter()
            .all(|st| st["plugin_digest"].as_str().unwrap().starts_with("sha256:"))
    );
    let alerts: Vec<&serde_json::Value> = current["monitor_verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["alert"] == true)
        .collect();
    assert_eq!(alerts.len(), 3, "input drift, prediction drift, bias");
    // Unwindowed monitors judge the run: their alerts are raised and recorded.
    let raised = current["alerts"].as_array().unwrap();
    assert_eq!(raised.len(), 3, "{raised:?}");
    // The output digest is the digest of the bytes written.
    let reference_out = &records[1];
    let written = std::fs::read(&out).unwrap();
    let digest = format!("sha256:{}", hex_sha256(&written));
    assert_eq!(reference_out["output_digest"], digest.as_str());
    // Same code, same config: the same pipeline digest on every run.
    assert_eq!(
        current["pipeline"]["digest"],
        reference_out["pipeline"]["digest"]
    );

    let id = current["id"].as_str().unwrap();
    let o = keel_in(s, &["audit", "show", id]);
    let text = stdout(&o);
    assert!(
        text.contains("payload stored")
            && text.contains("→ model")
            && text.contains("logistic-regression@0.1.0"),
        "{text}"
    );
    assert!(text.contains("monitor  input-drift: ALERT"), "{text}");

    let o = keel_in(s, &["audit", "log", "--outcome", "error"]);
    assert_eq!(
        stdout(&o).lines().count(),
        2,
        "header + one failed run: {}",
        stdout(&o)
    );

    let o = keel_in(s, &["audit", "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("audit chain intact: 3 records"),
        "{}",
        stdout(&o)
    );

    let o = keel_in(s, &["audit", "export", "--format", "openlineage"]);
    let events: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    assert!(
        events
            .iter()
            .all(|e| e["job"]["name"] == "penguins" && e["run"]["runId"].is_string())
    );
    assert_eq!(
        events.iter().filter(|e| e["eventType"] == "FAIL").count(),
        1
    );
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn stored_plugins_resolve_by_name_and_version_until_retired() {
    let store = tempfile::tempdir().unwrap();
    let s = store.path();
    let plugins = guest_dir("KEEL_PLUGIN_DIR", "plugins");
    let scaler = plugins.join("standard-scaler.wasm");
    let o = keel_in(
        s,
        &[
            "plugin",
            "add",
            scaler.to_str().unwrap(),
            "--name",
            "scaler",
            "--version",
            "1.0.0",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = keel_in(s, &["plugin", "ls"]);
    assert!(
        stdout(&o).contains("scaler") && stdout(&o).contains("active"),
        "{}",
        stdout(&o)
    );
    // A hostile-world mismatch is refused at add time: junk is not a component.
    let junk = s.join("junk.wasm");
    std::fs::write(&junk, b"junk").unwrap();
    let o = keel_in(
        s,
        &[
            "plugin",
            "add",
            junk.to_str().unwrap(),
            "--name",
            "junk",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(o.status.code(), Some(2));

    let spec = write_spec(
        s,
        "name = \"x\"\n[[stages]]\nname = \"scale\"\nplugin = \"scaler@1.0.0\"\n[stages.config]\ncolumns = [\"body_mass_g\"]\nmean = [4000.0]\nstd = [800.0]\n",
    );
    let o = keel_in(
        s,
        &["run", spec.to_str().unwrap(), "-i", &example("current.csv")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = keel_in(s, &["plugin", "retire", "scaler@1.0.0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = keel_in(
        s,
        &["run", spec.to_str().unwrap(), "-i", &example("current.csv")],
    );
    fails_with(&o, 2, "retired");
}

#[test]
fn a_locked_store_is_a_clear_error() {
    let store = tempfile::tempdir().unwrap();
    let _held = keel_store::Store::open(store.path()).unwrap();
    let o = keel_in(store.path(), &["audit", "log"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).to_lowercase().contains("lock"), "{}", stderr(&o));
    // --no-audit runs without the store.
    let o = keel_in(
        store.path(),
        &[
            "run",
            &example("pipeline.toml"),
            "-i",
            &example("current.csv"),
            "--no-audit",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn deployed_pipelines_are_immutable_and_run_by_name() {
    let store = tempfile::tempdir().unwrap();
    let s = store.path();
    let plugins = guest_dir("KEEL_PLUGIN_DIR", "plugins");
    let deploy = |spec: &str| {
        keel_in(
            s,
            &[
                "pipeline",
                "deploy",
                spec,
                "--plugin-dir",
                plugins.to_str().unwrap(),
            ],
        )
    };
    let o = deploy(&example("pipeline.toml"));
    assert!(o.status.success(), "{}", stderr(&o));
    let first = stdout(&o);
    assert!(
        first.starts_with("penguins@1.0.0 sha256:")
            && first.contains("8 plugins, 1 reference files"),
        "{first}"
    );
    // Deploying the same spec again is a no-op with the same digest.
    assert_eq!(stdout(&deploy(&example("pipeline.toml"))), first);

    // Changing the spec without a new version is refused.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        workspace().join("examples/penguins/reference.csv"),
        dir.path().join("reference.csv"),
    )
    .unwrap();
    let text =
        std::fs::read_to_string(workspace().join("examples/penguins/pipeline.toml")).unwrap();
    let edited = dir.path().join("pipeline.toml");
    std::fs::write(&edited, text.replace("threshold = 0.2", "threshold = 0.3")).unwrap();
    let o = deploy(edited.to_str().unwrap());
    fails_with(&o, 2, "penguins@1.0.0");

    let o = keel_in(s, &["pipeline", "ls"]);
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));

    // Run the deployed version by name, then the same spec from its file:
    // both are recorded under one pipeline digest with one output digest.
    let o = keel_in(s, &["run", "penguins@1.0.0", "-i", &example("current.csv")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = keel_in(
        s,
        &[
            "run",
            &example("pipeline.toml"),
            "-i",
            &example("current.csv"),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = keel_in(s, &["audit", "log", "--json"]);
    let records: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[0]["pipeline"]["digest"],
        records[1]["pipeline"]["digest"]
    );
    assert_eq!(records[0]["output_digest"], records[1]["output_digest"]);
    assert!(first.contains(records[0]["pipeline"]["digest"].as_str().unwrap()));

    let o = keel_in(s, &["run", "nosuch@1.0.0", "-i", &example("current.csv")]);
    fails_with(&o, 2, "no deployed pipeline `nosuch@1.0.0`");
}

#[test]
fn replay_reproduces_outputs_and_reports_what_a_candidate_changes() {
    let store = tempfile::tempdir().unwrap();
    let s = store.path();
    let plugins = guest_dir("KEEL_PLUGIN_DIR", "plugins");
    let o = keel_in(
        s,
        &[
            "pipeline",
            "deploy",
            &example("pipeline.toml"),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for input in ["current.csv", "reference.csv"] {
        let o = keel_in(s, &["run", "penguins@1.0.0", "-i", &example(input)]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // A run of an edited spec under the same name and version was never deployed: skipped.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        workspace().join("examples/penguins/reference.csv"),
        dir.path().join("reference.csv"),
    )
    .unwrap();
    let text =
        std::fs::read_to_string(workspace().join("examples/penguins/pipeline.toml")).unwrap();
    let edited = dir.path().join("pipeline.toml");
    std::fs::write(&edited, text.replace("threshold = 0.2", "threshold = 0.3")).unwrap();
    let o = keel_in(
        s,
        &[
            "run",
            edited.to_str().unwrap(),
            "-i",
            &example("current.csv"),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let o = keel_in(s, &["replay", "--pipeline", "penguins"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("replayed 2 records: 2 identical, 0 different, 1 skipped"),
        "{out}"
    );
    assert!(out.contains("never deployed"), "{out}");

    let v2 = guest_dir("KEEL_TEST_GUESTS", "test-guests").join("scaler-v2.wasm");
    let o = keel_in(
        s,
        &[
            "plugin",
            "add",
            v2.to_str().unwrap(),
            "--name",
            "standard-scaler",
            "--version",
            "0.2.0",
            "--state",
            "staged",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = keel_in(
        s,
        &[
            "replay",
            "--pipeline",
            "penguins@1.0.0",
            "--with",
            "scale=standard-scaler@0.2.0",
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    // Clipping z-scores to [-1, 1] moves every prediction.
    assert!(out.contains("rows changed: 299 of 299"), "{out}");
    assert!(
        out.contains("prob_gentoo              299 cells changed, max |Δ|"),
        "{out}"
    );

    let o = keel_in(
        s,
        &[
            "replay",
            "--pipeline",
            "penguins",
            "--with",
            "nosuch=standard-scaler@0.2.0",
        ],
    );
    fails_with(&o, 2, "no stage, validator or monitor `nosuch`");
}

#[test]
fn retention_and_expiry_drop_payloads_but_keep_the_chain() {
    let store = tempfile::tempdir().unwrap();
    let s = store.path();
    let run = || {
        let o = keel_in(
            s,
            &[
                "run",
                &example("pipeline.toml"),
                "-i",
                &example("current.csv"),
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    };
    run();
    let o = keel_in(s, &["pipeline", "retention", "penguins", "digests-only"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = keel_in(s, &["pipeline", "retention", "penguins", "sample=2"]);
    assert_eq!(o.status.code(), Some(2));
    // A different input, so it is not the payload already stored by the first run.
    let o = keel_in(
        s,
        &[
            "run",
            &example("pipeline.toml"),
            "-i",
            &example("reference.csv"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let records: Vec<serde_json::Value> = stdout(&keel_in(s, &["audit", "log", "--json"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let show = |id: &str| stdout(&keel_in(s, &["audit", "show", id]));
    assert!(show(records[0]["id"].as_str().unwrap()).contains("digest only"));
    let first = show(records[1]["id"].as_str().unwrap());
    assert!(first.contains("payload stored"), "{first}");
    // Peak memory of every instance is recorded: stages, validators, monitors.
    let entries = records[0]["stages"].as_array().unwrap();
    for role in ["stage", "validator", "monitor"] {
        let of_role: Vec<_> = entries.iter().filter(|st| st["role"] == role).collect();
        assert!(!of_role.is_empty(), "no {role} in {entries:?}");
        for st in of_role {
            let peak = st["peak_memory_bytes"].as_u64().unwrap_or(0);
            // At least a wasm page, within the default 256 MiB cap.
            assert!(
                (64 << 10..=256 << 20).contains(&peak),
                "{role} {}: peak {peak}",
                st["name"]
            );
        }
    }

    let o = keel_in(s, &["audit", "expire", "--before", "2999-01-01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("expired 1 payloads"),
        "{}",
        stdout(&o)
    );
    assert!(show(records[1]["id"].as_str().unwrap()).contains("payload expired"));
    let o = keel_in(s, &["audit", "verify"]);
    assert!(
        o.status.success() && stdout(&o).contains("2 records"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn verify_names_the_first_edited_record_and_exits_5() {
    let store = tempfile::tempdir().unwrap();
    let s = store.path();
    for _ in 0..3 {
        let o = keel_in(
            s,
            &[
                "run",
                &example("pipeline.toml"),
                "-i",
                &example("current.csv"),
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    {
        // Edit record 1 behind the store's back: claim it processed 76 rows.
        use keel_store::layout;
        let db = sled::open(s.join(layout::DB_DIR)).unwrap();
        let audit = db.open_tree(layout::AUDIT).unwrap();
        let key = 1u64.to_be_bytes();
        let value = audit.get(key).unwrap().unwrap().to_vec();
        let text = String::from_utf8(value).unwrap();
        assert!(text.contains("\"rows_in\":75"));
        audit
            .insert(
                key,
                text.replace("\"rows_in\":75", "\"rows_in\":76").as_bytes(),
            )
            .unwrap();
        db.flush().unwrap();
    }
    let o = keel_in(s, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(5), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("audit chain broken at record seq 1"),
        "{}",
        stderr(&o)
    );
}
