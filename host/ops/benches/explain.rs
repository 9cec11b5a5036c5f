//! Shapley values of one row through a whole pipeline in the sandbox:
//! exact, 6 raw columns, 100 background rows (64 coalitions × 100 = 6,400
//! rows through the stages as one batch), for the penguins pipeline and for
//! penguins-onnx (its model through the `onnx-model` stage and wasi:nn).
//! The shap side of the comparison is `benches/explain/shap_bench.py`, run
//! by `cargo xtask bench-explain` in the same run on the files this writes:
//! the background, the row and keel's values.
//!
//! Env: `KEEL_PLUGIN_DIR`, `KEEL_BENCH_MODEL` (the penguins-onnx .onnx),
//! `KEEL_BENCH_OUT` (a directory). Prints one JSON object per measurement.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keel_algos::explain::{Link, Method, Options};
use keel_data::Batch;
use keel_data::io::{BatchWriter, Format};
use keel_ops::Resolver;
use keel_ops::explain::{Background, Explained, Request, explain};
use keel_runtime::pipeline::{Pipeline, PluginDirs};
use keel_runtime::{Runtime, RuntimeOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FEATURES: [&str; 6] = [
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
];
const RUNS: usize = 30;

fn env_path(var: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} is not set: run `cargo xtask bench-explain`"))
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn write_csv(batch: &Batch, path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = BatchWriter::new(Box::new(file), Format::Csv, path);
    w.write(batch).unwrap();
    w.finish().unwrap();
}

/// Times `RUNS` explanations of the row after one that creates the instances.
fn measure(what: &str, pipeline: &Pipeline, row: &Batch, out: &Path) -> Explained {
    let background = Background::reference(pipeline, 100).unwrap();
    let request = Request {
        output: "prob_gentoo".into(),
        features: Some(FEATURES.iter().map(|f| f.to_string()).collect()),
        options: Options {
            method: Method::Exact,
            link: Link::Identity,
            nsamples: None,
            seed: 0,
        },
        deadline: None,
    };
    let mut worker = pipeline.worker();
    let first = explain(&mut worker, row, &background, &request).unwrap();
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let e = explain(&mut worker, row, &background, &request).unwrap();
            let d = t.elapsed();
            assert_eq!(e, first, "explanations are deterministic");
            d
        })
        .collect();
    times.sort();
    println!(
        "{}",
        serde_json::json!({
            "what": what,
            "rows_through_stages": 64 * background.batch.rows(),
            "median_ms": times[RUNS / 2].as_secs_f64() * 1e3,
            "min_ms": times[0].as_secs_f64() * 1e3,
            "base_value": first.rows[0].base_value,
            "shap": first.rows[0].shap,
        })
    );
    write_csv(&background.batch, &out.join("background.csv"));
    first
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let model = env_path("KEEL_BENCH_MODEL");
    let out = env_path("KEEL_BENCH_OUT");
    std::fs::create_dir_all(&out).unwrap();
    let rt = Arc::new(Runtime::new(RuntimeOptions::default()).unwrap());
    let resolver = Resolver {
        store: None,
        dirs: PluginDirs(vec![env_path("KEEL_PLUGIN_DIR")]),
    };
    let penguins = Pipeline::load(
        rt.clone(),
        &examples().join("penguins/pipeline.toml"),
        &resolver,
    )
    .unwrap();
    let current = keel_data::io::read_all(
        &examples().join("penguins/current.csv"),
        penguins.input_schema(),
    )
    .unwrap();
    let row = current.slice(0, 1);
    write_csv(&row, &out.join("row.csv"));
    measure(
        "keel explain, penguins (logistic-regression plugin)",
        &penguins,
        &row,
        &out,
    );

    // penguins-onnx with the model named by path: no store needed.
    let text = std::fs::read_to_string(examples().join("penguins-onnx/pipeline.toml")).unwrap();
    let spec = out.join("penguins-onnx.toml");
    let reference = examples().join("penguins/reference.csv");
    std::fs::write(
        &spec,
        text.replace(
            r#"models = ["penguins-logreg@1"]"#,
            &format!("models = [{:?}]", model.display().to_string()),
        )
        .replace(
            r#"reference = "../penguins/reference.csv""#,
            &format!("reference = {:?}", reference.display().to_string()),
        ),
    )
    .unwrap();
    let onnx = Pipeline::load(rt, &spec, &resolver).unwrap();
    let e = measure(
        "keel explain, penguins-onnx (onnx-model, wasi:nn)",
        &onnx,
        &row,
        &out,
    );
    std::fs::write(
        out.join("keel.json"),
        serde_json::json!({"features": e.features, "base_value": e.rows[0].base_value, "shap": e.rows[0].shap})
            .to_string(),
    )
    .unwrap();
}
