//! `keel new`: a working project per language and kind, to start from. Every
//! template builds with `keel build` as written and does a small real job
//! (scale a column, flag nulls, watch null shares).

use crate::{BuildError, Kind, Lang, Result, io};
use std::path::{Path, PathBuf};

fn source(lang: Lang, kind: Kind) -> &'static str {
    match (lang, kind) {
        (Lang::Rust, Kind::Transform) => include_str!("../templates/rust/transform.rs"),
        (Lang::Rust, Kind::Validator) => include_str!("../templates/rust/validator.rs"),
        (Lang::Rust, Kind::Monitor) => include_str!("../templates/rust/monitor.rs"),
        (Lang::Python, Kind::Transform) => include_str!("../templates/python/transform.py"),
        (Lang::Python, Kind::Validator) => include_str!("../templates/python/validator.py"),
        (Lang::Python, Kind::Monitor) => include_str!("../templates/python/monitor.py"),
        (Lang::Js, Kind::Transform) => include_str!("../templates/js/transform.js"),
        (Lang::Js, Kind::Validator) => include_str!("../templates/js/validator.js"),
        (Lang::Js, Kind::Monitor) => include_str!("../templates/js/monitor.js"),
        (Lang::C, Kind::Transform) => include_str!("../templates/c/transform.c"),
        (Lang::C, Kind::Validator) => include_str!("../templates/c/validator.c"),
        (Lang::C, Kind::Monitor) => include_str!("../templates/c/monitor.c"),
    }
}

/// Where a Rust project finds `keel-sdk`: `KEEL_SDK_RUST`, else the SDK of
/// the source tree this binary was built from.
pub fn rust_sdk() -> PathBuf {
    std::env::var_os("KEEL_SDK_RUST")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/rust"))
}

/// Writes a new project `dir` (which must not exist or be empty) named
/// after its last component; returns the files written.
pub fn new_project(dir: &Path, lang: Lang, kind: Kind) -> Result<Vec<PathBuf>> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || name.starts_with('-')
    {
        return Err(BuildError::Project {
            path: dir.to_path_buf(),
            message: format!("a plugin name is lowercase letters, digits and `-`, not `{name}`"),
        });
    }
    if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(BuildError::Project {
            path: dir.to_path_buf(),
            message: "already exists and is not empty".into(),
        });
    }
    let fill = |t: &str| {
        t.replace("{{name}}", &name)
            .replace("{{sdk}}", &rust_sdk().display().to_string())
    };
    let mut files = vec![(
        PathBuf::from("keel.toml"),
        format!(
            "# Built by `keel build`; checked by `keel plugin inspect`.\nname = \"{name}\"\nlang = \"{}\"\nkind = \"{}\"\n",
            lang.as_str(),
            kind.as_str()
        ),
    )];
    let src = fill(source(lang, kind));
    match lang {
        Lang::Rust => {
            files.push((
                "Cargo.toml".into(),
                fill(include_str!("../templates/rust/Cargo.toml")),
            ));
            files.push(("src/lib.rs".into(), src));
        }
        Lang::Python => files.push(("plugin.py".into(), src)),
        Lang::Js => files.push(("plugin.js".into(), src)),
        Lang::C => files.push(("plugin.c".into(), src)),
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        let p = dir.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        std::fs::write(&p, text).map_err(io(&p))?;
        written.push(p);
    }
    Ok(written)
}
