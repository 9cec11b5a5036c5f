//! `keel build`: a plugin project in Rust, Python, JavaScript or C into a
//! component, checked by loading it the way `keel plugin inspect` does.

use super::Globals;
use crate::exit::Failure;
use anyhow::{Context, Result};
use keel_build::{Project, Toolchains};
use keel_runtime::{Plugin, Runtime};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct BuildArgs {
    /// The project directory (with keel.toml) [default: .].
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where to write the component [default: DIR/target/NAME.wasm].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

impl BuildArgs {
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        let rt = globals.runtime()?;
        build(&self, &rt)?;
        Ok(())
    }
}

/// Builds the project and loads the result; returns the component's path.
fn build(args: &BuildArgs, rt: &Runtime) -> Result<PathBuf> {
    let project = Project::open(&args.dir)?;
    let output = args.output.clone().unwrap_or_else(|| {
        args.dir
            .join("target")
            .join(format!("{}.wasm", project.name))
    });
    let built = keel_build::build(&project, &Toolchains::from_env(), &output)
        .with_context(|| format!("building {}", args.dir.display()))?;
    let plugin = Plugin::load_file(rt, &output)
        .with_context(|| format!("the built component {} does not load", output.display()))?;
    check(&project, &plugin, &output)?;
    outln!(
        "{} ({} {}, {} {}) {} KiB in {:.1} s",
        output.display(),
        plugin.name(),
        plugin.version(),
        project.lang.as_str(),
        plugin.kind(),
        built.bytes / 1024,
        built.elapsed.as_secs_f64()
    );
    Ok(output)
}

/// The component must be what keel.toml says it is.
fn check(project: &Project, plugin: &Plugin, output: &Path) -> Result<()> {
    let kind = plugin.kind().to_string();
    if kind != project.kind.as_str() {
        anyhow::bail!(
            "{}: keel.toml says kind = \"{}\", but the component is a {kind}",
            output.display(),
            project.kind.as_str()
        );
    }
    if plugin.name() != project.name {
        tracing::warn!(
            "{}: the plugin describes itself as `{}`, keel.toml names it `{}`",
            output.display(),
            plugin.name(),
            project.name
        );
    }
    Ok(())
}
