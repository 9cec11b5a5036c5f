//! The penguins example end to end, natively: the configs of
//! `examples/penguins/pipeline.toml`, fitted on `reference.csv`, must give
//! sklearn's probabilities for `current.csv` (to 1e-9), the drift and the
//! findings that the example's README documents.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keel_algos::drift::{DriftConfig, DriftMonitor};
use keel_algos::encoders::{OneHotConfig, OneHotEncoder};
use keel_algos::imputer::{Fill, Imputer, ImputerConfig};
use keel_algos::linear::{LogisticConfig, LogisticRegression};
use keel_algos::rules::{NOT_NULL, RuleValidator, RulesConfig, Severity};
use keel_algos::scaler::{ScalerConfig, StandardScaler};
use keel_data::{Batch, ColumnData};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/penguins")
}

fn read(name: &str) -> Batch {
    keel_data::io::read_all(&dir().join(name), None).unwrap()
}

fn spec() -> toml::Table {
    std::fs::read_to_string(dir().join("pipeline.toml"))
        .unwrap()
        .parse()
        .unwrap()
}

/// The `config` of the entry of `section` using `plugin`, passed through
/// JSON text as the host hands it to a plugin.
fn config<T: DeserializeOwned>(spec: &toml::Table, section: &str, name: &str) -> T {
    let entry = spec[section]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {section} entry `{name}`"));
    let json = serde_json::to_string(&entry["config"]).unwrap();
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("config of `{name}`: {e}"))
}

struct Pipeline {
    imputer: Imputer,
    encoder: OneHotEncoder,
    scaler: StandardScaler,
    model: LogisticRegression,
}

impl Pipeline {
    /// Fits each stage on the reference as transformed by the stages before
    /// it, as the host does.
    fn fit(spec: &toml::Table, reference: Batch) -> Pipeline {
        let imputer = Imputer::new(
            config::<ImputerConfig>(spec, "stages", "impute"),
            Some(&reference),
        )
        .unwrap();
        let reference = imputer.apply(reference).unwrap();
        let encoder = OneHotEncoder::new(
            config::<OneHotConfig>(spec, "stages", "encode"),
            Some(&reference),
        )
        .unwrap();
        let reference = encoder.apply(reference).unwrap();
        let scaler = StandardScaler::new(
            config::<ScalerConfig>(spec, "stages", "scale"),
            Some(&reference),
        )
        .unwrap();
        let model =
            LogisticRegression::new(config::<LogisticConfig>(spec, "stages", "model")).unwrap();
        Pipeline {
            imputer,
            encoder,
            scaler,
            model,
        }
    }

    fn run(&self, batch: Batch) -> Batch {
        let batch = self.imputer.apply(batch).unwrap();
        let batch = self.encoder.apply(batch).unwrap();
        let batch = self.scaler.apply(batch).unwrap();
        self.model.apply(batch).unwrap()
    }
}

fn floats(batch: &Batch, column: &str) -> Vec<f64> {
    let col = batch.require(column).unwrap();
    assert_eq!(col.null_count(), 0, "{column} has nulls");
    col.numeric().unwrap().into_owned()
}

#[test]
fn reproduces_sklearn_probabilities() {
    let spec = spec();
    let pipeline = Pipeline::fit(&spec, read("reference.csv"));
    let medians: Vec<_> = pipeline
        .imputer
        .fills()
        .iter()
        .map(|(_, f)| f.clone())
        .collect();
    assert_eq!(medians, [44.0, 17.5, 196.0, 4050.0].map(Fill::Number));

    let expected = read("expected_predictions.csv");
    assert_eq!(
        expected.require("row").unwrap().data,
        ColumnData::S64((0..75).collect())
    );
    let expected = floats(&expected, "prob_gentoo");

    let out = pipeline.run(read("current.csv"));
    let got = floats(&out, "prob_gentoo");
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert!((g - e).abs() <= 1e-9, "row {i}: {g} vs sklearn {e}");
    }
    let ColumnData::Bool(labels) = &out.require("is_gentoo").unwrap().data else {
        panic!("is_gentoo is not bool")
    };
    assert!(labels.iter().zip(&got).all(|(l, p)| *l == (*p >= 0.5)));

    // The host runs batches of 64 rows: same answer, batch by batch.
    let current = read("current.csv");
    let mut batched = Vec::new();
    for start in (0..current.rows()).step_by(64) {
        batched.extend(floats(
            &pipeline.run(current.slice(start, start + 64)),
            "prob_gentoo",
        ));
    }
    assert_eq!(batched, got);
}

