//! `keel performance` end to end on files the tests write: labels
//! left-joined by id (unmatched ids counted, the last of a duplicate id
//! counting, coverage per chunk), realized metrics checked against counts
//! made here, task inference, regression, multiclass, a reference's
//! estimates and its warning, and errors naming file, line and column with
//! exit codes 2 and 3. The metrics' own definitions are proven against
//! scikit-learn and NannyML by keel-algos' golden tests, not here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::{fails_with, keel, stderr};
use serde_json::Value;
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn report(args: &[&str]) -> Value {
    let mut all = vec!["performance", "--format", "json"];
    all.extend_from_slice(args);
    let o = keel(&all);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn close(v: &Value, expected: f64) {
    let x = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((x - expected).abs() < 1e-12, "{x} != {expected}");
}

/// Twelve predictions (`id` 0..11, score, prediction = score >= 0.5) and a
/// deterministic truth for each; ids 0..9 get labels, 10 and 11 do not.
fn binary_rows() -> Vec<(u32, f64, bool)> {
    let scores = [
        0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.7, 0.4, 0.55, 0.05, 0.95, 0.35,
    ];
    let truth = [
        true, false, false, true, true, false, true, false, false, false, true, true,
    ];
    (0..12)
        .map(|i| (i, scores[i as usize], truth[i as usize]))
        .collect()
}

#[test]
fn labels_are_left_joined_and_realized_metrics_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let rows = binary_rows();
    let mut analysis = String::from("id,region,score,prediction\n");
    for (i, s, _) in &rows {
        let region = if i % 2 == 0 { "north" } else { "south" };
        analysis += &format!("{i},{region},{s},{}\n", u8::from(*s >= 0.5));
    }
    // Labels in another order, a wrong label for id 3 corrected later, and
    // two ids no prediction has.
    let mut labels = String::from("id,y\n3,0\n");
    for (i, _, t) in rows.iter().take(10).rev() {
        labels += &format!("{i},{}\n", u8::from(*t));
    }
    labels += "77,1\n78,0\n";
    let a = write(dir.path(), "analysis.csv", &analysis);
    let l = write(dir.path(), "labels.csv", &labels);
    let common = [
        a.as_str(),
        "--labels",
        &l,
        "--id-column",
        "id",
        "--label-column",
        "y",
        "--score-column",
        "score",
        "--chunk-size",
        "5",
    ];
    let mut args = common.to_vec();
    args.extend([
        "--prediction-column",
        "prediction",
        "--segment-column",
        "region",
    ]);
    let j = report(&args);
    assert_eq!(j["task"], "binary");
    assert_eq!(j["unmatched"], 2);
    assert_eq!(j["overall"]["rows"], 12);
    assert_eq!(j["overall"]["labelled"], 10);
    close(&j["overall"]["coverage"], 10.0 / 12.0);
    // Counted here from the rows that have labels.
    let labelled = &rows[..10];
    let (mut tp, mut tn, mut fp, mut fn_) = (0.0, 0.0, 0.0, 0.0);
    for (_, s, t) in labelled {
        match (*s >= 0.5, *t) {
            (true, true) => tp += 1.0,
            (false, false) => tn += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fn_ += 1.0,
        }
    }
    let realized = &j["overall"]["realized"];
    close(&realized["accuracy"], (tp + tn) / 10.0);
    close(&realized["precision"], tp / (tp + fp));
    close(&realized["recall"], tp / (tp + fn_));
    close(&realized["specificity"], tn / (tn + fp));
    let brier = labelled
        .iter()
        .map(|(_, s, t)| (s - f64::from(u8::from(*t))).powi(2))
        .sum::<f64>()
        / 10.0;
    close(&realized["brier"], brier);
    // Chunks in file order, the last one short; the last two rows unlabelled.
    let chunks = j["chunks"].as_array().unwrap();
    let spans: Vec<_> = chunks
        .iter()
        .map(|c| (c["start"].clone(), c["end"].clone(), c["labelled"].clone()))
        .collect();
    assert_eq!(
        spans,
        [
            (0.into(), 4.into(), 5.into()),
            (5.into(), 9.into(), 5.into()),
            (10.into(), 11.into(), 0.into())
        ]
    );
    assert!(chunks[2]["realized"]["accuracy"].is_null());
    // Segments: north holds the even ids, 5 of them labelled; too few to judge.
    let north = &j["segments"]["north"];
    assert_eq!((&north["rows"], &north["labelled"]), (&6.into(), &5.into()));
    assert_eq!(north["judged"], false);

    // The table says the same, and the correction is reported.
    let mut args = vec!["performance"];
    args.extend(common);
    let o = keel(&args);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("12 predictions, 10 labelled (83.3 %)"),
        "{table}"
    );
    assert!(table.contains("2 label(s) match no prediction"), "{table}");
    assert!(stderr(&o).contains("1 label(s) replaced"), "{}", stderr(&o));
}

