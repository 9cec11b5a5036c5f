//! The trust policy's storage: the public keys trusted to sign plugins, and
//! the signatures that came with stored plugins.
//!
//! The store keeps keys and signatures as opaque text; parsing and checking
//! them is keel-sign's job (the store knows no cryptography, as it knows no
//! wasmtime). An empty key set means no policy: any loadable plugin may be
//! added. Trees are opened on first use, so stores written before this
//! module need no migration.

use crate::{
    Store,
    digest::Digest,
    error::{Result, StoreError},
    layout,
    time::now_rfc3339,
};

/// A public key trusted to sign plugins.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrustedKey {
    /// The key's id (`ed25519:<16 hex>`), as the signature files name it.
    pub id: String,
    /// The `.pub` file's text.
    pub public_key: String,
    /// Free text: whose key it is.
    pub label: String,
    /// When it was trusted (RFC 3339).
    pub added: String,
}

fn sig_key(digest: &Digest, key_id: &str) -> String {
    format!("{}\0{key_id}", digest.as_str())
}

impl Store {
    fn tree(&self, name: &'static str) -> Result<sled::Tree> {
        Ok(self.trees().db.open_tree(name)?)
    }

    /// Trusts `public_key` (a `.pub` file's text) under `id`; false if it was
    /// already trusted (its label is then left as it was).
    pub fn trust_key(&self, id: &str, public_key: &str, label: &str) -> Result<bool> {
        let entry = TrustedKey {
            id: id.to_string(),
            public_key: public_key.to_string(),
            label: label.to_string(),
            added: now_rfc3339(),
        };
        let added = self
            .tree(layout::TRUSTED_KEYS)?
            .compare_and_swap(id, None::<&[u8]>, Some(serde_json::to_vec(&entry)?))?
            .is_ok();
        self.durability().sync()?;
        if added {
            tracing::info!(key = id, label, "signing key trusted");
        }
        Ok(added)
    }

    /// Stops trusting key `id`; false if it was not trusted.
    pub fn untrust_key(&self, id: &str) -> Result<bool> {
        let removed = self.tree(layout::TRUSTED_KEYS)?.remove(id)?.is_some();
        self.durability().sync()?;
        if removed {
            tracing::info!(key = id, "signing key no longer trusted");
        }
        Ok(removed)
    }

    /// The trusted keys, by id. Empty: no signature policy.
    pub fn trusted_keys(&self) -> Result<Vec<TrustedKey>> {
        self.tree(layout::TRUSTED_KEYS)?
            .iter()
            .values()
            .map(|v| {
                let v = v?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    tree: layout::TRUSTED_KEYS,
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Keeps `signature` (a `.sig` file's text, already checked by the
    /// caller) for the plugin `digest`, signed by `key_id`.
    pub fn put_signature(&self, digest: &Digest, key_id: &str, signature: &str) -> Result<()> {
        self.tree(layout::SIGNATURES)?
            .insert(sig_key(digest, key_id), signature.as_bytes())?;
        self.durability().sync()
    }

    /// Every signature kept for plugin `digest`, as `.sig` text.
    pub fn signatures(&self, digest: &Digest) -> Result<Vec<String>> {
        let prefix = format!("{}\0", digest.as_str());
        self.tree(layout::SIGNATURES)?
            .scan_prefix(prefix)
            .values()
            .map(|v| {
                let v = v?;
                String::from_utf8(v.to_vec()).map_err(|e| StoreError::Corrupt {
                    tree: layout::SIGNATURES,
                    reason: e.to_string(),
                })
            })
            .collect()
    }
}
