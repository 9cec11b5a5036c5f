//! `keel performance` end to end on files the tests write: labels
//! left-joined by id (unmatched ids counted, the last of a duplicate id
//! counting, coverage per chunk), realized metrics checked against counts
//! made here, task inference, regression, multiclass, a reference's
//! estimates and its warning, and errors naming file, line and column with
//! exit codes 2 and 3; the HTML report as headless Chromium renders it
//! (charts, marks and alerts checked against the JSON, names escaped). The
//! metrics' own definitions are proven against scikit-learn and NannyML by
//! keel-algos' golden tests, not here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::chromium::{Tag, chromium, screenshot, start_tags};
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

/// A segment value and a column name that would be markup if not escaped.
const EVIL_SEGMENT: &str = r#"<b id="seg">north & "south"</b>"#;
const EVIL_COLUMN: &str = r#"region <i id="col">&"</i>"#;

/// `n` JSON lines of a calibrated binary model (`score` uniform, the truth
/// drawn with that probability) from a seeded generator; rows in `flip`
/// get the opposite truth (the world changed), rows from `unlabelled` on
/// get none. Returns the predictions and the labels files' text.
fn drifting_rows(
    prefix: &str,
    n: usize,
    flip: std::ops::Range<usize>,
    unlabelled: usize,
) -> (String, String) {
    let mut state: u64 = 0x5eed_0000 + n as u64 + flip.start as u64;
    let mut uniform = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut predictions, mut labels) = (String::new(), String::new());
    for i in 0..n {
        let score = uniform();
        let truth = (uniform() < score) != flip.contains(&i);
        let segment = if i % 2 == 0 { EVIL_SEGMENT } else { "plain" };
        let id = format!("{prefix}{i}");
        let mut row = serde_json::json!({"id": id, "score": score, EVIL_COLUMN: segment});
        if i < unlabelled {
            labels += &format!("{}\n", serde_json::json!({"id": id, "y": u8::from(truth)}));
            if prefix == "r" {
                row["y"] = u8::from(truth).into();
            }
        }
        predictions += &format!("{row}\n");
    }
    (predictions, labels)
}

/// The numbers of the chunks (1-based) where `pick` holds.
fn chunks_where(j: &Value, pick: impl Fn(&Value) -> bool) -> Vec<usize> {
    let chunks = j["chunks"].as_array().unwrap();
    (1..=chunks.len())
        .filter(|i| pick(&chunks[i - 1]))
        .collect()
}

fn data_chunks(tags: &[&Tag], name: &str, class: &str) -> Vec<usize> {
    tags.iter()
        .filter(|t| t.name == name && t.has_class(&[class]))
        .map(|t| t.attr("data-chunk").unwrap().parse().unwrap())
        .collect()
}

