//! `keel profile` end to end: the schema it prints for the penguins
//! reference, its use verbatim as the `data-quality` validator's config in a
//! pipeline run on clean and corrupted data, exact typing of large files read
//! in batches, and errors naming the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn plugin_dir() -> PathBuf {
    let d = std::env::var_os("KEEL_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target").join("plugins"));
    assert!(
        d.join("data-quality.wasm").is_file(),
        "{}/data-quality.wasm missing: run `cargo xtask build-guests`",
        d.display()
    );
    d
}

/// Runs `keel` with a store of its own, so parallel tests never share one.
fn keel(args: &[&str]) -> Output {
    let store = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .env("KEEL_STORE", store.path())
        .env("KEEL_PLUGIN_PATH", plugin_dir())
        .env(
            "KEEL_CACHE_DIR",
            workspace().join("target").join("keel-test-cache"),
        )
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn example(file: &str) -> String {
    workspace()
        .join("examples/penguins")
        .join(file)
        .display()
        .to_string()
}

fn profile(args: &[&str]) -> String {
    let mut all = vec!["profile"];
    all.extend_from_slice(args);
    let o = keel(&all);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

fn column<'a>(schema: &'a toml::Table, name: &str) -> &'a toml::Table {
    schema["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_table().unwrap())
        .find(|c| c["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn strings(v: &toml::Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn profile_prints_the_penguins_schema() {
    let text = profile(&[&example("reference.csv")]);
    assert!(
        text.starts_with("# Data-quality schema of "),
        "header comment: {text}"
    );
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("reference.csv (224 rows, 8 columns)"),
        "{text}"
    );
    let schema: toml::Table = toml::from_str(&text).unwrap();
    let names: Vec<_> = schema["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "species",
            "island",
            "bill_length_mm",
            "bill_depth_mm",
            "flipper_length_mm",
            "body_mass_g",
            "sex",
            "year"
        ]
    );
    let island = column(&schema, "island");
    assert_eq!(island["type"].as_str(), Some("string"));
    assert_eq!(strings(&island["domain"]), ["Biscoe", "Dream", "Torgersen"]);
    assert_eq!(island["min_domain_share"].as_float(), Some(1.0));
    // Never null in the reference, so no null is allowed.
    assert_eq!(island["max_null_rate"].as_float(), Some(0.0));
    let species = column(&schema, "species");
    assert_eq!(
        strings(&species["domain"]),
        ["Adelie", "Chinstrap", "Gentoo"]
    );
    let mass = column(&schema, "body_mass_g");
    assert_eq!(mass["type"].as_str(), Some("f64"));
    assert_eq!(mass["min"].as_float(), Some(2700.0));
    assert_eq!(mass["max"].as_float(), Some(6300.0));
    assert_eq!(mass["null_rate"].as_float(), Some(0.004464)); // 1 of 224
    assert_eq!(mass["max_null_rate"].as_float(), Some(0.0545));
    let bill = column(&schema, "bill_length_mm");
    assert_eq!(
        (bill["min"].as_float(), bill["max"].as_float()),
        (Some(33.1), Some(59.6))
    );
    let sex = column(&schema, "sex");
    assert_eq!(strings(&sex["domain"]), ["female", "male"]);
    assert_eq!(sex["null_rate"].as_float(), Some(0.035714)); // 8 of 224
    let year = column(&schema, "year");
    assert_eq!(year["type"].as_str(), Some("s64"));
    assert_eq!(
        (year["min"].as_float(), year["max"].as_float()),
        (Some(2007.0), Some(2008.0))
    );
    assert!(!year.contains_key("domain"));

    // Reproducible, and JSON says the same.
    assert_eq!(profile(&[&example("reference.csv")]), text);
    let json: serde_json::Value =
        serde_json::from_str(&profile(&[&example("reference.csv"), "--format", "json"])).unwrap();
    assert_eq!(json, serde_json::to_value(&schema).unwrap());

    // --max-domain drops the domain of a column with more values.
    let small: toml::Table =
        toml::from_str(&profile(&[&example("reference.csv"), "--max-domain", "2"])).unwrap();
    assert!(!column(&small, "species").contains_key("domain"));
    assert_eq!(
        strings(&column(&small, "sex")["domain"]),
        ["female", "male"]
    );
}

/// A spec using `data-quality` at the input; `config` is the profile (its
/// tables are moved under the validator's config), other keys of the
/// validator (`config_file = …`), or empty.
fn write_spec(dir: &Path, config: &str, policy: &str) -> PathBuf {
    let mut text = format!(
        r#"name = "quality"
version = "0.1.0"
reference = "{}"

[run]
batch_size = 64

[[validators]]
name = "quality"
plugin = "data-quality"
at = "input"
policy = "{policy}"
"#,
        example("reference.csv").replace('\\', "/")
    );
    if !config.is_empty() {
        // The profile verbatim, its tables moved under the validator's config.
        text.push_str(&config.replace("[[columns]]", "[[validators.config.columns]]"));
    }
    let path = dir.join(format!("quality-{policy}-{}.toml", config.len()));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the spec on `input`; returns the findings of `--summary-json` as
/// (rule, severity, count), sorted, and stderr.
fn run(spec: &Path, input: &str) -> (Vec<(String, String, u64)>, serde_json::Value, String) {
    let dir = spec.parent().unwrap();
    let summary = dir.join("summary.json");
    let o = keel(&[
        "run",
        spec.to_str().unwrap(),
        "--input",
        input,
        "--summary-json",
        summary.to_str().unwrap(),
        "--quiet",
        "--no-audit",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let mut findings: Vec<_> = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["validator"], "quality");
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect();
    findings.sort();
    (findings, s, stderr(&o))
}

fn finding(rule: &str, severity: &str, count: u64) -> (String, String, u64) {
    (rule.to_string(), severity.to_string(), count)
}

/// current.csv with row 1 (line 2) given a null island and a body mass ten
/// times any penguin's, and row 2 (line 3) an island never seen.
fn corrupted(dir: &Path) -> String {
    let text = std::fs::read_to_string(example("current.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (island, mass) = (at("island"), at("body_mass_g"));
    let mut edit = |line: usize, col: usize, value: &str| {
        let mut cells: Vec<String> = lines[line - 1].split(',').map(str::to_string).collect();
        cells[col] = value.to_string();
        lines[line - 1] = cells.join(",");
    };
    edit(2, island, "");
    edit(2, mass, "60000.0");
    edit(3, island, "Atlantis");
    let path = dir.join("corrupted.csv");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path.display().to_string()
}

#[test]
fn profile_is_the_data_quality_config() {
    let dir = tempfile::tempdir().unwrap();
    let schema = profile(&[&example("reference.csv")]);
    let spec = write_spec(dir.path(), &schema, "warn");

    // The 2009 season: every row is past the reference's last year (one
    // year past a span of one: a warning, not an error), nothing else. The
    // one missing measurement of the 11-row tail batch is 9% of it, above
    // the 5.45% allowed, but within chance of it: no null-rate finding.
    let (findings, s, _) = run(&spec, &example("current.csv"));
    assert_eq!(findings, [finding("out-of-range", "warning", 75)], "{s}");
    assert_eq!(s["rows_out"], 75);

    // The corrupted copy: each fault is found, at its line, with the
    // severity the module documents.
    let bad = corrupted(dir.path());
    let (findings, s, text) = run(&spec, &bad);
    assert_eq!(
        findings,
        [
            finding("domain-share", "warning", 1),
            finding("out-of-range", "error", 1),
            finding("out-of-range", "warning", 75),
            finding("unexpected-null", "error", 1),
            finding("unseen-category", "warning", 1),
        ],
        "{s}"
    );
    assert_eq!(s["rows_out"], 75, "policy warn keeps every row");
    for needle in [
        "line 2: `island` is null, and the reference has no null [unexpected-null error]",
        "line 2: `body_mass_g` is 60000, far above the maximum 6300 [out-of-range error]",
        "line 3: `island` is `Atlantis`, not in the domain `Biscoe`, `Dream`, `Torgersen` [unseen-category warning]",
    ] {
        assert!(text.contains(needle), "{needle}\n{text}");
    }

    // Under `reject`, the row with errors goes; batch-level warnings and the
    // rows with warnings only stay.
    let strict = write_spec(dir.path(), &schema, "reject");
    let (_, s, text) = run(&strict, &bad);
    assert_eq!(
        (s["rows_out"].as_u64(), s["rows_rejected"].as_u64()),
        (Some(74), Some(1)),
        "{text}"
    );

    // A profile saved as a file and named by `config_file`; with
    // --max-domain 2 island (3 values) has no domain, so only the null and
    // the body mass remain.
    let narrow = profile(&[&example("reference.csv"), "--max-domain", "2"]);
    std::fs::write(dir.path().join("schema.toml"), &narrow).unwrap();
    let from_file = write_spec(dir.path(), "config_file = \"schema.toml\"\n", "warn");
    let (got, s, _) = run(&from_file, &bad);
    assert_eq!(
        got,
        [
            finding("out-of-range", "error", 1),
            finding("out-of-range", "warning", 75),
            finding("unexpected-null", "error", 1),
        ],
        "{s}"
    );

    // With no config the validator infers the same schema from the
    // pipeline's reference, so it finds the same.
    let inferred = write_spec(dir.path(), "", "warn");
    let (same, _, _) = run(&inferred, &bad);
    assert_eq!(same, findings);
}

#[test]
fn large_files_are_typed_as_if_read_whole() {
    // 9000 rows, past the profiler's 8192-row batches: `n` is integral until
    // its last row, `late` is null until then, `flag` is bool throughout.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("n,late,flag,tag\n");
    for i in 0..9000 {
        let n = if i == 8999 {
            "1.5".to_string()
        } else {
            i.to_string()
        };
        let late = if i == 8999 { "7" } else { "" };
        let flag = if i % 2 == 0 { "true" } else { "False" };
        text.push_str(&format!("{n},{late},{flag},t{}\n", i % 3));
    }
    let data = dir.path().join("big.csv");
    std::fs::write(&data, &text).unwrap();
    let schema_text = profile(&[data.to_str().unwrap()]);
    let schema: toml::Table = toml::from_str(&schema_text).unwrap();
    let n = column(&schema, "n");
    assert_eq!(n["type"].as_str(), Some("f64"));
    assert_eq!(
        (n["min"].as_float(), n["max"].as_float()),
        (Some(0.0), Some(8998.0))
    );
    let late = column(&schema, "late");
    assert_eq!(late["type"].as_str(), Some("s64"));
    assert_eq!(late["null_rate"].as_float(), Some(0.999889));
    assert_eq!(late["max_null_rate"].as_float(), Some(1.0));
    let flag = column(&schema, "flag");
    assert_eq!(flag["type"].as_str(), Some("bool"));
    assert_eq!(strings(&flag["domain"]), ["false", "true"]);
    assert_eq!(
        strings(&column(&schema, "tag")["domain"]),
        ["t0", "t1", "t2"]
    );

    // The file as a pipeline's reference passes its own profile: the types
    // `keel run` gives it (read whole) are the profile's.
    let spec = dir.path().join("p.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"big\"\nversion = \"0.1.0\"\nreference = \"big.csv\"\n[[validators]]\nname = \"quality\"\nplugin = \"data-quality\"\n{}",
            schema_text.replace("[[columns]]", "[[validators.config.columns]]")
        ),
    )
    .unwrap();
    let (findings, s, _) = run(&spec, data.to_str().unwrap());
    assert!(findings.is_empty(), "{s}");
}

#[test]
fn json_lines_are_profiled_with_widened_types() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.jsonl");
    std::fs::write(
        &data,
        "{\"x\": 1, \"s\": \"a\"}\n{\"x\": 2.5, \"s\": null}\n\n{\"x\": -3, \"s\": \"b\"}\n",
    )
    .unwrap();
    let schema: toml::Table = toml::from_str(&profile(&[data.to_str().unwrap()])).unwrap();
    let x = column(&schema, "x");
    assert_eq!(x["type"].as_str(), Some("f64"));
    assert_eq!(
        (x["min"].as_float(), x["max"].as_float()),
        (Some(-3.0), Some(2.5))
    );
    let s = column(&schema, "s");
    assert_eq!(strings(&s["domain"]), ["a", "b"]);
    assert_eq!(s["null_rate"].as_float(), Some(0.333333));
}

#[test]
fn bad_input_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let o = keel(&["profile", "/no/such/file.csv"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("/no/such/file.csv"), "{}", stderr(&o));

    let txt = dir.path().join("data.txt");
    std::fs::write(&txt, "a\n1\n").unwrap();
    let o = keel(&["profile", txt.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("unknown format"), "{}", stderr(&o));

    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "a,b\n").unwrap();
    let o = keel(&["profile", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("empty.csv: no data rows to profile"),
        "{}",
        stderr(&o)
    );

    let ragged = dir.path().join("ragged.csv");
    std::fs::write(&ragged, "a,b\n1,2\n3\n").unwrap();
    let o = keel(&["profile", ragged.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("ragged.csv:3"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "nothing printed on failure");
}
