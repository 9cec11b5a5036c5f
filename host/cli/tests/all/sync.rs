//! `keel sync push` to a real central `keel serve` on loopback, through a TCP
//! proxy that cuts the connection mid-transfer: the retried push neither loses
//! nor duplicates a record, the central store verifies each node's chain, and
//! records pruned under the audit cap before they were shipped show as a gap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::daemon::*;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const OPS: &str = "ops-token-0123456789abcdef";
const NODE: &str = "node-token-0123456789abcd";
const APP: &str = "app-token-0123456789abcdef";

/// Which way a cut counts bytes: requests to the daemon, or its answers.
#[derive(Clone, Copy, PartialEq)]
enum Dir {
    Up,
    Down,
}

/// A loopback TCP proxy in front of the daemon that can cut every open
/// connection once, after a number of bytes in one direction.
struct Proxy {
    addr: SocketAddr,
    cut: Arc<Mutex<Option<(Dir, usize)>>>,
    cuts: Arc<AtomicUsize>,
    /// Bytes forwarded so far, up and down.
    counted: [Arc<AtomicUsize>; 2],
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(Mutex::new(None));
        let cuts = Arc::new(AtomicUsize::new(0));
        let counted = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
        let (cut2, cuts2, counted2) = (cut.clone(), cuts.clone(), counted.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let server = TcpStream::connect(upstream).unwrap();
                let cut_now = Arc::new(AtomicBool::new(false));
                for (dir, from, to) in [
                    (
                        Dir::Up,
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                    ),
                    (
                        Dir::Down,
                        server.try_clone().unwrap(),
                        client.try_clone().unwrap(),
                    ),
                ] {
                    let (cut, cuts, cut_now) = (cut2.clone(), cuts2.clone(), cut_now.clone());
                    let counter = counted2[(dir == Dir::Down) as usize].clone();
                    let ends = [client.try_clone().unwrap(), server.try_clone().unwrap()];
                    std::thread::spawn(move || {
                        pump(dir, from, to, &counter, &cut, &cuts, &cut_now, &ends)
                    });
                }
            }
        });
        Proxy {
            addr,
            cut,
            cuts,
            counted,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts the connection once `after` more bytes have gone in `dir`.
    fn arm(&self, dir: Dir, after: usize) {
        let now = self.counted[(dir == Dir::Down) as usize].load(Ordering::SeqCst);
        *self.cut.lock().unwrap() = Some((dir, now + after));
    }
}