#[test]
fn regression_with_labels_in_the_predictions_file() {
    let dir = tempfile::tempdir().unwrap();
    // Empty truth = not known yet.
    let a = write(
        dir.path(),
        "a.jsonl",
        "{\"id\":\"a\",\"y\":10.5,\"yhat\":12.0}\n\
         {\"id\":\"b\",\"y\":null,\"yhat\":3.0}\n\
         {\"id\":\"c\",\"y\":4.0,\"yhat\":3.0}\n\
         {\"id\":\"d\",\"y\":-2.0,\"yhat\":-2.5}\n",
    );
    let j = report(&[
        &a,
        "--id-column",
        "id",
        "--label-column",
        "y",
        "--prediction-column",
        "yhat",
    ]);
    assert_eq!(j["task"], "regression");
    assert_eq!(j["overall"]["labelled"], 3);
    assert_eq!(j["unmatched"], 0);
    let r = &j["overall"]["realized"];
    close(&r["mae"], (1.5 + 1.0 + 0.5) / 3.0);
    close(&r["max_error"], 1.5);
    close(&r["mean_error"], (1.5 - 1.0 - 0.5) / 3.0);
}

#[test]
fn multiclass_from_probability_columns_and_a_reference() {
    let dir = tempfile::tempdir().unwrap();
    let classes = ["cat", "dog", "eel"];
    let mut text = String::from("id,truth,p_cat,p_dog,p_eel\n");
    let mut correct = 0;
    for i in 0..60u32 {
        let truth = classes[(i % 3) as usize];
        // Most rows put 0.6 on the truth, every fifth on the next class.
        let top = if i % 5 == 0 { (i + 1) % 3 } else { i % 3 };
        correct += u32::from(top == i % 3);
        let p: Vec<String> = (0..3)
            .map(|c| if c == top { "0.6".into() } else { "0.2".into() })
            .collect();
        text += &format!("{i},{truth},{}\n", p.join(","));
    }
    let a = write(dir.path(), "a.csv", &text);
    let args = [
        a.as_str(),
        "--reference",
        &a,
        "--id-column",
        "id",
        "--label-column",
        "truth",
        "--score-column",
        "p_",
        "--chunk-size",
        "20",
    ];
    let j = report(&args);
    assert_eq!(j["task"], "multiclass");
    close(
        &j["overall"]["realized"]["accuracy"],
        f64::from(correct) / 60.0,
    );
    // A reference of three chunks: estimates, bounds, and a warning.
    assert!(j["chunks"][0]["estimated"]["accuracy"].is_number());
    assert!(j["chunks"][0]["bounds"]["accuracy"].is_array());
    let mut all = vec!["performance"];
    all.extend_from_slice(&args);
    let o = keel(&all);
    assert!(
        stderr(&o).contains("the reference makes 3 chunk(s)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_input_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.csv",
        "id,score,y\n1,0.9,yes\n2,0.2,no\n3,0.4,maybe\n",
    );
    let l = write(dir.path(), "labels.csv", "id,label\n1,1\n");
    let base = ["performance", a.as_str(), "--id-column", "id"];
    let run = |extra: &[&str]| {
        let mut all = base.to_vec();
        all.extend_from_slice(extra);
        keel(&all)
    };
    // A labels file without the label column: bad data, naming both.
    let o = run(&[
        "--labels",
        &l,
        "--label-column",
        "y",
        "--score-column",
        "score",
    ]);
    fails_with(&o, 3, "labels.csv: no column `y` (--label-column)");
    // A third class in binary labels: the line that has it.
    let o = run(&[
        "--label-column",
        "y",
        "--score-column",
        "score",
        "--task",
        "binary",
    ]);
    fails_with(&o, 3, "a.csv:4: column `y`: a third class `maybe`");
    // No model output named: a usage error.
    let o = run(&["--label-column", "y"]);
    fails_with(&o, 2, "--score-column and/or --prediction-column");
    // Three label values and one score column: which task is it?
    let o = run(&["--label-column", "y", "--score-column", "score"]);
    fails_with(&o, 2, "pass --task");
    // Regression on text labels.
    let o = run(&[
        "--label-column",
        "y",
        "--prediction-column",
        "score",
        "--task",
        "regression",
    ]);
    fails_with(&o, 3, "column `y`: regression labels must be numbers");
    // Two string classes, neither obviously positive.
    let b = write(dir.path(), "b.csv", "id,score,y\n1,0.9,yes\n2,0.2,no\n");
    let b_args = |id: &'static str| {
        vec![
            "performance",
            b.as_str(),
            "--id-column",
            id,
            "--label-column",
            "y",
            "--score-column",
            "score",
        ]
    };
    fails_with(&keel(&b_args("id")), 2, "--positive-label");
    let mut args = b_args("id");
    args.extend(["--positive-label", "yes", "--format", "json"]);
    let o = keel(&args);
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    close(&j["overall"]["realized"]["accuracy"], 1.0);
    // The id column missing from the predictions.
    fails_with(
        &keel(&b_args("key")),
        3,
        "b.csv: no column `key` (--id-column)",
    );
}
