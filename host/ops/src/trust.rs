//! The plugin trust policy: when the store trusts at least one signing key,
//! every plugin added or deployed must carry a valid signature by one of them.
//!
//! A signature comes from a `.sig` file next to the component (or given
//! explicitly) or from the store, which keeps every signature it has accepted,
//! so a plugin signed when it was added can be deployed by `name@version` or
//! digest later without its `.sig` file. Keys are checked at each add and
//! deploy against the keys trusted *now*: untrusting a key stops its plugins
//! from being deployed again, though pipelines already deployed keep running.

use anyhow::{Context, Result, anyhow};
use keel_sign::{PublicKey, Signature, verify_trusted};
use keel_store::{Digest, Store};
use std::path::{Path, PathBuf};

/// A signature offered for a plugin: the `.sig` text and where it came from.
pub struct Offered {
    pub text: String,
    pub source: String,
}

impl Offered {
    /// Reads `path` if it exists; `None` when there is no such file.
    pub fn read_if_exists(path: &Path) -> Result<Option<Offered>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(Offered {
                text,
                source: path.display().to_string(),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// `FILE.wasm` → `FILE.wasm.sig`.
pub fn sig_path(component: &Path) -> PathBuf {
    let mut p = component.as_os_str().to_owned();
    p.push(".sig");
    PathBuf::from(p)
}

/// The trusted keys, parsed. Empty: no policy.
pub fn trusted_keys(store: &Store) -> Result<Vec<PublicKey>> {
    store
        .trusted_keys()?
        .iter()
        .map(|k| {
            PublicKey::parse(&k.public_key, &format!("trusted key {}", k.id))
                .map_err(anyhow::Error::from)
        })
        .collect()
}

/// Enforces the policy for plugin `bytes` (called `what` in errors) about to
/// be stored: `Ok(None)` when no key is trusted, `Ok(Some(key id))` when a
/// trusted key signed it (an offered signature is then kept in the store),
/// else an error saying why it was refused.
pub fn check(
    store: &Store,
    bytes: &[u8],
    what: &str,
    offered: Option<&Offered>,
) -> Result<Option<String>> {
    let keys = trusted_keys(store)?;
    if keys.is_empty() {
        return Ok(None);
    }
    let digest = Digest::of(bytes);
    let refuse = |why: String| {
        anyhow!(
            "{what} ({digest}) refused by the trust policy ({} trusted key{}): {why}",
            keys.len(),
            if keys.len() == 1 { "" } else { "s" }
        )
    };
    let mut offered_error = None;
    if let Some(o) = offered {
        let checked = Signature::parse(&o.text, &o.source)
            .map_err(anyhow::Error::from)
            .and_then(|sig| {
                verify_trusted(bytes, &sig, &keys)
                    .map(|k| k.id())
                    .map_err(|e| anyhow!("{}: {e}", o.source))
            });
        match checked {
            Ok(id) => {
                store.put_signature(&digest, &id, &o.text)?;
                tracing::info!(plugin = what, key = %id, "signature accepted");
                return Ok(Some(id));
            }
            Err(e) => offered_error = Some(e),
        }
    }
    for (i, text) in store.signatures(&digest)?.iter().enumerate() {
        let source = format!("stored signature #{i} of {digest}");
        if let Ok(sig) = Signature::parse(text, &source)
            && let Ok(k) = verify_trusted(bytes, &sig, &keys)
        {
            return Ok(Some(k.id()));
        }
    }
    Err(refuse(match (offered, offered_error) {
        (_, Some(e)) => format!("{e:#}"),
        (Some(o), None) => format!("{}: no valid signature", o.source),
        (None, None) => "it is not signed (no .sig file, and no signature in the store by a trusted key); sign it with `keel plugin sign`".to_string(),
    }))
}

/// [`check`] for every plugin of a canonical spec: a plugin resolved from a
/// file is offered the `.sig` beside it; one from the store, the signatures
/// the store kept.
pub fn check_canonical(store: &Store, canonical: &crate::Canonical) -> Result<()> {
    for ((_, bytes), source) in canonical.plugin_bytes.iter().zip(&canonical.plugin_sources) {
        let file = Path::new(source);
        let offered = if file.is_file() {
            Offered::read_if_exists(&sig_path(file))?
        } else {
            None
        };
        check(store, bytes, &format!("plugin {source}"), offered.as_ref())?;
    }
    Ok(())
}
