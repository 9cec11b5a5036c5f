//! Bearer tokens and roles. Tokens are kept only as SHA-256 digests and a
//! presented token is compared against every one of them in constant time,
//! so neither the match nor its position leaks through timing.

use crate::config::{Role, ServerConfig};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name, or `anonymous` when no tokens are configured.
    pub name: String,
    roles: Vec<Role>,
}

impl Caller {
    /// Whether the caller holds `role` (`admin` implies `read` and `sync`;
    /// `infer` implies `feedback`: who asks for predictions may label them).
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
            || (matches!(role, Role::Read | Role::Sync) && self.roles.contains(&Role::Admin))
            || (role == Role::Feedback && self.roles.contains(&Role::Infer))
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// 401.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// 403.
    #[error("token `{name}` lacks the `{role}` role")]
    Forbidden { name: String, role: &'static str },
}

struct Entry {
    name: String,
    digest: [u8; 32],
    roles: Vec<Role>,
}

/// The configured tokens.
pub struct Tokens {
    entries: Vec<Entry>,
}

impl Tokens {
    /// From the config; `token_env` variables are read now (a missing one is an error).
    pub fn from_config(c: &ServerConfig) -> Result<Tokens, String> {
        let mut entries = Vec::new();
        for t in &c.tokens {
            let digest = if let Some(tok) = &t.token {
                Sha256::digest(tok.as_bytes()).into()
            } else if let Some(hex_digest) = &t.token_sha256 {
                let mut d = [0u8; 32];
                hex::decode_to_slice(hex_digest, &mut d)
                    .map_err(|e| format!("token `{}`: token_sha256: {e}", t.name))?;
                d
            } else if let Some(var) = &t.token_env {
                let v = std::env::var(var).map_err(|_| {
                    format!("token `{}`: environment variable {var} is not set", t.name)
                })?;
                if v.len() < 16 {
                    return Err(format!(
                        "token `{}`: ${var} is {} characters; use at least 16",
                        t.name,
                        v.len()
                    ));
                }
                Sha256::digest(v.as_bytes()).into()
            } else {
                return Err(format!("token `{}` has no value", t.name));
            };
            entries.push(Entry {
                name: t.name.clone(),
                digest,
                roles: t.roles.clone(),
            });
        }
        Ok(Tokens { entries })
    }

    /// No tokens: every caller is anonymous with every role (loopback only).
    pub fn is_open(&self) -> bool {
        self.entries.is_empty()
    }

    /// Who sent `authorization` (the header's value), if anyone known.
    pub fn identify(&self, authorization: Option<&[u8]>) -> Result<Caller, AuthError> {
        if self.is_open() {
            return Ok(Caller {
                name: "anonymous".into(),
                roles: vec![
                    Role::Infer,
                    Role::Read,
                    Role::Admin,
                    Role::Sync,
                    Role::Feedback,
                ],
            });
        }
        let Some(header) = authorization else {
            return Err(AuthError::Unauthenticated(
                "missing bearer token (Authorization: Bearer …)",
            ));
        };
        let token = header
            .strip_prefix(b"Bearer ")
            .or_else(|| header.strip_prefix(b"bearer "))
            .ok_or(AuthError::Unauthenticated(
                "the Authorization header is not `Bearer <token>`",
            ))?;
        let presented: [u8; 32] = Sha256::digest(token).into();
        // Every entry is compared, whatever matched before.
        let mut found: Option<&Entry> = None;
        for e in &self.entries {
            if bool::from(e.digest.ct_eq(&presented)) {
                found = Some(e);
            }
        }
        found
            .map(|e| Caller {
                name: e.name.clone(),
                roles: e.roles.clone(),
            })
            .ok_or(AuthError::Unauthenticated("unknown token"))
    }

    /// [`Tokens::identify`], then checks `role`.
    pub fn authorize(&self, authorization: Option<&[u8]>, role: Role) -> Result<Caller, AuthError> {
        let caller = self.identify(authorization)?;
        if caller.has(role) {
            Ok(caller)
        } else {
            Err(AuthError::Forbidden {
                name: caller.name,
                role: role.as_str(),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::path::Path;

    fn tokens() -> Tokens {
        let c = ServerConfig::parse(
            r#"
[[tokens]]
name = "ops"
token = "ops-token-0123456789"
roles = ["admin"]
[[tokens]]
name = "app"
token_sha256 = "c4d2a3b6b0b8e2a0c4f6b2c4bcd5c4a3c0f7d1e2b3a4c5d6e7f8091a2b3c4d5e"
roles = ["infer"]
[[tokens]]
name = "app2"
token = "app-token-0123456789"
roles = ["infer"]
"#,
            Path::new("t.toml"),
        )
        .unwrap();
        Tokens::from_config(&c).unwrap()
    }

    #[test]
    fn roles_are_checked_and_admin_implies_read() {
        let t = tokens();
        let ops = Some(&b"Bearer ops-token-0123456789"[..]);
        assert_eq!(t.authorize(ops, Role::Admin).unwrap().name, "ops");
        assert_eq!(t.authorize(ops, Role::Read).unwrap().name, "ops");
        assert!(matches!(
            t.authorize(ops, Role::Infer),
            Err(AuthError::Forbidden { .. })
        ));
        let app = Some(&b"Bearer app-token-0123456789"[..]);
        assert_eq!(t.authorize(app, Role::Infer).unwrap().name, "app2");
        assert_eq!(t.authorize(app, Role::Feedback).unwrap().name, "app2");
        assert!(matches!(
            t.authorize(ops, Role::Feedback),
            Err(AuthError::Forbidden { .. })
        ));
        assert!(matches!(
            t.authorize(app, Role::Read),
            Err(AuthError::Forbidden { .. })
        ));
    }

    #[test]
    fn missing_malformed_and_unknown_tokens_are_401() {
        let t = tokens();
        for h in [
            None,
            Some(&b"Basic abc"[..]),
            Some(&b"Bearer nope-nope-nope-nope"[..]),
            Some(&b"Bearer "[..]),
        ] {
            assert!(
                matches!(
                    t.authorize(h, Role::Infer),
                    Err(AuthError::Unauthenticated(_))
                ),
                "{h:?}"
            );
        }
    }

    #[test]
    fn digest_tokens_match_their_preimage() {
        let hex_digest = hex::encode(Sha256::digest(b"the-app-secret-token"));
        let c = ServerConfig::parse(
            &format!(
                "[[tokens]]\nname = \"x\"\ntoken_sha256 = \"{hex_digest}\"\nroles = [\"read\"]"
            ),
            Path::new("t.toml"),
        )
        .unwrap();
        let t = Tokens::from_config(&c).unwrap();
        assert_eq!(
            t.authorize(Some(b"Bearer the-app-secret-token"), Role::Read)
                .unwrap()
                .name,
            "x"
        );
    }

    #[test]
    fn no_tokens_means_open() {
        let t = Tokens::from_config(&ServerConfig::default()).unwrap();
        assert!(t.is_open());
        assert!(t.authorize(None, Role::Admin).is_ok());
    }
}
