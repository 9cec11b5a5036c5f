//! The daemon's TOML configuration: listen address, tokens and roles, limits
//! (body size, queue, concurrency, deadline) globally and per pipeline, TLS.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where the daemon listens when neither the config nor `--listen` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A role a token grants. `admin` implies `read` and `sync`; `infer` is separate so an
/// inference client's token cannot read the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Infer,
    Read,
    Admin,
    /// Push a node's audit chain (`keel sync push`): a node's token needs nothing else.
    Sync,
    /// Post labels (`/v2/models/{model}/feedback`); `infer` may too.
    Feedback,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Infer => "infer",
            Role::Read => "read",
            Role::Admin => "admin",
            Role::Sync => "sync",
            Role::Feedback => "feedback",
        }
    }
}

/// One bearer token. Exactly one of `token`, `token_sha256` or `token_env`
/// gives its value; `token_sha256` keeps the secret out of the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it: recorded as the actor of admin actions.
    pub name: String,
    #[serde(default)]
    pub token: Option<String>,
    /// Hex SHA-256 of the token.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    pub roles: Vec<Role>,
}

/// Limits, globally (`[limits]`) or per pipeline (`[pipelines.NAME]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted (413 beyond).
    pub body_bytes: usize,
    /// Requests of one pipeline version executing at once (one set of plugin
    /// instances each).
    pub concurrency: usize,
    /// Requests of one pipeline version allowed to wait for a free instance
    /// set; beyond it the daemon answers 503 with `Retry-After`.
    pub queue: usize,
    /// From arrival to answer; past it the client gets 504 (a request
    /// already executing still completes and is recorded).
    pub request_timeout_ms: u64,
    /// Batches waiting for a version's monitors; when full, monitors skip
    /// batches (counted) rather than slow the answers.
    pub monitor_queue: usize,
    /// Shadow requests waiting per pipeline; beyond it they are dropped (counted).
    pub shadow_queue: usize,
    /// Window of monitors that have none in their spec: a daemon runs
    /// forever, so an unwindowed monitor would never conclude.
    pub default_window_rows: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body_bytes: 8 << 20,
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue: 256,
            request_timeout_ms: 10_000,
            monitor_queue: 1024,
            shadow_queue: 64,
            default_window_rows: 1000,
        }
    }
}

/// Per-pipeline overrides of [`Limits`]; unset fields inherit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineLimits {
    pub concurrency: Option<usize>,
    pub queue: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    pub monitor_queue: Option<usize>,
    pub default_window_rows: Option<u64>,
}