#[test]
fn input_drift_matches_prepare_py() {
    let spec = spec();
    let cfg: DriftConfig = config(&spec, "monitors", "input-drift");
    let mut monitor = DriftMonitor::new(cfg, &read("reference.csv")).unwrap();
    let current = read("current.csv");
    for start in (0..current.rows()).step_by(64) {
        monitor.observe(&current.slice(start, start + 64)).unwrap();
    }
    let report = monitor.report();
    // scipy 1.17: ks_2samp (exact) on the measurements, chi2_contingency on
    // island; NaNs dropped. Z for sex: pooled two-proportion test of `female`.
    let expected = [
        (
            "bill_length_mm",
            "ks",
            0.20397527572415464,
            0.016990173505211863,
        ),
        (
            "bill_depth_mm",
            "ks",
            0.25893831050781724,
            0.0008460044678138958,
        ),
        (
            "flipper_length_mm",
            "ks",
            0.2669373409283723,
            0.000582175421921807,
        ),
        (
            "body_mass_g",
            "ks",
            0.30317537268209915,
            5.328933425670996e-05,
        ),
        (
            "island",
            "chisquare",
            23.12470068027211,
            9.517766575143048e-06,
        ),
    ];
    for (column, name, value, p) in expected {
        let m = report
            .metrics
            .iter()
            .find(|m| m.column.as_deref() == Some(column) && m.name == name)
            .unwrap_or_else(|| panic!("{column}: no {name} metric"));
        assert!(
            (m.value - value).abs() < 1e-9,
            "{column}: {} vs {value}",
            m.value
        );
        let got = m.p_value.unwrap();
        assert!((got - p).abs() < 1e-6, "{column}: p {got} vs {p}");
        assert!(m.alert, "{column}");
    }
    let sex = report
        .metrics
        .iter()
        .find(|m| m.column.as_deref() == Some("sex"))
        .unwrap();
    assert_eq!(sex.name, "z");
    assert!(!sex.alert, "sex ratio is stable: p = {:?}", sex.p_value);
    assert_eq!(report.rows, 75);
    assert!(report.alert);
    assert_eq!(
        report.summary,
        "5 of 6 columns drifted (share 0.83 >= 0.5): bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, island"
    );
    // row 64 has no measurements and no sex; rows 49 and 61 no sex
    let missing = |c: &str| {
        report
            .metrics
            .iter()
            .find(|m| m.column.as_deref() == Some(c) && m.name == "missing-share")
            .unwrap()
            .value
    };
    assert_eq!(
        (missing("body_mass_g"), missing("sex")),
        (1.0 / 75.0, 3.0 / 75.0)
    );
}

#[test]
fn prediction_drift_matches_readme() {
    let spec = spec();
    let pipeline = Pipeline::fit(&spec, read("reference.csv"));
    let reference = pipeline.run(read("reference.csv"));
    let current = pipeline.run(read("current.csv"));
    let cfg: DriftConfig = config(&spec, "monitors", "prediction-drift");
    let mut monitor = DriftMonitor::new(cfg, &reference).unwrap();
    monitor.observe(&current).unwrap();
    let report = monitor.report();
    assert_eq!(report.metrics[0].name, "psi");
    assert!(
        (report.metrics[0].value - 1.064).abs() < 5e-4,
        "{}",
        report.metrics[0].value
    );
    assert!(report.alert);
}

#[test]
fn validator_findings_match_readme() {
    let spec = spec();
    let validator =
        RuleValidator::new(config::<RulesConfig>(&spec, "validators", "input-rules")).unwrap();
    let findings = validator.validate(&read("current.csv"));
    let got: Vec<_> = findings
        .iter()
        .map(|f| (f.row, f.column.as_deref().unwrap()))
        .collect();
    // Within a row, findings follow config order; the `toml` crate (without
    // its `preserve_order` feature) hands tables over sorted by key.
    assert_eq!(
        got,
        [
            (Some(49), "sex"),
            (Some(61), "sex"),
            (Some(64), "bill_depth_mm"),
            (Some(64), "bill_length_mm"),
            (Some(64), "body_mass_g"),
            (Some(64), "flipper_length_mm"),
            (Some(64), "sex"),
        ]
    );
    assert_eq!(findings[0].message, "`sex` is null");
    assert!(
        findings
            .iter()
            .all(|f| f.rule == NOT_NULL && f.severity == Severity::Warning)
    );
    assert_eq!(validator.validate(&read("reference.csv")).len(), 12);
}
