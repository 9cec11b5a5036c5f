//! Content digests (`sha256:<hex>`) that name plugins, pipelines, payloads and configs.
//!
//! A leaf: the store's error type names digests, so this module does not name
//! it back. Parsing (`FromStr`, `TryFrom<String>`) fails with
//! [`StoreError::BadDigest`](crate::StoreError::BadDigest); those impls live
//! in the error module, on top of [`Digest::checked`].

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

const PREFIX: &str = "sha256:";

/// A sha256 content digest, always spelled `sha256:<64 lowercase hex digits>`.
///
/// The spelling is validated on construction and deserialization, so a
/// `Digest` read from the store or from a user is always well formed.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_hash(Sha256::digest(bytes).into())
    }

    /// A digest from a finished sha256 hash.
    pub fn from_hash(hash: [u8; 32]) -> Self {
        Digest(format!("{PREFIX}{}", hex::encode(hash)))
    }

    /// The full spelling, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits without the algorithm prefix.
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }

    /// The first 12 hex digits, for humans.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    /// `s` as a digest, if it is spelled `sha256:<64 lowercase hex digits>`.
    pub(crate) fn checked(s: &str) -> Option<Digest> {
        let hex = s.strip_prefix(PREFIX)?;
        (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Digest(s.to_owned()))
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Feeds a length-prefixed field into a hasher, so that concatenations of
/// different fields can never produce the same byte stream.
pub(crate) fn update_field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_known_bytes() {
        let d = Digest::of(b"abc");
        assert_eq!(
            d.as_str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.short(), "ba7816bf8f01");
    }

    #[test]
    fn parse_rejects_malformed() {
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(
            "md5:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                .parse::<Digest>()
                .is_err()
        );
        assert!(
            "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
                .parse::<Digest>()
                .is_err()
        );
        let d = Digest::of(b"x");
        assert_eq!(d.as_str().parse::<Digest>().unwrap(), d);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:00\"").is_err());
    }
}
