//! `keel new`: a plugin project from a template (Rust, Python, JavaScript or
//! C), ready for `keel build`.

use crate::exit::{self, Failure, fail};
use anyhow::Result;
use keel_build::{Kind, Lang};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct NewArgs {
    /// Language: rust, python, js or c.
    #[arg(long)]
    pub lang: Lang,
    /// Kind: transform, validator or monitor.
    #[arg(long)]
    pub kind: Kind,
    /// Directory to create; its name is the plugin's name (lowercase, `-`).
    pub name: PathBuf,
}

impl NewArgs {
    /// Writes the project; every error is a usage error.
    pub fn run(self) -> Result<(), Failure> {
        new(&self).map_err(|e| fail(exit::USAGE, e))
    }
}

fn new(args: &NewArgs) -> Result<()> {
    let files = keel_build::templates::new_project(&args.name, args.lang, args.kind)?;
    errln!(
        "created {} ({} {}):",
        args.name.display(),
        args.lang.as_str(),
        args.kind.as_str()
    );
    for f in files {
        errln!("  {}", f.display());
    }
    errln!("build it with `keel build {}`", args.name.display());
    Ok(())
}
