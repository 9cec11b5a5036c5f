//! keel-sign: ed25519 signatures for plugin components — key generation, detached
//! signatures over a component's sha256 digest, and verification against a set
//! of trusted public keys.
//!
//! A signature covers the digest, not a path or a name, so the same signed
//! bytes can be stored, tagged and deployed under any name; changing one byte
//! of the component changes its digest and the signature no longer applies.
//! The signed message is domain-separated (`keel-plugin-signature-v1\0` then
//! the digest text) so a Keel signature can never be replayed as a signature
//! over anything else made with the same key.
//!
//! Formats are small line-based text files (a version line, then fields) so a
//! reviewer can read them and a bad file gets an error naming file and line:
//!
//! ```text
//! KEY      keel-ed25519-secret-key-v1 / <64 hex: the 32-byte seed>
//! KEY.pub  keel-ed25519-public-key-v1 / <64 hex: the 32-byte public key>
//! .sig     keel-plugin-signature-v1 / key ed25519:<id> / digest sha256:<hex> / signature <128 hex>
//! ```
//!
//! ring does the cryptography (it is already in the tree through rustls).

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest as _, Sha256};
use std::fmt;

const SECRET_HEADER: &str = "keel-ed25519-secret-key-v1";
const PUBLIC_HEADER: &str = "keel-ed25519-public-key-v1";
const SIGNATURE_HEADER: &str = "keel-plugin-signature-v1";
const DOMAIN: &[u8] = b"keel-plugin-signature-v1\0";

/// What went wrong with a key, a signature file or a verification.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A key or signature file is malformed.
    #[error("{source_name}:{line}: {reason}")]
    Parse {
        /// The file (or other source) being parsed.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What was expected.
        reason: String,
    },
    /// The operating system's random number generator failed.
    #[error("no randomness available for key generation")]
    Random,
    /// ring rejected the key material.
    #[error("invalid ed25519 key: {0}")]
    BadKey(String),
    /// The component's bytes are not the bytes that were signed.
    #[error(
        "the component's digest {actual} is not the signed digest {signed}: the file was changed after it was signed"
    )]
    DigestMismatch {
        /// Digest of the bytes being checked.
        actual: String,
        /// Digest named in the signature.
        signed: String,
    },
    /// The signature names a key that is not among the trusted ones.
    #[error("signed by key {key}, which is not trusted (trusted: {trusted})")]
    UntrustedKey {
        /// The signature's key id.
        key: String,
        /// The trusted key ids, comma-separated.
        trusted: String,
    },
    /// The signature bytes do not verify under the key they name.
    #[error("the signature does not verify under key {key}: forged, or made over other bytes")]
    BadSignature {
        /// The signature's key id.
        key: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = SignError> = std::result::Result<T, E>;

/// `sha256:<hex>` of `bytes`, the same text keel-store uses for digests.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn message(digest: &str) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    m.extend_from_slice(digest.as_bytes());
    m
}

/// Splits a file into trimmed non-empty lines with their 1-based numbers,
/// checking the version header on the first one.
fn lines<'a>(text: &'a str, header: &str, source: &str) -> Result<Vec<(usize, &'a str)>> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    match lines.first() {
        Some((_, first)) if *first == header => Ok(lines),
        Some((n, first)) => Err(parse_err(
            source,
            *n,
            format!(
                "expected `{header}`, found `{}`",
                first.chars().take(40).collect::<String>()
            ),
        )),
        None => Err(parse_err(
            source,
            1,
            format!("empty file: expected `{header}`"),
        )),
    }
}

fn parse_err(source: &str, line: usize, reason: impl Into<String>) -> SignError {
    SignError::Parse {
        source_name: source.to_string(),
        line,
        reason: reason.into(),
    }
}

fn hex_array<const N: usize>(s: &str, source: &str, line: usize, what: &str) -> Result<[u8; N]> {
    let bytes = hex::decode(s).map_err(|e| parse_err(source, line, format!("{what}: {e}")))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        parse_err(
            source,
            line,
            format!(
                "{what}: expected {N} bytes ({} hex digits), found {}",
                N * 2,
                b.len()
            ),
        )
    })
}

/// An ed25519 secret key (its 32-byte seed).
pub struct SecretKey {
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the seed.
        write!(f, "SecretKey({})", self.public().id())
    }
}

impl SecretKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<SecretKey> {
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| SignError::Random)?;
        SecretKey::from_seed(seed)
    }

    fn from_seed(seed: [u8; 32]) -> Result<SecretKey> {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|e| SignError::BadKey(e.to_string()))?;
        Ok(SecretKey { seed, pair })
    }

    /// Reads a key file's text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<SecretKey> {
        let lines = lines(text, SECRET_HEADER, source)?;
        match lines.as_slice() {
            [_, (n, hex)] => SecretKey::from_seed(hex_array(hex, source, *n, "secret key")?),
            [(n, _)] => Err(parse_err(source, *n + 1, "missing the secret key line")),
            [_, _, (n, _), ..] => Err(parse_err(source, *n, "unexpected line after the key")),
            [] => Err(parse_err(source, 1, "empty file")),
        }
    }

    /// The key file's text.
    pub fn to_text(&self) -> String {
        format!("{SECRET_HEADER}\n{}\n", hex::encode(self.seed))
    }

    /// Its public half.
    pub fn public(&self) -> PublicKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey { key }
    }

    /// Signs the component `bytes`.
    pub fn sign(&self, bytes: &[u8]) -> Signature {
        let digest = digest_of(bytes);
        let sig = self.pair.sign(&message(&digest));
        let mut signature = [0u8; 64];
        signature.copy_from_slice(sig.as_ref());
        Signature {
            key: self.public().id(),
            digest,
            signature,
        }
    }
}

