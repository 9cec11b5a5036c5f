//! ONNX models through wasi:nn, end to end with the real `keel` binary: the
//! example's model trained and exported by its committed script (scikit-learn
//! and skl2onnx, from the virtualenv `cargo xtask test` makes), stored with
//! `keel model add`, run by the `onnx-model` plugin, checked against
//! onnxruntime on the same inputs, recorded in the audit log; and a guest
//! written only against standard wasi:nn running unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python with scikit-learn, skl2onnx and onnxruntime (set by `cargo xtask test`).
pub(crate) fn python() -> PathBuf {
    let p = std::env::var_os("KEEL_ONNX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/venvs/onnx/bin/python"));
    assert!(
        p.exists(),
        "{} missing: run the tests with `cargo xtask test` (it makes the virtualenv)",
        p.display()
    );
    p
}

fn example_dir() -> PathBuf {
    workspace().join("examples/penguins-onnx")
}

/// Trains and exports the example's model into `dir` with the committed script.
fn export_model(dir: &Path) -> PathBuf {
    let out = dir.join("penguins-logreg.onnx");
    let o = Command::new(python())
        .arg(example_dir().join("export_model.py"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "export failed: {}", stderr(&o));
    out
}

fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn read_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv_rows(&std::fs::read_to_string(path).unwrap());
    r.retain(|m| !m.is_empty());
    r
}

fn csv_rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}

#[test]
fn keel_predictions_equal_onnxruntime_and_the_model_digest_is_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let model = export_model(tmp.path());
    let added = ok(&keel_in(
        &store,
        &[
            "model",
            "add",
            model.to_str().unwrap(),
            "--name",
            "penguins-logreg",
            "--version",
            "1",
        ],
    ));
    assert!(
        added.contains("features FP32[N,7] -> label I64[N], probabilities FP32[N,2]"),
        "{added}"
    );
    let out = tmp.path().join("out.csv");
    let spec = example_dir().join("pipeline.toml");
    ok(&keel_in(
        &store,
        &[
            "run",
            spec.to_str().unwrap(),
            "-i",
            &example("current.csv"),
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ],
    ));
    let rows = read_csv(&out);
    assert_eq!(rows.len(), 75);
    // Both classes occur, so the check below compares real decisions.
    let gentoo = rows.iter().filter(|r| r["is_gentoo"] == "true").count();
    assert!(gentoo > 10 && gentoo < 65, "{gentoo} Gentoo rows");

    let check = Command::new(python())
        .arg(example_dir().join("check_onnxruntime.py"))
        .arg(&model)
        .arg(&out)
        .output()
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&check.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&check)));
    assert!(check.status.success(), "{summary}");
    assert_eq!(summary["rows"], 75);
    assert_eq!(summary["labels_differ"], 0, "{summary}");
    assert!(
        summary["max_abs_diff"].as_f64().unwrap() <= 1e-5,
        "{summary}"
    );
    assert_eq!(summary["gentoo_rows"].as_u64().unwrap() as usize, gentoo);

    // The audit record names the model's digest under the stage that used it.
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            std::fs::read(&model).unwrap()
        ))
    );
    let s = keel_store::Store::open(&store).unwrap();
    let records = s.audit_log(&Default::default()).unwrap();
    let last = records.last().expect("a record");
    let stage = last.stages.iter().find(|s| s.name == "model").unwrap();
    assert_eq!(stage.models.len(), 1);
    assert_eq!(stage.models[0].name, "penguins-logreg");
    assert_eq!(stage.models[0].version.as_deref(), Some("1"));
    assert_eq!(stage.models[0].digest.as_str(), digest);
    // Stages without models record none (and old records stay readable).
    assert!(
        last.stages
            .iter()
            .filter(|s| s.name != "model")
            .all(|s| s.models.is_empty())
    );
    drop(s);
    let shown = ok(&keel_in(&store, &["audit", "verify"]));
    assert!(!shown.is_empty());
}

