//! `cargo xtask layout`: the house rules a reviewer should not have to check
//! by eye. Fails when a crate under host/, algos/, sdk/rust or xtask has an
//! import cycle among its top-level modules, or a non-test function in
//! one of them is longer than the limit; prints each cycle and each function.

mod cycles;
mod longfn;
mod source;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// `cargo xtask layout [--max-fn-lines N]`.
#[derive(Debug, clap::Args)]
pub struct LayoutArgs {
    /// The longest a non-test function may be, in lines.
    #[arg(long, default_value_t = 120)]
    pub max_fn_lines: usize,
}

pub fn layout(root: &Path, args: &LayoutArgs) -> Result<()> {
    let mut crates = crate_dirs(root, "host")?;
    crates.extend(["algos", "sdk/rust", "xtask"].map(|d| root.join(d)));
    let mut cycle_count = 0;
    for dir in &crates {
        let files = rust_files(&dir.join("src"))?;
        let g = cycles::graph(&files);
        let found = cycles::cycles(&g);
        if found.is_empty() {
            continue;
        }
        let name = rel(root, dir);
        for comp in found {
            cycle_count += 1;
            println!(
                "layout: import cycle in {name}/src among {} top-level modules: {}",
                comp.len(),
                comp.join(", ")
            );
            let path = cycles::shortest_cycle(&g, &comp, &comp[0]);
            let steps: Vec<String> = path
                .windows(2)
                .map(|w| {
                    let (file, line) = &g[&w[0]][&w[1]];
                    format!("{} -> {} (src/{file}:{line})", w[0], w[1])
                })
                .collect();
            println!("  cycle: {}", steps.join(", "));
            for m in &comp {
                let inside: Vec<&str> = g[m]
                    .keys()
                    .filter(|t| comp.contains(t))
                    .map(String::as_str)
                    .collect();
                println!("  {m} imports {}", inside.join(", "));
            }
        }
    }
    let mut long = Vec::new();
    for dir in &crates {
        for sub in ["src", "examples"] {
            for (file, text) in rust_files(&dir.join(sub))? {
                for f in longfn::long_functions(&text, args.max_fn_lines) {
                    long.push((format!("{}/{sub}/{file}", rel(root, dir)), f));
                }
            }
        }
    }
    for (file, f) in &long {
        println!(
            "layout: {file}:{}: fn {} is {} lines (limit {})",
            f.line, f.name, f.lines, args.max_fn_lines
        );
    }
    if cycle_count > 0 || !long.is_empty() {
        bail!(
            "layout check failed: {cycle_count} import cycle(s), {} function(s) over {} lines",
            long.len(),
            args.max_fn_lines
        );
    }
    println!(
        "layout: no import cycle and no non-test function over {1} lines in {0} crates",
        crates.len(),
        args.max_fn_lines
    );
    Ok(())
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// The crates directly under `dir` (folders with a Cargo.toml), sorted.
fn crate_dirs(root: &Path, dir: &str) -> Result<Vec<PathBuf>> {
    let base = root.join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&base)
        .with_context(|| format!("reading {}", base.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    out.sort();
    Ok(out)
}

/// Every `.rs` file under `dir` (none if it does not exist): its path
/// relative to `dir`, with `/`, and its text; sorted by path.
fn rust_files(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e?.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {}", p.display()))?;
                let rel: Vec<String> = p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push((rel.join("/"), text));
            }
        }
    }
    out.sort();
    Ok(out)
}
