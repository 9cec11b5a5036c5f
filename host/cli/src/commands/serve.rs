//! `keel serve` (the `server` feature): the daemon on a tokio runtime until
//! SIGTERM or SIGINT.

use super::Globals;
use crate::exit::{self, Failure, fail};
use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: the config's `listen`, else 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// The daemon's TOML config: tokens, limits, TLS.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl ServeArgs {
    /// Runs the daemon until SIGTERM/SIGINT.
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        let ServeArgs { listen, config } = self;
        let config = match &config {
            Some(p) => keel_server::ServerConfig::load(p).map_err(|e| fail(exit::USAGE, e))?,
            None => keel_server::ServerConfig::default(),
        };
        let dir = match globals.store.clone() {
            Some(d) => d,
            None => keel_store::Store::default_dir().context("locating the store")?,
        };
        let options = keel_store::StoreOptions {
            sync_data: config.audit.fdatasync,
            audit_wal_bytes: (config.audit.wal_mb > 0).then_some(config.audit.wal_mb << 20),
            ..Default::default()
        };
        let store = &keel_store::Store::open_with(&dir, options)
            .with_context(|| format!("opening the store at {}", dir.display()))
            .map_err(|e| fail(exit::USAGE, e))?;
        let rt = globals.runtime()?;
        let tokio_rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("keel-serve")
            .build()
            .context("starting the async runtime")?;
        let open = config.tokens.is_empty();
        let opts = keel_server::ServeOptions {
            store: store.clone(),
            rt,
            config,
            listen,
        };
        let served = tokio_rt.block_on(keel_server::serve(opts, |addr, app| {
            announce(addr, app, open)
        }));
        match served {
            Ok(()) => Ok(()),
            Err(e @ keel_server::ServeError::Config(_)) => Err(fail(exit::USAGE, e)),
            Err(e) => Err(fail(exit::FAILURE, e)),
        }
    }
}

/// What is served, on stderr; then the address, the first line on stdout.
fn announce(addr: std::net::SocketAddr, app: &keel_server::App, open: bool) {
    let snap = app.snapshot();
    let scheme = if snap.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    if open {
        errln!(
            "keel serve: no tokens configured: every endpoint is open to local callers; listening on loopback only"
        );
    }
    for m in snap.models.values() {
        let versions: Vec<String> = m
            .sorted_versions()
            .iter()
            .map(|v| v.version.clone())
            .collect();
        errln!(
            "keel serve: model {} versions [{}] serving {}{}{}",
            m.name,
            versions.join(", "),
            m.stable().map(|v| v.version.as_str()).unwrap_or("-"),
            m.traffic
                .canary
                .as_ref()
                .map(|c| format!(", canary {} at {:.0}%", c.version, c.share * 100.0))
                .unwrap_or_default(),
            m.traffic
                .shadow
                .as_ref()
                .map(|s| format!(", shadow {s}"))
                .unwrap_or_default(),
        );
    }
    if snap.models.is_empty() {
        errln!(
            "keel serve: no pipelines deployed yet (keel pipeline deploy, or POST /admin/pipelines)"
        );
    }
    for f in &snap.failures {
        errln!("keel serve: NOT LOADED {f}");
    }
    // Last: the first line on stdout is the address (scripts and tests
    // read it, and may read the notes above once they have it).
    outln!("keel serve: listening on {scheme}://{addr}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
}
