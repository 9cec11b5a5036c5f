//! A bounded HTTP/1.1 load generator for the daemon: the load and crash
//! tests and the serving benchmark. Lean on purpose (hyper's connection
//! API, keep-alive, one thread) so that, on a small machine, it leaves the
//! CPU to the server it measures.
//!
//! Open loop (`rate`): request *i* is due at `start + i / rate`. A request
//! whose connection came free only after it was due (the server was slow)
//! counts from when it was due, so a slow server is charged for the
//! requests it kept waiting (no coordinated omission); one sent on time
//! counts from when it was sent (the timer's own lateness, up to ~1 ms, is
//! not the server's). Closed loop: each connection sends its next request
//! when the last one is answered.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What to send, how fast, for how long.
pub struct LoadSpec {
    pub addr: SocketAddr,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body of request `i` (so each can carry a unique id).
    pub body: Arc<dyn Fn(u64) -> Bytes + Send + Sync>,
    /// Open loop at this many requests per second; `None`: closed loop.
    pub rate: Option<f64>,
    pub connections: usize,
    /// Stop scheduling after this long …
    pub duration: Duration,
    /// … or after this many requests.
    pub max_requests: Option<u64>,
    /// Requests due in this first period are sent but not measured.
    pub warmup: Duration,
    /// Keep the bodies of 2xx answers.
    pub collect_ok_bodies: bool,
    /// Per request; a request that takes longer counts as an error.
    pub timeout: Duration,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub sent: u64,
    /// Requests that got an HTTP answer.
    pub completed: u64,
    pub status: BTreeMap<u16, u64>,
    /// Connection errors and timeouts.
    pub errors: u64,
    /// The measured period (after warm-up).
    pub elapsed: Duration,
    /// 2xx answers per second in the measured period.
    pub throughput: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
    /// Measured requests (the percentiles are over these).
    pub measured: u64,
    pub ok_bodies: Vec<Bytes>,
}

impl LoadReport {
    /// 2xx answers.
    pub fn ok(&self) -> u64 {
        self.status
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }

    /// The report without the bodies.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "sent": self.sent,
            "completed": self.completed,
            "ok": self.ok(),
            "status": self.status.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            "errors": self.errors,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "throughput_rps": self.throughput,
            "measured": self.measured,
            "latency_us": {
                "p50": self.p50_us, "p90": self.p90_us, "p99": self.p99_us,
                "p999": self.p999_us, "max": self.max_us, "mean": self.mean_us,
            },
        })
    }
}

/// Why a run could not happen at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("bad request template: {0}")]
    Request(String),
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    Spec(String),
}

/// One request's fate.
struct Sample {
    due: Instant,
    latency: Duration,
    status: Option<u16>,
    body: Option<Bytes>,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Option<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(sender)
}

/// Runs the load; call inside a tokio runtime (a current-thread one is best).
pub async fn run(spec: LoadSpec) -> Result<LoadReport, LoadError> {
    if spec.connections == 0 {
        return Err(LoadError::Spec("connections must be at least 1".into()));
    }
    if spec.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        return Err(LoadError::Spec("rate must be positive".into()));
    }
    // Check the template once so the workers need not.
    Request::post(spec.path.as_str())
        .body(())
        .map_err(|e| LoadError::Request(e.to_string()))?;
    let spec = Arc::new(spec);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + spec.duration;
    let mut tasks = Vec::with_capacity(spec.connections);
    for _ in 0..spec.connections {
        let (spec, next) = (spec.clone(), next.clone());
        tasks.push(tokio::spawn(
            async move { worker(spec, next, start, end).await },
        ));
    }
    let mut samples = Vec::new();
    for t in tasks {
        if let Ok(mut s) = t.await {
            samples.append(&mut s);
        }
    }
    Ok(summarise(&spec, samples, start))
}

async fn worker(
    spec: Arc<LoadSpec>,
    next: Arc<AtomicU64>,
    start: Instant,
    end: Instant,
) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut sender: Option<Sender> = None;
    let host = spec.addr.to_string();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if spec.max_requests.is_some_and(|m| i >= m) {
            break;
        }
        let due = match spec.rate {
            Some(r) => start + Duration::from_secs_f64(i as f64 / r),
            None => Instant::now(),
        };
        if due >= end {
            break;
        }
        // A connection that comes free after its next request was due means
        // the server kept that request waiting: it counts from when it was
        // due. Otherwise it counts from when it is sent, so the timer's own
        // lateness (tokio's resolution is 1 ms) is not charged to the server.
        let waited = Instant::now() > due;
        if spec.rate.is_some() && !waited {
            tokio::time::sleep_until(due.into()).await;
        }
        let due = if waited { due } else { Instant::now() };
        // (Re)connect; a server that is down costs this request, not a spin.
        let s = match &mut sender {
            Some(s) if !s.is_closed() => s,
            _ => match connect(spec.addr).await {
                Some(s) => sender.insert(s),
                None => {
                    out.push(Sample {
                        due,
                        latency: due.elapsed(),
                        status: None,
                        body: None,
                    });
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let mut req = Request::post(spec.path.as_str())
            .header(hyper::header::HOST, host.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json");
        for (k, v) in &spec.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let Ok(req) = req.body(Full::new((spec.body)(i))) else {
            break;
        };
        let answer = tokio::time::timeout(spec.timeout, async {
            let resp = s.send_request(req).await.ok()?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.ok()?.to_bytes();
            Some((status, body))
        })
        .await;
        let latency = due.elapsed();
        match answer {
            Ok(Some((status, body))) => out.push(Sample {
                due,
                latency,
                status: Some(status),
                body: (spec.collect_ok_bodies && (200..300).contains(&status)).then_some(body),
            }),
            _ => {
                sender = None;
                out.push(Sample {
                    due,
                    latency,
                    status: None,
                    body: None,
                });
            }
        }
    }
    out
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)])
}

