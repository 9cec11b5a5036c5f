//! The drift report as a real browser sees it: headless Chromium loads the
//! page from a file, and the test reads back the DOM it built and a
//! screenshot. Chromium must be installed (`cargo xtask test` and `.ci/run`
//! install it); without it this test fails, it is never skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keel_report::{DriftReport, bar_count, render_drift_html};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

#[path = "support/chromium.rs"]
mod support;
use std::collections::HashMap;
use support::{Tag, chromium, screenshot, start_tags};

const EVIL: &str = r#"<b id="inj">bill & "depth"</b>'"#;

fn report() -> Value {
    json!({
        "reference": {"source": "reference <2007-08>.csv", "rows": 1000},
        "current": {"source": "current.csv", "rows": 800},
        "drift_share": 0.5,
        "share_drifted": 0.6667,
        "dataset_drift": true,
        "columns": [
            {"column": "age", "kind": "numeric", "method": "ks", "statistic": 0.12, "p_value": 0.03,
             "threshold": 0.05, "drift": true,
             "reference_missing_share": 0.0, "current_missing_share": 0.0125,
             "histogram": {"kind": "numeric", "edges": [0.0, 10.0, 20.0, 30.0, 40.0, 50.0],
                           "reference": [10, 300, 400, 200, 85], "current": [5, 150, 300, 200, 120],
                           "reference_below": 5, "reference_above": 0, "current_below": 0, "current_above": 15}},
            {"column": "island", "kind": "categorical", "method": "jensenshannon", "statistic": 0.21, "p_value": null,
             "threshold": 0.1, "drift": true, "reference_missing_share": 0.0, "current_missing_share": 0.0,
             "histogram": {"kind": "categorical", "categories": ["Biscoe", "Dream", "Torgersen", "an island with a very long name"],
                           "reference": [100, 80, 44, 6], "current": [60, 10, 5, 25]}},
            {"column": EVIL, "kind": "numeric", "method": "psi", "statistic": 0.05, "p_value": null,
             "threshold": 0.2, "drift": false, "reference_missing_share": 0.01, "current_missing_share": 0.02,
             "histogram": {"kind": "numeric", "edges": [13.0, 15.0, 17.0, 19.0, 21.0],
                           "reference": [20, 40, 30, 10], "current": [18, 42, 28, 12]}},
            {"column": "sex", "kind": "categorical", "method": "chisquare", "statistic": 1.7, "p_value": 0.19,
             "threshold": 0.05, "drift": false, "reference_missing_share": 0.03, "current_missing_share": 0.04}
        ]
    })
}

#[test]
fn chromium_renders_the_report_offline_with_every_chart() {
    let started = Instant::now();
    let json = report();
    let parsed = DriftReport::from_value(&json).unwrap();
    let html = render_drift_html(&json).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());

    let dom = String::from_utf8(chromium(dir.path(), "dom", &["--dump-dom".into()], &url)).unwrap();
    let tags = start_tags(&dom);

    // One chart per column with a histogram, in the page's order, each with
    // one reference and one current bar per bin (out-of-range ones included).
    let expected: HashMap<&str, usize> = parsed
        .columns
        .iter()
        .filter_map(|c| Some((c.column.as_str(), bar_count(c.histogram.as_ref()?))))
        .collect();
    assert_eq!(expected.len(), 3);
    assert_eq!(expected["age"], 7, "5 bins plus < min and > max");
    let svg_at: Vec<usize> = tags
        .iter()
        .enumerate()
        .filter(|(_, t)| t.name == "svg" && t.has_class(&["keel-hist"]))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(svg_at.len(), expected.len(), "one chart per histogram");
    for (k, &i) in svg_at.iter().enumerate() {
        let svg = &tags[i];
        let column = svg.attrs.get("data-column").unwrap();
        let bars = expected
            .get(column.as_str())
            .unwrap_or_else(|| panic!("chart for unexpected column {column:?}"));
        assert_eq!(svg.attrs.get("role").map(String::as_str), Some("img"));
        assert!(svg.attrs["aria-label"].contains(column.as_str()));
        let until = svg_at.get(k + 1).copied().unwrap_or(tags.len());
        let inside = &tags[i + 1..until];
        let refs = inside
            .iter()
            .filter(|t| t.name == "rect" && t.has_class(&["bar", "ref"]))
            .count();
        let curs = inside
            .iter()
            .filter(|t| t.name == "rect" && t.has_class(&["bar", "cur"]))
            .count();
        assert_eq!((refs, curs), (*bars, *bars), "bars of {column:?}");
    }
    // The odd name is text and attribute values, never markup.
    assert!(
        tags.iter()
            .all(|t| t.attrs.get("id").map(String::as_str) != Some("inj")),
        "the column name was parsed as markup"
    );
    let escaped_text = r#"&lt;b id="inj"&gt;bill &amp; "depth"&lt;/b&gt;'"#;
    assert!(
        dom.matches(escaped_text).count() >= 2,
        "column name as text in the table and its card"
    );
    assert!(svg_at.iter().any(|&i| tags[i].attrs["data-column"] == EVIL));
    assert!(dom.contains("reference &lt;2007-08&gt;.csv"));
    // The verdict, and the numbers it rests on.
    let verdict = tags
        .iter()
        .find(|t| t.attrs.get("id").map(String::as_str) == Some("dataset-verdict"))
        .expect("verdict element");
    assert!(dom[verdict.end..].starts_with("Dataset drift detected</div>"));
    assert!(dom.contains("2 of 4 columns drifted: share 66.7% ≥ threshold 50.0%"));
    // The column without a histogram is in the table and has a card, no chart.
    assert!(dom.contains(">sex</a>"));
    assert!(dom.contains("no histogram in the report for this column"));
    // Drifted columns lead the table.
    let rows: Vec<&Tag> = tags
        .iter()
        .filter(|t| t.name == "tr" && t.attrs.contains_key("data-drift"))
        .collect();
    let flags: Vec<&str> = rows
        .iter()
        .map(|t| t.attrs["data-drift"].as_str())
        .collect();
    assert_eq!(flags, ["true", "true", "false", "false"]);

    // A screenshot: a PNG of the requested size with real content in it.
    // Measured: a blank 1200x2000 page is an 11 KB PNG, this report 140 KB.
    let png = screenshot(dir.path(), &url, (1200, 2000), 40_000);
    let shot = dir.path().join("screenshot.png");
    if let Ok(keep) = std::env::var("KEEL_REPORT_KEEP") {
        std::fs::copy(&page, Path::new(&keep).join("report.html")).unwrap();
        std::fs::copy(&shot, Path::new(&keep).join("report.png")).unwrap();
    }
    eprintln!(
        "chromium test: {:.1?} ({} bytes of HTML, {} byte screenshot)",
        started.elapsed(),
        html.len(),
        png.len()
    );
}