/// TLS: PEM certificate chain and private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// After sled's flush of each group commit, also `fdatasync` the data
    /// file: the record then survives a power loss, not only a crash of
    /// the daemon. Costs one more disk round trip per group.
    pub fdatasync: bool,
    /// Size in MiB of the audit write-ahead log: each group commit is one
    /// write and one `fdatasync` of this preallocated file instead of a sled
    /// flush (sled is flushed when the log wraps). `0` turns it off.
    pub wal_mb: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            fdatasync: true,
            wal_mb: 16,
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` without a token even when tokens are configured
    /// (for scrapers on a trusted network).
    #[serde(default)]
    pub public: bool,
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub pipelines: BTreeMap<String, PipelineLimits>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    /// Where this file was read from (relative TLS paths are resolved against it).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

impl ServerConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        ServerConfig::parse(&text, path)
    }

    /// Parses and checks `text` (named `path` in errors).
    pub fn parse(text: &str, path: &Path) -> Result<ServerConfig, ConfigError> {
        let mut c: ServerConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        c.path = Some(path.to_owned());
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(tls) = &mut c.tls {
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
        }
        c.check()?;
        Ok(c)
    }

    fn invalid(&self, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from("<config>")),
            message,
        }
    }

    /// Checks what serde cannot: token sources, names, limits.
    pub fn check(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            let at = format!("tokens[{i}] (`{}`)", t.name);
            if t.name.is_empty() {
                return Err(self.invalid(format!("tokens[{i}]: `name` must not be empty")));
            }
            if !names.insert(&t.name) {
                return Err(self.invalid(format!("{at}: the name is used twice")));
            }
            let sources = [
                t.token.is_some(),
                t.token_sha256.is_some(),
                t.token_env.is_some(),
            ]
            .iter()
            .filter(|s| **s)
            .count();
            if sources != 1 {
                return Err(self.invalid(format!(
                    "{at}: give exactly one of `token`, `token_sha256`, `token_env`"
                )));
            }
            if t.roles.is_empty() {
                return Err(self.invalid(format!(
                    "{at}: `roles` is empty; use infer, read, admin and/or sync"
                )));
            }
            if let Some(tok) = &t.token
                && tok.len() < 16
            {
                return Err(self.invalid(format!(
                    "{at}: the token is {} characters; use at least 16",
                    tok.len()
                )));
            }
            if let Some(h) = &t.token_sha256
                && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(self.invalid(format!("{at}: `token_sha256` must be 64 hex digits")));
            }
        }
        let l = &self.limits;
        for (what, v) in [
            ("limits.body_bytes", l.body_bytes as u64),
            ("limits.concurrency", l.concurrency as u64),
            ("limits.request_timeout_ms", l.request_timeout_ms),
            ("limits.default_window_rows", l.default_window_rows),
        ] {
            if v == 0 {
                return Err(self.invalid(format!("{what} must be at least 1")));
            }
        }
        for (name, p) in &self.pipelines {
            if p.concurrency == Some(0) {
                return Err(
                    self.invalid(format!("pipelines.{name}.concurrency must be at least 1"))
                );
            }
            if p.request_timeout_ms == Some(0) {
                return Err(self.invalid(format!(
                    "pipelines.{name}.request_timeout_ms must be at least 1"
                )));
            }
        }
        Ok(())
    }

    /// The effective limits of pipeline `name`.
    pub fn limits_for(&self, name: &str) -> Limits {
        let mut l = self.limits.clone();
        if let Some(p) = self.pipelines.get(name) {
            if let Some(v) = p.concurrency {
                l.concurrency = v;
            }
            if let Some(v) = p.queue {
                l.queue = v;
            }
            if let Some(v) = p.request_timeout_ms {
                l.request_timeout_ms = v;
            }
            if let Some(v) = p.monitor_queue {
                l.monitor_queue = v;
            }
            if let Some(v) = p.default_window_rows {
                l.default_window_rows = v;
            }
        }
        l
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
        ServerConfig::parse(text, Path::new("/etc/keel/serve.toml"))
    }

    #[test]
    fn a_full_config_parses_and_pipelines_override_limits() {
        let c = parse(
            r#"
listen = "0.0.0.0:9000"
[[tokens]]
name = "ops"
token = "0123456789abcdef0123"
roles = ["admin", "infer"]
[[tokens]]
name = "app"
token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
roles = ["infer"]
[limits]
body_bytes = 1000
queue = 4
[pipelines.penguins]
concurrency = 3
[tls]
cert = "cert.pem"
key = "key.pem"
"#,
        )
        .unwrap();
        assert_eq!(c.listen.unwrap().port(), 9000);
        assert_eq!(c.tokens.len(), 2);
        assert_eq!(c.limits_for("penguins").concurrency, 3);
        assert_eq!(c.limits_for("penguins").queue, 4);
        assert_eq!(c.limits_for("other").queue, 4);
        assert_eq!(c.tls.unwrap().cert, PathBuf::from("/etc/keel/cert.pem"));
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse("lisen = \"x\"").unwrap_err().to_string();
        assert!(e.contains("serve.toml") && e.contains("lisen"), "{e}");
        let e = parse("[[tokens]]\nname = \"a\"\ntoken = \"short\"\nroles = [\"infer\"]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tokens[0] (`a`)") && e.contains("at least 16"),
            "{e}"
        );
        let e = parse("[[tokens]]\nname = \"a\"\nroles = [\"infer\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly one"), "{e}");
        let e = parse("[[tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\nroles = [\"root\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("root"), "{e}");
        let e = parse("[limits]\nconcurrency = 0").unwrap_err().to_string();
        assert!(e.contains("limits.concurrency"), "{e}");
    }
}
