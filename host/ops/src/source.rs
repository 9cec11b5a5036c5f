//! Where a pipeline comes from: a spec file, or a version deployed in the
//! store written out to a scratch directory. The one sequence behind
//! `keel run`, `keel compile` and `keel replay`: spec file or deployed
//! version → materialise → trust check → canonicalise.

use crate::{Canonical, Resolver, canonicalize, materialize, trust};
use anyhow::Context;
use keel_runtime::pipeline::PluginDirs;
use keel_store::Store;
use std::path::{Path, PathBuf};

/// What names the pipeline.
pub enum Spec {
    /// `NAME[@VERSION]` deployed in the store.
    Deployed(String),
    /// A command-line argument: a spec file if one exists at that path,
    /// else a deployed version's reference.
    Arg(PathBuf),
}

/// Whether a spec file's plugins are checked against the store's trust policy.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Before any plugin is instantiated (`keel run`).
    Enforce,
    /// Nothing runs here: a bundle is checked where it runs (`keel compile`).
    Skip,
}

/// Why a pipeline could not be opened, in the classes the CLI's exit codes tell apart.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The reference is not a file, and there is no store to look it up in.
    #[error("{0}: no such file, and no store to look it up in")]
    NoStore(String),
    /// Not a spec file nor a deployed version, a spec that does not
    /// canonicalise, or a plugin the trust policy refuses.
    #[error("{0:#}")]
    Usage(anyhow::Error),
    /// Reading the spec or the store failed.
    #[error("{0:#}")]
    Other(anyhow::Error),
}

/// An opened pipeline: the spec to load, how to resolve its plugins, and
/// its canonical text where it is already known.
pub struct Source<'a> {
    path: PathBuf,
    resolver: Resolver<'a>,
    /// A deployed version's canonical text, as stored.
    deployed: Option<String>,
    /// A spec file's canonical text, computed for the trust check.
    checked: Option<String>,
}

/// Opens `spec`: a spec file as it is, a deployed version written into
/// `scratch` with its reference files. With [`Trust::Enforce`] and a store
/// that trusts a key, a spec file's plugins (a bundle's too) must be signed
/// by a trusted key; a deployed version passed the policy when it was deployed.
pub fn open<'a>(
    spec: Spec,
    store: Option<&'a Store>,
    dirs: PluginDirs,
    scratch: &Path,
    trust: Trust,
) -> Result<Source<'a>, SourceError> {
    let resolver = Resolver { store, dirs };
    let (path, deployed) = match spec {
        Spec::Arg(path) if path.is_file() => (path, None),
        Spec::Deployed(reference) => written_out(store, &reference, scratch)?,
        Spec::Arg(path) => {
            let reference = path.display().to_string();
            // A name with a path's shape (`dir/p.toml`) was meant as a file:
            // say it is missing rather than that no pipeline has that name.
            let a_path =
                path.components().count() > 1 || path.extension().is_some_and(|e| e == "toml");
            written_out(store, &reference, scratch).map_err(|e| match e {
                SourceError::Usage(_) if a_path => {
                    SourceError::Usage(anyhow::anyhow!("{reference}: no such file"))
                }
                SourceError::Usage(e) => SourceError::Usage(e.context(format!(
                    "{reference}: not a spec file nor a deployed pipeline"
                ))),
                e => e,
            })?
        }
    };
    let mut source = Source {
        path,
        resolver,
        deployed,
        checked: None,
    };
    if let (Trust::Enforce, Some(store), None) = (trust, store, &source.deployed)
        && !trust::trusted_keys(store)
            .map_err(SourceError::Other)?
            .is_empty()
    {
        let canonical = source.canonicalize()?;
        trust::check_canonical(store, &canonical).map_err(SourceError::Usage)?;
        source.checked = Some(canonical.text);
    }
    Ok(source)
}

/// A deployed version written into `scratch`: its spec's path and canonical text.
fn written_out(
    store: Option<&Store>,
    reference: &str,
    scratch: &Path,
) -> Result<(PathBuf, Option<String>), SourceError> {
    let store = store.ok_or_else(|| SourceError::NoStore(reference.to_string()))?;
    let (path, text) = materialize(store, reference, scratch).map_err(SourceError::Usage)?;
    Ok((path, Some(text)))
}

impl<'a> Source<'a> {
    /// The spec to load.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Resolves the spec's plugins and models: from the store for
    /// `name@version` and digests, else from the plugin directories.
    pub fn resolver(&self) -> &Resolver<'a> {
        &self.resolver
    }

    /// A deployed version's canonical text, as stored.
    pub fn deployed_text(&self) -> Option<&str> {
        self.deployed.as_deref()
    }

    /// The spec file's text.
    pub fn read(&self) -> Result<String, SourceError> {
        std::fs::read_to_string(&self.path)
            .with_context(|| format!("reading {}", self.path.display()))
            .map_err(SourceError::Other)
    }

    /// The spec canonicalised: plugins and reference files by digest, with
    /// the bytes of each.
    pub fn canonicalize(&self) -> Result<Canonical, SourceError> {
        let text = self.read()?;
        canonicalize(&self.path, &text, &self.resolver).map_err(SourceError::Usage)
    }

    /// The canonical text, whose digest a deploy of this spec gets: the
    /// stored one, the one the trust check computed, or computed now. Called
    /// after loading, which names any plugin or file that does not resolve
    /// first (and tells a missing reference file from a bad spec).
    pub fn canonical_text(&self) -> Result<String, SourceError> {
        match self.deployed.as_ref().or(self.checked.as_ref()) {
            Some(text) => Ok(text.clone()),
            None => Ok(self.canonicalize()?.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_argument_naming_no_file_needs_the_store() {
        let scratch = std::env::temp_dir();
        let missing = PathBuf::from("no-such-pipeline@1.0");
        let e = open(
            Spec::Arg(missing),
            None,
            PluginDirs::default(),
            &scratch,
            Trust::Enforce,
        )
        .err()
        .unwrap();
        assert!(matches!(&e, SourceError::NoStore(r) if r == "no-such-pipeline@1.0"));
    }

    #[test]
    fn a_spec_file_is_canonicalised_when_asked() {
        let dir = std::env::temp_dir().join(format!("keel-ops-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pipeline.toml");
        std::fs::write(&path, "name = \"p\"\nversion = \"1\"\n").unwrap();
        let source = open(
            Spec::Arg(path.clone()),
            None,
            PluginDirs::default(),
            &dir,
            Trust::Enforce,
        )
        .unwrap();
        assert_eq!(source.path(), path);
        assert_eq!(source.deployed_text(), None);
        let text = source.canonical_text().unwrap();
        assert!(text.contains("name = \"p\""), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
