//! `keel new` and `keel build` in every language: each template of each kind
//! builds into a component that `keel plugin inspect` accepts, and the three
//! run together in a pipeline with `keel run`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use common::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Creates, builds and inspects one project per kind, then runs them as a
/// pipeline: the transform triples `x`, the validator flags the null `y`,
/// the monitor reports `y`'s null share above 0.1.
fn new_build_run(lang: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut built = Vec::new();
    for kind in ["transform", "validator", "monitor"] {
        let name = format!("my-{lang}-{kind}");
        let project = dir.path().join(&name);
        let o = keel(&[
            "new",
            "--lang",
            lang,
            "--kind",
            kind,
            project.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{lang} {kind}: {}", stderr(&o));
        assert!(project.join("keel.toml").is_file());
        let o = keel_with(
            &["build", project.to_str().unwrap()],
            &[(
                "CARGO_TARGET_DIR",
                workspace()
                    .join("target")
                    .join("keel-new-rust")
                    .to_str()
                    .unwrap(),
            )],
        );
        assert!(o.status.success(), "{lang} {kind}: {}", stderr(&o));
        let wasm = project.join("target").join(format!("{name}.wasm"));
        assert!(
            stdout(&o).contains(&wasm.display().to_string()),
            "{}",
            stdout(&o)
        );
        let o = keel(&["plugin", "inspect", "--json", wasm.to_str().unwrap()]);
        assert!(o.status.success(), "{lang} {kind}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["name"], name.as_str());
        assert_eq!(v["kind"], kind);
        built.push(wasm);
    }
    let data = dir.path().join("data.csv");
    std::fs::write(&data, "x,y\n1,a\n2,\n3,c\n").unwrap();
    let spec = dir.path().join("pipeline.toml");
    std::fs::write(
        &spec,
        format!(
            r#"name = "templates"
version = "0.1.0"
reference = "data.csv"

[[validators]]
name = "nulls"
plugin = "{v}"
at = "input"
policy = "warn"

[[stages]]
name = "triple"
plugin = "{t}"
[stages.config]
column = "x"
factor = 3.0

[[monitors]]
name = "null-share"
plugin = "{m}"
at = "input"
"#,
            t = built[0].display(),
            v = built[1].display(),
            m = built[2].display()
        ),
    )
    .unwrap();
    let out = dir.path().join("out.csv");
    let o = keel(&[
        "run",
        spec.to_str().unwrap(),
        "--input",
        data.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--no-audit",
    ]);
    assert!(o.status.success(), "{lang}: {}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let xs: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(xs, vec![3.0, 6.0, 9.0], "{lang}: {text}");
    let log = stderr(&o);
    assert!(log.contains("not-null"), "{lang}: {log}");
    assert!(
        log.contains("1 of 2 columns above 0.1 nulls"),
        "{lang}: {log}"
    );
}

#[test]
fn rust_templates_build_and_run() {
    new_build_run("rust");
}

#[test]
fn python_templates_build_and_run() {
    new_build_run("python");
}

#[test]
fn js_templates_build_and_run() {
    new_build_run("js");
}

#[test]
fn c_templates_build_and_run() {
    new_build_run("c");
}

#[test]
fn bad_projects_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = keel(&[
        "new",
        "--lang",
        "cobol",
        "--kind",
        "transform",
        dir.path().join("x").to_str().unwrap(),
    ]);
    fails_with(&o, 2, "unknown language `cobol`");
    let o = keel(&[
        "new",
        "--lang",
        "python",
        "--kind",
        "transform",
        dir.path().join("Bad_Name").to_str().unwrap(),
    ]);
    fails_with(&o, 2, "lowercase");
    let o = keel(&["build", dir.path().to_str().unwrap()]);
    fails_with(&o, 1, "keel.toml");
    let p = dir.path().join("broken");
    std::fs::create_dir(&p).unwrap();
    std::fs::write(
        p.join("keel.toml"),
        "name = \"broken\"\nlang = \"python\"\nkind = \"transform\"\n",
    )
    .unwrap();
    let o = keel(&["build", p.to_str().unwrap()]);
    fails_with(&o, 1, "plugin.py");
    std::fs::write(p.join("plugin.py"), "import keel\nundefined_name()\n").unwrap();
    let o = keel(&["build", p.to_str().unwrap()]);
    fails_with(&o, 1, "componentize-py failed");
    assert!(
        stderr(&o).contains("plugin.py") && stderr(&o).contains("NameError"),
        "{}",
        stderr(&o)
    );
    std::fs::write(
        p.join("keel.toml"),
        "name = \"broken\"\nlang = \"python\"\nkind = \"sorter\"\n",
    )
    .unwrap();
    let o = keel(&["build", p.to_str().unwrap()]);
    fails_with(&o, 1, "unknown variant `sorter`");
}
