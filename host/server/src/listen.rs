//! The accept loop: plain TCP or TLS (rustls), HTTP/1.1 keep-alive through
//! hyper, signals (SIGTERM/SIGINT: stop accepting, finish in-flight requests,
//! save monitor state, flush the store; SIGHUP: reload), and the start-up
//! checks (no tokens → loopback only).

use crate::app::App;
use crate::config::{DEFAULT_LISTEN, ServerConfig};
use hyper_util::rt::{TokioIo, TokioTimer};
use keel_runtime::Runtime;
use keel_store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(String),
    #[error("loading pipelines: {0}")]
    Load(String),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("signals: {0}")]
    Signals(std::io::Error),
}

/// What `keel serve` was asked to do.
pub struct ServeOptions {
    pub store: Store,
    pub rt: Arc<Runtime>,
    pub config: ServerConfig,
    /// Overrides the config's `listen`.
    pub listen: Option<SocketAddr>,
}

fn tls_acceptor(c: &crate::config::TlsConfig) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&c.cert)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", c.cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ServeError::Tls(format!("{}: {e}", c.cert.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!(
            "{}: no certificate in the file",
            c.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&c.key)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", c.key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves until SIGTERM or SIGINT; `ready` is told the bound address.
pub async fn serve(
    opts: ServeOptions,
    ready: impl FnOnce(SocketAddr, &App) + Send,
) -> Result<(), ServeError> {
    let ServeOptions {
        store,
        rt,
        config,
        listen,
    } = opts;
    let addr = listen_address(listen, &config)?;
    let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
    let app = Arc::new(
        tokio::task::spawn_blocking(move || App::start(store, rt, config))
            .await
            .map_err(|e| ServeError::Load(e.to_string()))?
            .map_err(ServeError::Load)?,
    );
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    ready(local, &app);
    let router = crate::router(app.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(ServeError::Signals)?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, carry on.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                serve_connection(stream, peer, &router, tls.as_ref(), &graceful);
            }
            _ = hup.recv() => reload(&app).await,
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break; }
        }
    }
    // Stop accepting, then let every connection finish its request.
    drop(listener);
    drain(graceful, app).await;
    Ok(())
}

/// The address to listen on; refuses anything but loopback without tokens.
fn listen_address(
    listen: Option<SocketAddr>,
    config: &ServerConfig,
) -> Result<SocketAddr, ServeError> {
    let addr = match listen.or(config.listen) {
        Some(a) => a,
        None => DEFAULT_LISTEN
            .parse()
            .map_err(|e| ServeError::Config(format!("{e}")))?,
    };
    if config.tokens.is_empty() && !addr.ip().is_loopback() {
        return Err(ServeError::Config(format!(
            "refusing to listen on {addr} without tokens: anyone who can reach it could run and change pipelines; add [[tokens]] to the config or listen on 127.0.0.1"
        )));
    }
    Ok(addr)
}

/// Serves one accepted connection (after its TLS handshake) on a task of
/// its own, watched by `graceful` so shutdown waits for it.
fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: &axum::Router,
    tls: Option<&tokio_rustls::TlsAcceptor>,
    graceful: &hyper_util::server::graceful::GracefulShutdown,
) {
    let _ = stream.set_nodelay(true);
    let svc = hyper_util::service::TowerToHyperService::new(router.clone());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive(true);
    match tls {
        None => {
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            let watched = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = watched.await {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
            });
        }
        Some(acceptor) => {
            let acceptor = acceptor.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
                let stream = match handshake {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
                let conn = builder.serve_connection(TokioIo::new(stream), svc);
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
            });
        }
    }
}

/// SIGHUP: reloads the config and deployed pipelines, and records that it did.
async fn reload(app: &Arc<App>) {
    tracing::info!("SIGHUP: reloading the config and deployed pipelines");
    let app2 = app.clone();
    let _guard = app.changes.lock().await;
    let result = tokio::task::spawn_blocking(move || crate::admin::reload_from_disk(&app2)).await;
    let outcome = match result {
        Ok(Ok(v)) => {
            tracing::info!(report = %v, "reloaded");
            "ok".to_string()
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reload failed; still serving the previous configuration");
            e
        }
        Err(e) => e.to_string(),
    };
    let entry = keel_store::AdminEntry {
        seq: 0,
        time: String::new(),
        actor: "signal:SIGHUP".into(),
        action: "server.reload".into(),
        target: String::new(),
        detail: serde_json::Value::Null,
        outcome,
        prev_hash: String::new(),
        hash: String::new(),
    };
    if let Err(e) = app.store.append_admin(entry) {
        tracing::error!(error = %e, "cannot record the reload");
    }
}

/// Waits (up to [`DRAIN_TIMEOUT`]) for open connections, then shuts the app
/// down: monitor state saved, store flushed.
async fn drain(graceful: hyper_util::server::graceful::GracefulShutdown, app: Arc<App>) {
    eprintln!("keel serve: stopping; draining in-flight requests");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after {DRAIN_TIMEOUT:?}; closing");
    }
    let _ = tokio::task::spawn_blocking(move || app.shutdown()).await;
    eprintln!("keel serve: stopped; monitor state saved, store flushed");
}
