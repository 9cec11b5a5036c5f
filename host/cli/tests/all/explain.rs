//! `keel explain` on the penguins pipeline, run in the sandbox as a black
//! box: base value + Σφ = link(prediction) to 1e-9 for every row, the JSON's
//! keys as the issue spells them, the prediction the same as `keel run`'s, a
//! column the model ignores getting exactly 0, KernelSHAP with every
//! coalition equal to exact and seeded; the HTML page as headless Chromium
//! renders it; a recorded prediction explained on its deployed version,
//! twice with the same values, recorded in the audit chain, and a clear
//! error when its payload was not kept. The Shapley maths itself is proven
//! against the shap package by keel-algos' golden tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::chromium::{Tag, chromium, screenshot, start_tags};
use crate::common::{example, fails_with, guest_dir, keel, keel_in, stderr};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// The pipeline's six raw columns (the file also has `species` and `year`).
const FEATURES: &str = "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex";

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// The first `n` rows of the example's current.csv.
fn head(dir: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(example("current.csv")).unwrap();
    let head: Vec<&str> = text.lines().take(n + 1).collect();
    let p = dir.join("rows.csv");
    std::fs::write(&p, head.join("\n") + "\n").unwrap();
    p.display().to_string()
}

fn json(o: &std::process::Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// Checks one explanation's shape and additivity; returns its rows.
fn check_additive(j: &Value, features: &[&str]) -> Vec<Value> {
    assert_eq!(
        keys(j),
        BTreeSet::from([
            "output",
            "method",
            "link",
            "background",
            "base_value",
            "rows",
            "importance"
        ])
    );
    assert_eq!(keys(&j["background"]), BTreeSet::from(["rows", "digest"]));
    assert!(
        j["background"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let base = j["base_value"].as_f64().unwrap();
    let rows = j["rows"].as_array().unwrap().clone();
    let want: BTreeSet<&str> = features.iter().copied().collect();
    let mut importance = vec![0.0; features.len()];
    for r in &rows {
        assert_eq!(keys(r), BTreeSet::from(["prediction", "shap"]));
        assert_eq!(keys(&r["shap"]), want);
        let p = r["prediction"].as_f64().unwrap();
        let sum: f64 = features
            .iter()
            .map(|f| r["shap"][f].as_f64().unwrap())
            .sum();
        assert!(
            (base + sum - logit(p)).abs() < 1e-9,
            "base {base} + Σφ {sum} != logit({p})"
        );
        for (i, f) in features.iter().enumerate() {
            importance[i] += r["shap"][f].as_f64().unwrap().abs() / rows.len() as f64;
        }
    }
    for (i, f) in features.iter().enumerate() {
        let got = j["importance"][f].as_f64().unwrap();
        assert!(
            (got - importance[i]).abs() < 1e-12,
            "{f}: {got} vs {}",
            importance[i]
        );
    }
    rows
}

#[test]
fn penguins_values_add_up_to_the_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let input = head(dir.path(), 5);
    let spec = example("pipeline.toml");
    let args = |method: &str, extra: &[&str]| -> Value {
        let mut a = vec![
            "explain",
            spec.as_str(),
            "--input",
            input.as_str(),
            "--output",
            "prob_gentoo",
            "--features",
            FEATURES,
            "--link",
            "logit",
            "--method",
            method,
            "--format",
            "json",
        ];
        a.extend_from_slice(extra);
        json(&keel(&a))
    };
    let features: Vec<&str> = FEATURES.split(',').collect();
    let exact = args("exact", &[]);
    assert_eq!(
        (
            &exact["output"],
            &exact["method"],
            &exact["link"],
            &exact["background"]["rows"]
        ),
        (
            &Value::from("prob_gentoo"),
            &Value::from("exact"),
            &Value::from("logit"),
            &Value::from(100)
        )
    );
    let rows = check_additive(&exact, &features);
    assert_eq!(rows.len(), 5);
    // The predictions are `keel run`'s (examples/penguins/expected_predictions.csv).
    let expected = std::fs::read_to_string(example("expected_predictions.csv")).unwrap();
    for (r, line) in rows.iter().zip(expected.lines().skip(1)) {
        let want: f64 = line.split(',').nth(1).unwrap().parse().unwrap();
        assert!(
            (r["prediction"].as_f64().unwrap() - want).abs() < 1e-12,
            "{line}"
        );
        // The model never reads `sex`: its value changes nothing.
        assert_eq!(r["shap"]["sex"].as_f64(), Some(0.0));
        assert!(r["shap"]["bill_depth_mm"].as_f64().unwrap().abs() > 1e-3);
    }
    // auto is exact for six columns; kernel with all 62 coalitions is exact too.
    assert_eq!(args("auto", &[])["rows"], exact["rows"]);
    let kernel = args("kernel", &["--nsamples", "62", "--seed", "3"]);
    assert_eq!(kernel["method"], "kernel");
    for (k, e) in kernel["rows"].as_array().unwrap().iter().zip(&rows) {
        for f in &features {
            let (a, b) = (
                k["shap"][f].as_f64().unwrap(),
                e["shap"][f].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 1e-9, "{f}: kernel {a}, exact {b}");
        }
    }
    // Sampled: additive, and the same seed gives the same values.
    let sampled = args("kernel", &["--nsamples", "20", "--seed", "5"]);
    check_additive(&sampled, &features);
    assert_eq!(
        sampled,
        args("kernel", &["--nsamples", "20", "--seed", "5"])
    );
    assert_ne!(sampled["rows"], kernel["rows"]);
    // A background file is used whole, and named by its digest.
    let bg = head(dir.path(), 7);
    let whole = args("exact", &["--background", &bg]);
    assert_eq!(whole["background"]["rows"], 7);
    assert_ne!(whole["background"]["digest"], exact["background"]["digest"]);
    check_additive(&whole, &features);
}

#[test]
fn bad_requests_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = head(dir.path(), 2);
    let spec = example("pipeline.toml");
    let run = |extra: &[&str]| {
        let mut a = vec!["explain", spec.as_str(), "--input", input.as_str()];
        a.extend_from_slice(extra);
        keel(&a)
    };
    fails_with(
        &run(&["--output", "is_gentoo"]),
        2,
        "output `is_gentoo` is bool, not numeric",
    );
    fails_with(
        &run(&["--output", "nosuch"]),
        2,
        "no output column `nosuch`",
    );
    fails_with(
        &run(&["--output", "prob_gentoo", "--features", "island,beak"]),
        2,
        "feature `beak` is not an input column",
    );
    // prob_gentoo is a probability; its logit at 0 or 1 would be infinite, a linear output's not.
    fails_with(
        &run(&["--output", "bill_length_mm", "--link", "logit"]),
        3,
        "logit",
    );
}

fn floats_of(tags: &[&Tag], attr: &str) -> Vec<f64> {
    tags.iter()
        .map(|t| t.attr(attr).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn html_page_as_chromium_renders_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = head(dir.path(), 3);
    let page = dir.path().join("explain.html");
    let common = [
        "explain",
        &example("pipeline.toml"),
        "--input",
        input.as_str(),
        "--output",
        "prob_gentoo",
        "--features",
        FEATURES,
        "--link",
        "logit",
    ];
    let j = json(&keel(&[&common[..], &["--format", "json"]].concat()));
    let page_arg = page.display().to_string();
    let o = keel(&[&common[..], &["--format", "html", "-o", &page_arg]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let url = format!("file://{}", page.display());
    let dom = String::from_utf8(chromium(dir.path(), "dom", &["--dump-dom".into()], &url)).unwrap();
    let tags = start_tags(&dom);
    let svgs: Vec<usize> = (0..tags.len()).filter(|&i| tags[i].name == "svg").collect();
    let inside = |i: usize| -> Vec<&Tag> {
        let until = svgs.iter().copied().find(|&k| k > i).unwrap_or(tags.len());
        tags[i + 1..until].iter().collect()
    };
    let bars = |i: usize| -> Vec<&Tag> {
        inside(i)
            .into_iter()
            .filter(|t| t.name == "rect" && t.has_class(&["bar"]))
            .collect()
    };
    let waterfalls: Vec<usize> = svgs
        .iter()
        .copied()
        .filter(|&i| tags[i].has_class(&["keel-waterfall"]))
        .collect();
    assert_eq!(waterfalls.len(), 3, "one waterfall per row");
    let base = j["base_value"].as_f64().unwrap();
    for (r, &i) in waterfalls.iter().enumerate() {
        assert_eq!(tags[i].attr("data-row"), Some(r.to_string().as_str()));
        let b = bars(i);
        assert_eq!(b.len(), 6, "a bar per feature");
        // Each bar starts where the one before ended: base → logit(prediction).
        let (from, to) = (floats_of(&b, "data-from"), floats_of(&b, "data-to"));
        assert!((from[0] - base).abs() < 1e-12);
        for k in 1..b.len() {
            assert_eq!(from[k], to[k - 1]);
        }
        let p = j["rows"][r]["prediction"].as_f64().unwrap();
        assert!((to[5] - logit(p)).abs() < 1e-9, "{} vs {}", to[5], logit(p));
        // Largest contribution first; red raises, blue lowers.
        let spans: Vec<f64> = from.iter().zip(&to).map(|(a, b)| (b - a).abs()).collect();
        assert!(spans.windows(2).all(|w| w[0] >= w[1]), "{spans:?}");
        for t in &b {
            let up = t.attr("data-to").unwrap().parse::<f64>().unwrap()
                >= t.attr("data-from").unwrap().parse::<f64>().unwrap();
            assert_eq!(t.has_class(&["pos"]), up);
        }
    }
    let importance: Vec<usize> = svgs
        .iter()
        .copied()
        .filter(|&i| tags[i].has_class(&["keel-importance"]))
        .collect();
    assert_eq!(importance.len(), 1);
    let b = bars(importance[0]);
    assert_eq!(b.len(), 6);
    // Widths follow mean |φ| (a hairline is drawn 1 px wide).
    let widths = floats_of(&b, "width");
    let values = floats_of(&b, "data-to");
    let scale = widths[0] / values[0];
    for (w, v) in widths.iter().zip(&values) {
        assert!(
            (w - (v * scale).max(1.0)).abs() < 0.02,
            "{widths:?} {values:?}"
        );
    }
    screenshot(dir.path(), &url, (1200, 1400), 20_000);
}

fn audit_records(store: &Path) -> Vec<Value> {
    let o = keel_in(store, &["audit", "log", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_recorded_prediction_is_explained_and_the_explanation_recorded() {
    let store = tempfile::tempdir().unwrap();
    let s = store.path();
    let dir = tempfile::tempdir().unwrap();
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
    let input = head(dir.path(), 3);
    let o = keel_in(s, &["run", "penguins@1.0.0", "-i", &input]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = audit_records(s)[0]["id"].as_str().unwrap().to_string();

    let explain = || {
        json(&keel_in(
            s,
            &[
                "explain",
                "--record",
                &id,
                "--row",
                "1",
                "--output",
                "prob_gentoo",
                "--link",
                "logit",
                "--features",
                FEATURES,
                "--format",
                "json",
            ],
        ))
    };
    let first = explain();
    let rows = check_additive(&first, &FEATURES.split(',').collect::<Vec<_>>());
    assert_eq!(rows.len(), 1);
    assert_eq!(explain(), first, "the same record explained twice");
    // The same values as explaining that row of the deployed version from a file.
    let one = dir.path().join("one.csv");
    let text = std::fs::read_to_string(&input).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&one, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    let from_file = json(&keel_in(
        s,
        &[
            "explain",
            "penguins@1.0.0",
            "--input",
            one.to_str().unwrap(),
            "--output",
            "prob_gentoo",
            "--link",
            "logit",
            "--features",
            FEATURES,
            "--format",
            "json",
        ],
    ));
    assert_eq!(from_file["rows"], first["rows"]);

    // Both explanations are in the chain, linked to the prediction's record.
    let records = audit_records(s);
    let explanations: Vec<&Value> = records
        .iter()
        .filter(|r| r["explanation"].is_object())
        .collect();
    assert_eq!(explanations.len(), 2);
    for e in &explanations {
        let x = &e["explanation"];
        assert_eq!(x["explains"], Value::from(id.as_str()));
        assert_eq!(
            (x["row"].as_u64(), x["method"].as_str()),
            (Some(1), Some("exact"))
        );
        assert_eq!(
            (x["link"].as_str(), x["seed"].as_u64()),
            (Some("logit"), Some(0))
        );
        assert!(x["nsamples"].is_null());
        assert_eq!(x["background"], first["background"]);
        assert_eq!(e["pipeline"], records.last().unwrap()["pipeline"]);
    }
    assert_eq!(
        explanations[0]["explanation"]["values_digest"],
        explanations[1]["explanation"]["values_digest"]
    );
    let o = keel_in(s, &["audit", "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A prediction whose input was not kept cannot be explained.
    let o = keel_in(s, &["pipeline", "retention", "penguins", "digests-only"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let other = head(dir.path(), 4);
    let o = keel_in(s, &["run", "penguins@1.0.0", "-i", &other]);
    assert!(o.status.success(), "{}", stderr(&o));
    let unkept = audit_records(s)[0]["id"].as_str().unwrap().to_string();
    let o = keel_in(
        s,
        &["explain", "--record", &unkept, "--output", "prob_gentoo"],
    );
    fails_with(&o, 3, "was not retained");
    let o = keel_in(
        s,
        &[
            "explain",
            "--record",
            &id,
            "--row",
            "9",
            "--output",
            "prob_gentoo",
        ],
    );
    fails_with(&o, 2, "has 3 input rows; row 9 is past them");
}

#[test]
fn the_daemon_explains_requests_and_stored_predictions() {
    use crate::common::daemon::{Daemon, post_json};
    let store = tempfile::tempdir().unwrap();
    let s = store.path();
    let o = keel_in(s, &["pipeline", "deploy", &example("pipeline.toml")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let input = head(dir.path(), 3);
    let batch = keel_data::io::read_all(Path::new(&input), None).unwrap();
    let mut req = crate::serve::oip_request(&batch, Some("explain-me"));
    req["parameters"] = serde_json::json!({"explain": ["prob_gentoo"], "explain_link": "logit"});
    // What `keel explain` says for the same rows on the same version.
    let cli = json(&keel_in(
        s,
        &[
            "explain",
            "penguins@1.0.0",
            "--input",
            &input,
            "--output",
            "prob_gentoo",
            "--link",
            "logit",
            "--format",
            "json",
        ],
    ));
    let d = Daemon::start(s, &[]);

    let r = post_json(&d.url("/v2/models/penguins/explain"), None, &req);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let outputs = body["outputs"].as_array().unwrap();
    let named = |n: &str| {
        outputs
            .iter()
            .find(|o| o["name"] == n)
            .unwrap_or_else(|| panic!("no {n}: {body}"))
    };
    let probs = named("prob_gentoo")["data"].as_array().unwrap().clone();
    let shap = named("prob_gentoo_shap");
    assert_eq!(shap["datatype"], "FP64");
    assert_eq!(shap["shape"], serde_json::json!([3, 8]));
    let about = &body["parameters"]["explain"]["prob_gentoo"];
    let features: Vec<&str> = about["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(features.len(), 8);
    assert_eq!(about["background"], cli["background"]);
    let base = about["base_value"].as_f64().unwrap();
    let data: Vec<f64> = shap["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for r in 0..3 {
        let row = &data[r * 8..(r + 1) * 8];
        let p = probs[r].as_f64().unwrap();
        assert!((base + row.iter().sum::<f64>() - logit(p)).abs() < 1e-9);
        // The same values as the CLI, feature by feature.
        for (j, f) in features.iter().enumerate() {
            assert_eq!(row[j], cli["rows"][r]["shap"][f].as_f64().unwrap(), "{f}");
        }
    }
    // A non-numeric output, or no `parameters.explain`, is a 400 naming the place.
    req["parameters"]["explain"] = serde_json::json!(["is_gentoo"]);
    let r = post_json(
        &d.url("/v2/models/penguins/versions/1.0.0/explain"),
        None,
        &req,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("not numeric"), "{}", r.body);
    req.as_object_mut().unwrap().remove("parameters");
    let r = post_json(&d.url("/v2/models/penguins/explain"), None, &req);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("parameters.explain"), "{}", r.body);

    // A stored prediction: infer, then explain it by id; recorded in the chain.
    req.as_object_mut().unwrap().remove("parameters");
    let r = post_json(&d.url("/v2/models/penguins/infer"), None, &req);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_json(
        &d.url("/admin/audit/explain-me/explain"),
        None,
        &serde_json::json!({"output": "prob_gentoo", "link": "logit", "row": 2}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let stored = r.json();
    assert_eq!(stored["explains"], "explain-me");
    assert_eq!(stored["rows"][0]["shap"], cli["rows"][2]["shap"]);
    let record = stored["record"].as_str().unwrap();
    let r = crate::common::daemon::get(&d.url(&format!("/admin/audit/{record}")), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"explains\":\"explain-me\""), "{}", r.body);
    let r = post_json(
        &d.url("/admin/audit/no-such-record/explain"),
        None,
        &serde_json::json!({"output": "prob_gentoo"}),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    drop(d);

    // A budget too small for an explanation is a 504; inference is not held up by it.
    let cfg = dir.path().join("serve.toml");
    std::fs::write(&cfg, "[limits]\nrequest_timeout_ms = 1\n").unwrap();
    let d = Daemon::start(s, &["--config", cfg.to_str().unwrap()]);
    req["parameters"] = serde_json::json!({"explain": ["prob_gentoo"]});
    req.as_object_mut().unwrap().remove("id");
    let r = post_json(&d.url("/v2/models/penguins/explain"), None, &req);
    assert_eq!(r.status, 504, "{}", r.body);
    assert!(r.body.contains("budget"), "{}", r.body);
}