#[test]
fn html_report_as_chromium_renders_it() {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // 6 reference chunks of 100 rows; analysis chunks 4-5 flipped, chunk 6
    // without labels yet.
    let (reference, _) = drifting_rows("r", 600, 0..0, 600);
    let (analysis, labels) = drifting_rows("a", 600, 300..500, 500);
    let r = write(dir.path(), "reference.jsonl", &reference);
    let a = write(dir.path(), "analysis.jsonl", &analysis);
    let l = write(dir.path(), "labels.jsonl", &labels);
    let page = dir.path().join("report.html");
    let page_arg = page.display().to_string();
    let args = [
        a.as_str(),
        "--labels",
        &l,
        "--reference",
        &r,
        "--id-column",
        "id",
        "--label-column",
        "y",
        "--score-column",
        "score",
        "--chunk-size",
        "100",
        "--segment-column",
        EVIL_COLUMN,
    ];
    let j = report(&args);
    let mut html_args = vec!["performance", "--format", "html", "-o", &page_arg];
    html_args.extend_from_slice(&args);
    let o = keel(&html_args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let url = format!("file://{}", page.display());
    let dom = String::from_utf8(chromium(dir.path(), "dom", &["--dump-dom".into()], &url)).unwrap();
    let tags = start_tags(&dom);

    // One chart per metric the JSON reports, each on its own.
    let metrics: Vec<&String> = j["overall"]["realized"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(metrics.len(), 9, "the binary metrics");
    let svgs: Vec<usize> = (0..tags.len()).filter(|&i| tags[i].name == "svg").collect();
    let charts: Vec<usize> = svgs
        .iter()
        .copied()
        .filter(|&i| tags[i].has_class(&["keel-perf"]))
        .collect();
    let mut charted: Vec<&str> = charts
        .iter()
        .map(|&i| tags[i].attr("data-metric").unwrap())
        .collect();
    charted.sort_unstable();
    assert_eq!(charted, metrics, "one chart per metric");
    let inside = |i: usize| -> Vec<&Tag> {
        let until = svgs.iter().copied().find(|&k| k > i).unwrap_or(tags.len());
        tags[i + 1..until].iter().collect()
    };
    let mut alerts = 0;
    for &i in &charts {
        let m = tags[i].attr("data-metric").unwrap();
        let marks = inside(i);
        let realized = chunks_where(&j, |c| c["realized"][m].is_number());
        assert_eq!(
            realized,
            [1, 2, 3, 4, 5],
            "{m}: one realized point per labelled chunk"
        );
        assert_eq!(data_chunks(&marks, "circle", "realized"), realized, "{m}");
        let estimated = chunks_where(&j, |c| c["estimated"][m].is_number());
        assert_eq!(data_chunks(&marks, "circle", "estimated"), estimated, "{m}");
        let has = |name: &str, class: &str| {
            marks
                .iter()
                .filter(|t| t.name == name && t.has_class(&[class]))
                .count()
        };
        assert_eq!(has("polyline", "realized"), 1, "{m}");
        if !estimated.is_empty() {
            assert_eq!(
                (has("polyline", "estimated"), has("polygon", "band")),
                (1, 1),
                "{m}"
            );
        }
        // The bounds lines at the JSON's bounds.
        let mut drawn: Vec<f64> = marks
            .iter()
            .filter(|t| t.name == "line" && t.has_class(&["bound"]))
            .map(|t| t.attr("data-value").unwrap().parse().unwrap())
            .collect();
        drawn.sort_by(f64::total_cmp);
        let bounds: Vec<f64> = j["chunks"][0]["bounds"][m]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        // (serde_json's float parsing may be one ulp off the exact value.)
        assert_eq!(drawn.len(), bounds.len(), "{m}: {drawn:?} {bounds:?}");
        for (d, b) in drawn.iter().zip(&bounds) {
            assert!((d - b).abs() < 1e-12, "{m}: {drawn:?} {bounds:?}");
        }
        // Alert marks exactly on the chunks the JSON alerts.
        let alerted = chunks_where(&j, |c| {
            c["alerts"].as_array().unwrap().iter().any(|a| a == m)
        });
        assert_eq!(data_chunks(&marks, "circle", "alert"), alerted, "{m}");
        assert_eq!(data_chunks(&marks, "rect", "alert-chunk"), alerted, "{m}");
        alerts += alerted.len();
    }
    assert!(
        chunks_where(&j, |c| c["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "accuracy"))
        .contains(&4),
        "the flipped chunks alert"
    );
    assert!(alerts >= 9, "{alerts} alerts");
    // Coverage: a bar per chunk, full for the labelled ones, empty for the last.
    let cover: Vec<usize> = svgs
        .iter()
        .copied()
        .filter(|&i| tags[i].has_class(&["keel-coverage"]))
        .collect();
    assert_eq!(cover.len(), 1);
    let bars: Vec<&Tag> = inside(cover[0])
        .into_iter()
        .filter(|t| t.name == "rect" && t.has_class(&["coverage"]))
        .collect();
    assert_eq!(data_chunks(&bars, "rect", "coverage"), [1, 2, 3, 4, 5, 6]);
    let heights: Vec<f64> = bars
        .iter()
        .map(|t| t.attr("height").unwrap().parse().unwrap())
        .collect();
    assert!(
        heights[..5].iter().all(|h| *h > 100.0 && *h == heights[0]),
        "{heights:?}"
    );
    assert_eq!(heights[5], 0.0);
    // The odd names are text, never markup.
    assert!(
        tags.iter()
            .all(|t| !matches!(t.attr("id"), Some("seg" | "col"))),
        "a name was parsed as markup"
    );
    assert!(dom.contains(r#"<td>&lt;b id="seg"&gt;north &amp; "south"&lt;/b&gt;</td>"#));
    assert!(dom.contains(r#"<code>region &lt;i id="col"&gt;&amp;"&lt;/i&gt;</code>"#));

    // Measured: this page is a ~250 KB PNG at 1400x2300, a blank one ~15 KB.
    let png = screenshot(dir.path(), &url, (1400, 2300), 60_000);
    if let Ok(keep) = std::env::var("KEEL_REPORT_KEEP") {
        std::fs::copy(&page, Path::new(&keep).join("performance.html")).unwrap();
        std::fs::write(Path::new(&keep).join("performance.png"), &png).unwrap();
    }
    eprintln!(
        "performance html in chromium: {:.1?} ({} byte screenshot)",
        started.elapsed(),
        png.len()
    );
}

/// Regression before labels: with `--feature-column`s and a labelled
/// reference, DLE estimates each chunk's MAE, RMSE and MAPE. On keel-algos'
/// DLE golden set (`algos/tests/golden/dle.json`, where the error grows with
/// `x3`), the estimates are those NannyML gives within 5 % (keel-algos'
/// `dle` test bounds the same), and the noisier chunks alert.
#[test]
fn regression_estimates_from_features_before_labels() {
    let path = crate::common::workspace().join("algos/tests/golden/dle.json");
    let g: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = |which: &str, truth: bool| {
        let d = &g[which];
        let n = d["pred"].as_array().unwrap().len();
        // Unknown truths are empty cells: the analysis is not labelled yet.
        let mut text = String::from("id,x1,x2,x3,pred,y\n");
        for i in 0..n {
            let cell = |c: &str| d[c][i].as_f64().unwrap().to_string();
            text += &format!(
                "{which}{i},{},{},{},{}",
                cell("x1"),
                cell("x2"),
                cell("x3"),
                cell("pred")
            );
            text += &if truth {
                format!(",{}\n", cell("y"))
            } else {
                ",\n".into()
            };
        }
        write(dir.path(), &format!("{which}.csv"), &text)
    };
    let (reference, analysis) = (csv("reference", true), csv("analysis", false));
    let mut args = vec![
        analysis.as_str(),
        "--reference",
        &reference,
        "--task",
        "regression",
    ];
    args.extend([
        "--id-column",
        "id",
        "--label-column",
        "y",
        "--prediction-column",
        "pred",
    ]);
    args.extend(["--chunk-size", "500"]);
    for x in ["x1", "x2", "x3"] {
        args.extend(["--feature-column", x]);
    }
    let j = report(&args);
    let chunks = j["chunks"].as_array().unwrap();
    let golden = g["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), golden.len());
    for (c, want) in chunks.iter().zip(golden) {
        for m in ["mae", "rmse", "mape"] {
            let got = c["estimated"][m].as_f64().unwrap_or_else(|| panic!("{c}"));
            let nanny = want[m]["value"].as_f64().unwrap();
            assert!(
                ((got - nanny) / nanny).abs() <= 0.05,
                "{m}: keel {got}, nannyml {nanny}"
            );
        }
    }
    let alerts = |i: usize| chunks[i]["alerts"].as_array().unwrap().clone();
    assert!(alerts(3).iter().any(|a| a == "mae"), "{}", chunks[3]);
    // Without features there is nothing to estimate from.
    let j = report(&args[..args.len() - 6]);
    assert!(
        j["chunks"][0]["estimated"]
            .as_object()
            .is_none_or(|e| e.is_empty()),
        "{}",
        j["chunks"][0]
    );
}