/// An ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    key: [u8; 32],
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl PublicKey {
    /// Reads a `.pub` file's text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<PublicKey> {
        let lines = lines(text, PUBLIC_HEADER, source)?;
        match lines.as_slice() {
            [_, (n, hex)] => Ok(PublicKey {
                key: hex_array(hex, source, *n, "public key")?,
            }),
            [(n, _)] => Err(parse_err(source, *n + 1, "missing the public key line")),
            [_, _, (n, _), ..] => Err(parse_err(source, *n, "unexpected line after the key")),
            [] => Err(parse_err(source, 1, "empty file")),
        }
    }

    /// The `.pub` file's text.
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_HEADER}\n{}\n", hex::encode(self.key))
    }

    /// The key's id: `ed25519:` and the first 16 hex digits of the key's sha256,
    /// short enough to read, long enough that two keys never share one by accident.
    pub fn id(&self) -> String {
        format!("ed25519:{}", &hex::encode(Sha256::digest(self.key))[..16])
    }

    /// Checks `sig` over `bytes` under this key alone.
    pub fn verify(&self, bytes: &[u8], sig: &Signature) -> Result<()> {
        let actual = digest_of(bytes);
        if actual != sig.digest {
            return Err(SignError::DigestMismatch {
                actual,
                signed: sig.digest.clone(),
            });
        }
        if sig.key != self.id() {
            return Err(SignError::UntrustedKey {
                key: sig.key.clone(),
                trusted: self.id(),
            });
        }
        UnparsedPublicKey::new(&ED25519, self.key)
            .verify(&message(&sig.digest), &sig.signature)
            .map_err(|_| SignError::BadSignature {
                key: sig.key.clone(),
            })
    }
}

/// A detached signature over one component's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Id of the signing key ([`PublicKey::id`]).
    pub key: String,
    /// `sha256:<hex>` of the signed component.
    pub digest: String,
    signature: [u8; 64],
}

impl Signature {
    /// Reads a `.sig` file's text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Signature> {
        let lines = lines(text, SIGNATURE_HEADER, source)?;
        let (mut key, mut digest, mut signature) = (None, None, None);
        for (n, line) in &lines[1..] {
            let (field, value) = line.split_once(' ').ok_or_else(|| {
                parse_err(
                    source,
                    *n,
                    format!("expected `FIELD VALUE`, found `{line}`"),
                )
            })?;
            let value = value.trim();
            let slot = match field {
                "key" => &mut key,
                "digest" => &mut digest,
                "signature" => &mut signature,
                other => {
                    return Err(parse_err(
                        source,
                        *n,
                        format!("unknown field `{other}` (expected key, digest, signature)"),
                    ));
                }
            };
            if slot.replace((*n, value)).is_some() {
                return Err(parse_err(
                    source,
                    *n,
                    format!("field `{field}` given twice"),
                ));
            }
        }
        let last = lines.last().map_or(1, |(n, _)| *n);
        let missing = |f: &str| parse_err(source, last + 1, format!("missing field `{f}`"));
        let (kn, key) = key.ok_or_else(|| missing("key"))?;
        let (dn, digest) = digest.ok_or_else(|| missing("digest"))?;
        let (sn, signature) = signature.ok_or_else(|| missing("signature"))?;
        if !key
            .strip_prefix("ed25519:")
            .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(parse_err(
                source,
                kn,
                format!("key `{key}`: expected ed25519:<16 hex digits>"),
            ));
        }
        if !digest.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }) {
            return Err(parse_err(
                source,
                dn,
                format!("digest `{digest}`: expected sha256:<64 lowercase hex digits>"),
            ));
        }
        Ok(Signature {
            key: key.to_string(),
            digest: digest.to_string(),
            signature: hex_array(signature, source, sn, "signature")?,
        })
    }

    /// The `.sig` file's text.
    pub fn to_text(&self) -> String {
        format!(
            "{SIGNATURE_HEADER}\nkey {}\ndigest {}\nsignature {}\n",
            self.key,
            self.digest,
            hex::encode(self.signature)
        )
    }
}

/// Checks that `sig` is a valid signature over `bytes` by one of `trusted`;
/// returns the key that made it.
pub fn verify_trusted<'a>(
    bytes: &[u8],
    sig: &Signature,
    trusted: &'a [PublicKey],
) -> Result<&'a PublicKey> {
    let actual = digest_of(bytes);
    if actual != sig.digest {
        return Err(SignError::DigestMismatch {
            actual,
            signed: sig.digest.clone(),
        });
    }
    let key =
        trusted
            .iter()
            .find(|k| k.id() == sig.key)
            .ok_or_else(|| SignError::UntrustedKey {
                key: sig.key.clone(),
                trusted: trusted
                    .iter()
                    .map(PublicKey::id)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
    key.verify(bytes, sig)?;
    Ok(key)
}