fn summarise(spec: &LoadSpec, samples: Vec<Sample>, start: Instant) -> LoadReport {
    let mut r = LoadReport {
        sent: samples.len() as u64,
        ..Default::default()
    };
    let measured_from = start + spec.warmup;
    let mut lat: Vec<u32> = Vec::new();
    let mut ok_measured = 0u64;
    let mut last_done = measured_from;
    for s in samples {
        match s.status {
            Some(code) => {
                r.completed += 1;
                *r.status.entry(code).or_default() += 1;
                if s.due >= measured_from {
                    lat.push(s.latency.as_micros().min(u128::from(u32::MAX)) as u32);
                    if (200..300).contains(&code) {
                        ok_measured += 1;
                    }
                    last_done = last_done.max(s.due + s.latency);
                }
            }
            None => r.errors += 1,
        }
        if let Some(b) = s.body {
            r.ok_bodies.push(b);
        }
    }
    lat.sort_unstable();
    r.measured = lat.len() as u64;
    r.elapsed = last_done.saturating_duration_since(measured_from);
    r.throughput = if r.elapsed.is_zero() {
        0.0
    } else {
        ok_measured as f64 / r.elapsed.as_secs_f64()
    };
    r.p50_us = percentile(&lat, 0.50);
    r.p90_us = percentile(&lat, 0.90);
    r.p99_us = percentile(&lat, 0.99);
    r.p999_us = percentile(&lat, 0.999);
    r.max_us = lat.last().copied().map_or(0.0, f64::from);
    r.mean_us = if lat.is_empty() {
        0.0
    } else {
        lat.iter().map(|x| f64::from(*x)).sum::<f64>() / lat.len() as f64
    };
    r
}

/// [`run`] on a current-thread runtime of its own.
pub fn run_blocking(spec: LoadSpec) -> Result<LoadReport, LoadError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LoadError::Runtime)?;
    rt.block_on(run(spec))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use axum::routing::post;

    async fn server(listener: tokio::net::TcpListener) {
        let n = Arc::new(AtomicU64::new(0));
        let app = axum::Router::new().route(
            "/echo",
            post(move |body: Bytes| {
                let n = n.clone();
                async move {
                    if n.fetch_add(1, Ordering::Relaxed) % 10 == 9 {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, Bytes::new())
                    } else {
                        (axum::http::StatusCode::OK, body)
                    }
                }
            }),
        );
        let _ = axum::serve(listener, app).await;
    }

    fn spec(addr: SocketAddr) -> LoadSpec {
        LoadSpec {
            addr,
            path: "/echo".into(),
            headers: vec![("x-test".into(), "1".into())],
            body: Arc::new(|i| Bytes::from(format!("{{\"id\":\"{i}\"}}"))),
            rate: None,
            connections: 3,
            duration: Duration::from_secs(10),
            max_requests: Some(200),
            warmup: Duration::ZERO,
            collect_ok_bodies: true,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn count_limited_closed_loop() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(server(l));
            let r = run(spec(addr)).await.unwrap();
            assert_eq!(r.sent, 200);
            assert_eq!(r.completed, 200);
            assert_eq!(r.status.get(&200), Some(&180));
            assert_eq!(r.status.get(&503), Some(&20));
            assert_eq!(r.ok_bodies.len(), 180);
            assert!(r.ok_bodies.iter().all(|b| b.starts_with(b"{\"id\":")));
            assert!(r.p50_us <= r.p99_us && r.p99_us <= r.max_us);
            assert_eq!(r.errors, 0);
        });
    }

    #[test]
    fn open_loop_keeps_its_rate_and_stops_on_time() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(server(l));
            let mut s = spec(addr);
            s.rate = Some(200.0);
            s.max_requests = None;
            s.duration = Duration::from_secs(1);
            let t = Instant::now();
            let r = run(s).await.unwrap();
            assert!((180..=220).contains(&r.sent), "{}", r.sent);
            assert!(t.elapsed() < Duration::from_secs(3));
        });
    }

    #[test]
    fn a_dead_server_is_errors_and_a_new_one_is_found() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // Reserve a port, then free it: nothing listens at first.
            let addr = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap()
            };
            let mut s = spec(addr);
            s.max_requests = None;
            s.duration = Duration::from_millis(1500);
            s.rate = Some(100.0);
            let load = tokio::spawn(run(s));
            tokio::time::sleep(Duration::from_millis(500)).await;
            let l = tokio::net::TcpListener::bind(addr).await.unwrap();
            tokio::spawn(server(l));
            let r = load.await.unwrap().unwrap();
            assert!(r.errors > 0, "{:?}", r.to_json());
            assert!(r.ok() > 0, "{:?}", r.to_json());
        });
    }
}
