//! Identifiers: time-ordered audit record ids, the UUIDs that OpenLineage wants for runs, and
//! the checks on caller-supplied ids and names that become keys.

use std::{
    hash::{BuildHasher, Hasher},
    time::{SystemTime, UNIX_EPOCH},
};

use sha2::{Digest as _, Sha256};

use crate::error::StoreError;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new audit record id: a ULID (26 Crockford base32 characters, 48 bits of
/// milliseconds then 80 random bits), so ids sort roughly by creation time.
///
/// The random bits come from std's randomly keyed `RandomState` (seeded from
/// the OS once per thread and advanced on every call), mixed with the clock
/// and the process id. They are not for cryptography; they only need to make
/// collisions vanishingly unlikely, and the store refuses a duplicate id anyway.
pub fn new_record_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let millis = (now.as_millis() as u64) & ((1 << 48) - 1);
    let noise = |salt: u64| {
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u128(now.as_nanos());
        h.write_u32(std::process::id());
        h.finish()
    };
    let random = (u128::from(noise(1)) << 16) ^ u128::from(noise(2));
    let value = (u128::from(millis) << 80) | (random & ((1u128 << 80) - 1));
    let mut out = [0u8; 26];
    for (i, c) in out.iter_mut().enumerate() {
        let shift = 125 - 5 * i as u32;
        *c = CROCKFORD[((value >> shift) & 31) as usize];
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// Checks that a caller-supplied id is usable as a key and in a terminal.
pub(crate) fn validate_id(id: &str) -> Result<(), StoreError> {
    let reason = if id.is_empty() {
        Some("must not be empty")
    } else if id.len() > 128 {
        Some("must be at most 128 bytes")
    } else if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("must not contain whitespace or control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::BadName {
            what: "audit record id",
            value: id.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Names and versions become keys (`name@version`, and `\0`-separated keys
/// elsewhere) and appear in terminals, so the separators and invisible
/// characters are refused.
pub(crate) fn validate_name(what: &'static str, value: &str) -> Result<(), StoreError> {
    let reason = if value.is_empty() {
        Some("must not be empty")
    } else if value.len() > 200 {
        Some("must be at most 200 bytes")
    } else if value.contains('@') {
        Some("must not contain '@'")
    } else if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("must not contain whitespace or control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::BadName {
            what,
            value: value.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A UUID derived deterministically from a record id (RFC 9562 version 8,
/// "custom"): the first 16 bytes of sha256 with the version and variant bits
/// set. Exporting the same record twice gives the same OpenLineage runId.
pub fn run_uuid(record_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"keel-run\0");
    h.update(record_id.as_bytes());
    let hash = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_unique_and_well_formed() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_record_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(10) {
            assert_eq!(id.len(), 26);
            assert!(id.bytes().all(|b| CROCKFORD.contains(&b)), "{id}");
            validate_id(id).unwrap();
        }
    }

    #[test]
    fn run_uuid_is_deterministic_v8() {
        let a = run_uuid("01HX");
        assert_eq!(a, run_uuid("01HX"));
        assert_ne!(a, run_uuid("01HY"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn validate_id_refuses_bad_ids() {
        assert!(validate_id("").is_err());
        assert!(validate_id("a b").is_err());
        assert!(validate_id(&"x".repeat(129)).is_err());
        assert!(validate_id("run-42").is_ok());
    }
}