#[test]
fn model_add_ls_inspect_and_lifecycle() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let model = export_model(tmp.path());
    let m = model.to_str().unwrap();
    let add = |version: &str, file: &str| {
        keel_in(
            &store,
            &[
                "model",
                "add",
                file,
                "--name",
                "penguins-logreg",
                "--version",
                version,
            ],
        )
    };
    ok(&add("1", m));
    // The same bytes again: a no-op. Other bytes under the same version: refused.
    ok(&add("1", m));
    // Same graph, another file (its doc string edited).
    let edited = tmp.path().join("edited.onnx");
    let python_edit = Command::new(python())
        .args([
            "-c",
            "import onnx,sys; m=onnx.load(sys.argv[1]); m.doc_string='edited'; onnx.save(m, sys.argv[2])",
            m,
            edited.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(python_edit.status.success(), "{}", stderr(&python_edit));
    fails_with(
        &add("1", edited.to_str().unwrap()),
        2,
        "versions are immutable",
    );
    ok(&add("2", edited.to_str().unwrap()));

    let ls = ok(&keel_in(&store, &["model", "ls"]));
    let lines: Vec<&str> = ls
        .lines()
        .filter(|l| l.starts_with("penguins-logreg"))
        .collect();
    assert_eq!(lines.len(), 2, "{ls}");
    assert!(
        lines[0].contains(" 1 ") && lines[0].contains("active"),
        "{ls}"
    );

    let inspect = ok(&keel_in(&store, &["model", "inspect", "penguins-logreg@1"]));
    for want in [
        "features",
        "FP32  [N, 7]",
        "label",
        "I64   [N]",
        "probabilities",
        "FP32  [N, 2]",
        "ai.onnx 17",
        "ai.onnx.ml 1",
        "skl2onnx",
        "LinearClassifier x1",
    ] {
        assert!(inspect.contains(want), "missing {want:?} in\n{inspect}");
    }
    let json: serde_json::Value = serde_json::from_str(&ok(&keel_in(
        &store,
        &["model", "inspect", "penguins-logreg@2", "--json"],
    )))
    .unwrap();
    assert_eq!(json["model"]["doc"], "edited");
    assert_eq!(json["tag"]["version"], "2");
    // A file can be inspected without the store.
    let file = ok(&keel(&["model", "inspect", m]));
    assert!(file.contains("[N, 7]"), "{file}");
    fails_with(
        &keel_in(&store, &["model", "inspect", "penguins-logreg@9"]),
        2,
        "unknown model penguins-logreg@9",
    );
    // Not a model at all: said so, with the file.
    let junk = tmp.path().join("junk.onnx");
    std::fs::write(&junk, b"not a protobuf at all").unwrap();
    fails_with(
        &keel_in(
            &store,
            &[
                "model",
                "add",
                junk.to_str().unwrap(),
                "--name",
                "junk",
                "--version",
                "1",
            ],
        ),
        2,
        "junk.onnx: not an ONNX model",
    );

    // Retired: a new run cannot load it.
    ok(&keel_in(&store, &["model", "retire", "penguins-logreg@1"]));
    let spec = example_dir().join("pipeline.toml");
    let out = tmp.path().join("out.csv");
    fails_with(
        &keel_in(
            &store,
            &[
                "run",
                spec.to_str().unwrap(),
                "-i",
                &example("current.csv"),
                "-o",
                out.to_str().unwrap(),
                "--quiet",
            ],
        ),
        2,
        "model penguins-logreg@1 is retired",
    );
    // Retiring again is a no-op; the record of version 2 is untouched.
    ok(&keel_in(&store, &["model", "retire", "penguins-logreg@1"]));
    let ls = ok(&keel_in(&store, &["model", "ls"]));
    assert!(ls.contains("retired"), "{ls}");
}

/// A pipeline file next to a model file: `models = ["FILE.onnx"]`, no store needed.
fn file_pipeline(dir: &Path, model_in_config: &str, models: &str) -> PathBuf {
    let text = std::fs::read_to_string(example_dir().join("pipeline.toml"))
        .unwrap()
        .replace(
            "reference = \"../penguins/reference.csv\"",
            &format!("reference = {:?}", example("reference.csv")),
        )
        .replace(
            "models = [\"penguins-logreg@1\"]",
            &format!("models = {models}"),
        )
        .replace(
            "model = \"penguins-logreg\"",
            &format!("model = {model_in_config:?}"),
        );
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_stage_loads_only_the_models_it_names() {
    let tmp = tempfile::tempdir().unwrap();
    let model = export_model(tmp.path());
    assert!(model.ends_with("penguins-logreg.onnx"));
    let out = tmp.path().join("out.csv");
    let run = |spec: &Path| {
        keel(&[
            "run",
            spec.to_str().unwrap(),
            "-i",
            &example("current.csv"),
            "-o",
            out.to_str().unwrap(),
            "--quiet",
            "--no-audit",
        ])
    };
    // By path: loaded by its file stem; the run works without a store.
    let spec = file_pipeline(tmp.path(), "penguins-logreg", "[\"penguins-logreg.onnx\"]");
    ok(&run(&spec));
    assert_eq!(read_csv(&out).len(), 75);
    // A model the stage does not name is not there for the plugin.
    let spec = file_pipeline(tmp.path(), "other-model", "[\"penguins-logreg.onnx\"]");
    fails_with(&run(&spec), 4, "is `other-model` in this stage's `models`?");
    // No models at all: nothing to load either.
    let spec = file_pipeline(tmp.path(), "penguins-logreg", "[]");
    fails_with(
        &run(&spec),
        4,
        "failed to find graph with name: penguins-logreg",
    );
    // A stored model without a store is a usage error naming the key.
    let spec = file_pipeline(tmp.path(), "penguins-logreg", "[\"penguins-logreg@1\"]");
    fails_with(&run(&spec), 2, "stages[3].models[0]");
    // A missing file is named.
    let spec = file_pipeline(tmp.path(), "penguins-logreg", "[\"missing.onnx\"]");
    fails_with(&run(&spec), 2, "missing.onnx");
}

#[test]
fn a_guest_written_only_against_standard_wasi_nn_runs_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let model = export_model(tmp.path());
    let guest = guest_dir("KEEL_TEST_GUESTS", "test-guests").join("nn-classify.wasm");
    // Rows of scaled features from the example pipeline's output.
    let spec = file_pipeline(tmp.path(), "penguins-logreg", "[\"penguins-logreg.onnx\"]");
    let out = tmp.path().join("out.csv");
    ok(&keel(&[
        "run",
        spec.to_str().unwrap(),
        "-i",
        &example("current.csv"),
        "-o",
        out.to_str().unwrap(),
        "--quiet",
        "--no-audit",
    ]));
    let rows = read_csv(&out);
    let features = [
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "island_Biscoe",
        "island_Dream",
        "island_Torgersen",
    ];
    let picked: Vec<_> = rows.iter().step_by(9).collect();
    let args: Vec<String> = picked
        .iter()
        .map(|r| {
            features
                .iter()
                .map(|f| r[*f].clone())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let mut cmd = vec![
        "model",
        "exec",
        guest.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--",
        "penguins-logreg",
        "features",
    ];
    cmd.extend(args.iter().map(String::as_str));
    let printed = ok(&keel(&cmd));
    let line = |name: &str| {
        printed
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {printed}"))
            .split(' ')
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let probs = line("probabilities");
    assert_eq!(probs[2], format!("{}x2", picked.len()));
    let values: Vec<f64> = probs[3].split(',').map(|v| v.parse().unwrap()).collect();
    let labels = line("label");
    let label_values: Vec<i64> = labels[3].split(',').map(|v| v.parse().unwrap()).collect();
    for (i, r) in picked.iter().enumerate() {
        let keel_prob: f64 = r["prob_gentoo"].parse().unwrap();
        assert!(
            (values[2 * i + 1] - keel_prob).abs() <= 1e-6,
            "row {i}: guest {} vs stage {keel_prob}",
            values[2 * i + 1]
        );
        assert_eq!(label_values[i] != 0, r["is_gentoo"] == "true");
    }
    // The same guest without the model granted fails cleanly.
    let o = keel(&[
        "model",
        "exec",
        guest.to_str().unwrap(),
        "--",
        "penguins-logreg",
        "features",
        "0,0,0,0,0,0,0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("exited with an error"),
        "{}",
        stderr(&o)
    );
}

/// A retrained model is the usual candidate: `keel replay --with STAGE=MODEL@V`
/// runs the recorded inputs through the deployed version with that stage's
/// model swapped, and reports what would change.
#[test]
fn replay_tries_a_candidate_model_version_on_recorded_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let m = |v: &str, c: &str| {
        let out = tmp.path().join(format!("penguins-logreg-{v}.onnx"));
        let o = Command::new(python())
            .arg(example_dir().join("export_model.py"))
            .args([out.to_str().unwrap(), c])
            .output()
            .unwrap();
        assert!(o.status.success(), "export failed: {}", stderr(&o));
        let add = [
            "model",
            "add",
            out.to_str().unwrap(),
            "--name",
            "penguins-logreg",
            "--version",
            v,
        ];
        ok(&keel_in(&store, &add));
    };
    m("1", "1.0");
    let spec = file_pipeline(tmp.path(), "penguins-logreg", "[\"penguins-logreg@1\"]");
    ok(&keel_in(
        &store,
        &["pipeline", "deploy", spec.to_str().unwrap()],
    ));
    let run = [
        "run",
        "penguins-onnx@1.0.0",
        "-i",
        &example("current.csv"),
        "--quiet",
    ];
    ok(&keel_in(&store, &run));
    // The candidate: much stronger regularisation, so every probability moves.
    m("2", "0.01");
    let replay = |with: &str| {
        keel_in(
            &store,
            &["replay", "--pipeline", "penguins-onnx", "--with", with],
        )
    };
    let out = ok(&replay("model=penguins-logreg@2"));
    assert!(out.contains("1 identical, 0 different"), "{out}");
    assert!(out.contains("candidate (model=penguins-logreg@2)"), "{out}");
    assert!(out.contains("rows changed: 75 of 75"), "{out}");
    assert!(out.contains("prob_gentoo"), "{out}");
    // A model version that is not in the store is named.
    fails_with(
        &replay("model=penguins-logreg@9"),
        2,
        "no model `penguins-logreg@9` in the store",
    );
}