#[allow(clippy::too_many_arguments)]
fn pump(
    dir: Dir,
    mut from: TcpStream,
    mut to: TcpStream,
    counter: &AtomicUsize,
    cut: &Mutex<Option<(Dir, usize)>>,
    cuts: &AtomicUsize,
    cut_now: &AtomicBool,
    ends: &[TcpStream; 2],
) {
    let mut buf = [0u8; 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut send = n;
        {
            let mut armed = cut.lock().unwrap();
            if let Some((d, after)) = *armed
                && d == dir
            {
                let seen = counter.load(Ordering::SeqCst);
                if seen + n >= after {
                    send = after.saturating_sub(seen);
                    *armed = None;
                    cut_now.store(true, Ordering::SeqCst);
                }
            }
            counter.fetch_add(send, Ordering::SeqCst);
        }
        if to.write_all(&buf[..send]).is_err() {
            break;
        }
        if cut_now.load(Ordering::SeqCst) {
            cuts.fetch_add(1, Ordering::SeqCst);
            for e in ends {
                let _ = e.shutdown(Shutdown::Both);
            }
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn config(dir: &Path) -> String {
    let p = dir.join("central.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[[tokens]]
name = "ops"
token = "{OPS}"
roles = ["admin"]
[[tokens]]
name = "edge-7"
token = "{NODE}"
roles = ["sync"]
[[tokens]]
name = "app"
token = "{APP}"
roles = ["infer"]
"#
        ),
    )
    .unwrap();
    p.display().to_string()
}

/// `n` runs of the penguins pipeline on the node: `n` audit records, each with its input payload.
fn run_on(node: &Path, n: usize) {
    let spec = example("pipeline.toml");
    let input = example("current.csv");
    for _ in 0..n {
        let o = keel_in(node, &["run", &spec, "-i", &input, "-q"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

fn push(node: &Path, to: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "sync", "push", "--to", to, "--token", NODE, "--node", "edge-7", "-q",
    ];
    args.extend_from_slice(extra);
    keel_in(node, &args)
}

/// The node's records as (seq, hash), from `keel audit log --json`.
fn local_chain(node: &Path) -> Vec<(u64, String)> {
    local_records(node).0
}

/// [`local_chain`], and the length of the longest record's JSON.
fn local_records(node: &Path) -> (Vec<(u64, String)>, usize) {
    let o = keel_in(node, &["audit", "log", "--json", "--limit", "100000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut v: Vec<(u64, String)> = text
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            (
                r["seq"].as_u64().unwrap(),
                r["hash"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    (v, text.lines().map(str::len).max().unwrap_or(0))
}

/// The central store's copy of the node's chain as (seq, hash), read over the admin API.
fn central_chain(d: &Daemon, from: u64, to: u64) -> Vec<(u64, String)> {
    (from..to)
        .filter_map(|seq| {
            let r = get(
                &d.url(&format!("/admin/sync/nodes/edge-7/records/{seq}")),
                Some(OPS),
            );
            (r.status == 200)
                .then(|| (seq, r.json()["record"]["hash"].as_str().unwrap().to_owned()))
        })
        .collect()
}

fn node_state(d: &Daemon) -> Value {
    let r = get(&d.url("/admin/sync/nodes/edge-7"), Some(NODE));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn an_interrupted_push_resumes_without_losing_or_duplicating_records() {
    let central = tempfile::tempdir().unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(central.path(), &["--config", &config(cfg_dir.path())]);
    let proxy = Proxy::start(d.addr);
    let node = tempfile::tempdir().unwrap();
    run_on(node.path(), 6);
    let (chain, record_len) = local_records(node.path());
    assert_eq!(chain.len(), 6);

    // Roles: a node token pushes and reads its cursor only; an inference token cannot push.
    assert_eq!(get(&d.url("/admin/audit"), Some(NODE)).status, 403);
    let o = keel_in(
        node.path(),
        &["sync", "push", "--to", &d.url(""), "--token", APP, "-q"],
    );
    fails_with(&o, 1, "403");
    assert_eq!(node_state(&d)["next_seq"], 0);

    // Cut the connection while the request bodies are on their way, without
    // retries: about the third of six one-record requests (the first also
    // carries the input payload, base64; bodies travel as JSON strings, escaped).
    let payload = std::fs::metadata(example("current.csv")).unwrap().len() as usize;
    let per_request = record_len * 6 / 5 + 300;
    proxy.arm(Dir::Up, payload * 4 / 3 + per_request * 5 / 2);
    let o = push(
        node.path(),
        &proxy.url(),
        &["--batch", "1", "--retries", "0", "--payloads"],
    );
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1);
    fails_with(&o, 1, "run `keel sync push` again to resume");
    let held = node_state(&d)["next_seq"].as_u64().unwrap();
    assert!(
        held > 0 && held < 6,
        "the cut was mid-transfer: {held} of 6 held"
    );
    assert_eq!(central_chain(&d, 0, 6), chain[..held as usize]);

    // Again, through the same proxy: the rest arrives, once.
    let o = push(node.path(), &proxy.url(), &["--batch", "1", "--payloads"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("{} records kept, 0 already there", 6 - held)),
        "{out}"
    );
    assert_eq!(central_chain(&d, 0, 6), chain);
    let state = node_state(&d);
    assert_eq!(
        (state["next_seq"].as_u64(), state["records"].as_u64()),
        (Some(6), Some(6))
    );
    let v = get(&d.url("/admin/sync/nodes/edge-7/verify"), Some(OPS)).json();
    assert_eq!(
        (v["ok"].as_bool(), v["records"].as_u64()),
        (Some(true), Some(6)),
        "{v}"
    );
    // The payloads came along: each record's input is held centrally.
    for seq in 0..6 {
        let r = get(
            &d.url(&format!("/admin/sync/nodes/edge-7/records/{seq}")),
            Some(OPS),
        )
        .json();
        assert!(
            r["payloads"]["input"]
                .as_str()
                .unwrap()
                .starts_with("present"),
            "{r}"
        );
    }
    // Nothing new: a push is a no-op.
    let o = push(node.path(), &d.url(""), &[]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0 records kept"),
        "{}",
        stderr(&o)
    );

    // Cut an answer after the daemon kept the batch: the push retries by
    // itself, asks for the cursor and does not send that batch again.
    run_on(node.path(), 3);
    let chain = local_chain(node.path());
    proxy.arm(Dir::Down, 900);
    let o = push(node.path(), &proxy.url(), &["--batch", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("retry 1/3"), "{}", stderr(&o));
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 2);
    assert_eq!(central_chain(&d, 0, 9), chain);
    let state = node_state(&d);
    assert_eq!(
        (state["next_seq"].as_u64(), state["records"].as_u64()),
        (Some(9), Some(9))
    );

    // The node prunes under a small cap before shipping the next runs: the
    // central store records the gap, and the rest still verifies there.
    run_on(node.path(), 5);
    let o = keel_in(node.path(), &["audit", "cap", "12KB"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("had not been shipped"), "{out}");
    let o = keel_in(node.path(), &["audit", "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = push(node.path(), &d.url(""), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("pruned here (audit cap) before they were shipped"),
        "{out}"
    );
    let state = node_state(&d);
    assert_eq!(state["next_seq"].as_u64(), Some(14));
    let lost = state["lost"].as_u64().unwrap();
    assert!(lost > 0, "{state}");
    assert_eq!(state["records"].as_u64(), Some(14 - lost));
    let v = get(&d.url("/admin/sync/nodes/edge-7/verify"), Some(OPS)).json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["pruned"].as_u64(), Some(lost));
    let nodes = get(&d.url("/admin/sync/nodes"), Some(OPS)).json();
    assert_eq!(nodes["nodes"][0]["node"], "edge-7");
    // The daemon counts what arrived.
    let metrics = get(&d.url("/metrics"), Some(OPS)).body;
    assert!(
        metrics.contains(r#"keel_sync_records_total{node="edge-7",result="accepted"} "#),
        "{metrics}"
    );
    let o = keel_in(node.path(), &["sync", "status"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("node id: edge-7") && out.contains("0 records not yet shipped"),
        "{out}"
    );
}

#[test]
fn a_push_onto_another_chain_under_the_same_node_id_is_refused() {
    let central = tempfile::tempdir().unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(central.path(), &["--config", &config(cfg_dir.path())]);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_on(a.path(), 2);
    run_on(b.path(), 2);
    let o = push(a.path(), &d.url(""), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = push(b.path(), &d.url(""), &[]);
    fails_with(&o, 1, "is not this store's");
    run_on(b.path(), 1);
    let o = push(b.path(), &d.url(""), &[]);
    fails_with(&o, 1, "is not this store's");
    // Under its own id it goes through.
    let o = keel_in(
        b.path(),
        &[
            "sync",
            "push",
            "--to",
            &d.url(""),
            "--token",
            NODE,
            "--node",
            "edge-8",
            "-q",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let nodes = get(&d.url("/admin/sync/nodes"), Some(OPS)).json();
    assert_eq!(nodes["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(node_state(&d)["records"], 2);
}

#[test]
fn a_push_over_https_trusts_the_central_daemons_own_ca() {
    let central = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let cfg = config(dir.path());
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.insert_str(0, "[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n");
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(central.path(), &["--config", &cfg]);
    let node = tempfile::tempdir().unwrap();
    run_on(node.path(), 2);
    let url = format!("https://{}", d.addr);
    // Without the CA the certificate is refused (and the push says so).
    let o = push(node.path(), &url, &["--retries", "0"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let ca = dir.path().join("cert.pem");
    let o = push(node.path(), &url, &["--ca-cert", ca.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("2 records kept"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}
