//! `keel sync`: ship this store's audit chain (and optionally its payloads) to
//! a central `keel serve`, resuming from the cursor the central store keeps;
//! this node's shipping status; on a central store, the node chains it holds.
//!
//! A push asks the central store how far it holds this node's chain, checks
//! that what it holds is this chain (the hash of its last record), and sends
//! the rest in batches. The central store keeps a batch whole or not at all
//! and recognises records it already has, so a push cut off anywhere — before
//! a batch arrives, or after it was kept but before the answer came back — is
//! resumed by asking again: nothing is lost and nothing is kept twice.

use super::Globals;
use crate::exit::Failure;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use indicatif::{ProgressBar, ProgressStyle};
use keel_store::{AuditRecord, Digest, RawRecord, Skip, Store, SyncCursor, now_rfc3339};
use serde::Deserialize;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::time::Duration;

#[derive(clap::Subcommand)]
pub enum SyncCommand {
    /// Send the records a central daemon does not hold yet (resumes where it left off).
    Push(PushArgs),
    /// This store's node id, and how much of its chain was shipped.
    Status,
    /// On a central store: each node's chain held here, verified.
    Nodes {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

impl SyncCommand {
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        let store = globals.store()?;
        let out = match self {
            SyncCommand::Push(args) => push(&store, &args)?,
            SyncCommand::Status => status(&store)?,
            SyncCommand::Nodes { json } => nodes(&store, json)?,
        };
        out!("{out}");
        Ok(())
    }
}

/// `keel sync push` options.
#[derive(clap::Args)]
pub struct PushArgs {
    /// The central `keel serve`, e.g. https://central.example:8080.
    #[arg(long)]
    pub to: String,
    /// Bearer token with the `sync` role on the central daemon.
    #[arg(long, env = "KEEL_SYNC_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Name this store's chain on the central store [default: the store's
    /// node id, made on first push]. Kept for later pushes.
    #[arg(long)]
    pub node: Option<String>,
    /// Trust this CA (PEM) for an https central daemon with its own certificate
    /// authority [default: the system's web roots].
    #[arg(long)]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Also ship the input and output payloads the records name (those still stored here).
    #[arg(long)]
    pub payloads: bool,
    /// Records per request (halved automatically if the central daemon finds a request too big).
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Retries after a lost connection or a 5xx answer, each resuming from
    /// the central store's cursor.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Bytes of record bodies per request, whatever `--batch` says.
const MAX_BATCH_BYTES: usize = 4 << 20;
/// Payloads bigger than this stay on the node (their digests are in the records).
const MAX_SHIPPED_PAYLOAD: usize = 8 << 20;

/// What a push did, over all its attempts.
#[derive(Debug, Default)]
struct Totals {
    accepted: u64,
    duplicates: u64,
    lost: u64,
    payloads: u64,
    batches: u64,
    retries: u32,
}

/// Why an attempt ended early: worth another try (the connection, a 5xx) or not.
enum Stop {
    Retry(anyhow::Error),
    Fatal(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Stop {
    fn from(e: E) -> Stop {
        Stop::Fatal(e.into())
    }
}

#[derive(Deserialize)]
struct Cursor {
    next_seq: u64,
    head_hash: String,
}

#[derive(Deserialize)]
struct Ingested {
    accepted: u64,
    duplicates: u64,
    lost: u64,
    next_seq: u64,
    head_hash: String,
    #[serde(default)]
    payloads: u64,
}

struct Client {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
}

impl Client {
    fn new(to: &str, token: Option<&str>, ca_cert: Option<&std::path::Path>) -> Result<Client> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(120)));
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                if let ureq::tls::PemItem::Certificate(c) =
                    item.with_context(|| format!("{}: not PEM", path.display()))?
                {
                    certs.push(c);
                }
            }
            if certs.is_empty() {
                bail!("{}: no certificate in it", path.display());
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
                    .build(),
            );
        }
        Ok(Client {
            agent: config.build().into(),
            base: to.trim_end_matches('/').to_owned(),
            auth: token.map(|t| format!("Bearer {t}")),
        })
    }

    /// Sends a request; answers (status, body). Transport failures are retryable.
    fn call(&self, path: &str, body: Option<Vec<u8>>) -> Result<(u16, String), Stop> {
        let url = format!("{}{path}", self.base);
        let result = match body {
            None => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &self.auth {
                    r = r.header("authorization", a);
                }
                r.call()
            }
            Some(bytes) => {
                let mut r = self
                    .agent
                    .post(&url)
                    .header("content-type", "application/json");
                if let Some(a) = &self.auth {
                    r = r.header("authorization", a);
                }
                r.send(&bytes[..])
            }
        };
        let mut resp = result.map_err(|e| Stop::Retry(anyhow!("{url}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(|e| Stop::Retry(anyhow!("{url}: reading the answer: {e}")))?;
        if status >= 500 {
            return Err(Stop::Retry(anyhow!("{url}: {status}: {}", error_of(&text))));
        }
        Ok((status, text))
    }
}

fn error_of(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

/// `keel sync push`.
fn push(store: &Store, args: &PushArgs) -> Result<String> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let node = match &args.node {
        Some(n) => {
            if store.node_id()? != *n {
                store.set_node_id(n)?;
            }
            n.clone()
        }
        None => store.node_id()?,
    };
    let client = Client::new(&args.to, args.token.as_deref(), args.ca_cert.as_deref())?;
    let mut totals = Totals::default();
    let mut batch = args.batch;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template(
                "{spinner} pushing [{bar:30}] {pos}/{len} records ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        )
    };
    let cursor = loop {
        match attempt(store, &client, &node, args, &mut batch, &mut totals, &bar) {
            Ok(c) => break c,
            Err(Stop::Fatal(e)) => {
                bar.abandon();
                return Err(e.context(shipped(&totals, &node)));
            }
            Err(Stop::Retry(e)) if totals.retries < args.retries => {
                totals.retries += 1;
                let wait = Duration::from_millis(250 << totals.retries.min(5));
                bar.suspend(|| {
                    errln!(
                        "keel sync: {e:#}; resuming from the central store's cursor in {wait:?} (retry {}/{})",
                        totals.retries, args.retries
                    );
                });
                std::thread::sleep(wait);
            }
            Err(Stop::Retry(e)) => {
                bar.abandon();
                return Err(e.context(format!(
                    "{}; run `keel sync push` again to resume",
                    shipped(&totals, &node)
                )));
            }
        }
    };
    bar.finish_and_clear();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pushed node {node} to {}: {} records kept, {} already there, {} payloads; central holds up to seq {} (head {})",
        client.base,
        totals.accepted,
        totals.duplicates,
        totals.payloads,
        cursor.next_seq,
        &cursor.head_hash[..cursor.head_hash.len().min(16)],
    );
    if totals.lost > 0 {
        let _ = writeln!(
            out,
            "warning: {} records were pruned here (audit cap) before they were shipped; the central store records the gap",
            totals.lost
        );
    }
    if totals.retries > 0 {
        let _ = writeln!(
            out,
            "{} retries; {} batches",
            totals.retries, totals.batches
        );
    }
    Ok(out)
}

fn shipped(t: &Totals, node: &str) -> String {
    format!(
        "sync push of node {node}: {} records kept by the central store before this failed",
        t.accepted
    )
}

/// One pass: ask for the cursor, then send batches until the central store
/// holds the whole chain. Returns the final cursor.
fn attempt(
    store: &Store,
    client: &Client,
    node: &str,
    args: &PushArgs,
    batch: &mut usize,
    totals: &mut Totals,
    bar: &ProgressBar,
) -> Result<SyncCursor, Stop> {
    let (status, body) = client.call(&format!("/admin/sync/nodes/{node}"), None)?;
    if status != 200 {
        return Err(Stop::Fatal(anyhow!(
            "{}: asking for node {node}'s cursor: {status}: {}",
            client.base,
            error_of(&body)
        )));
    }
    let cursor: Cursor = serde_json::from_str(&body).context("the central store's cursor")?;
    let end = store.audit_len()?;
    let base: Option<Skip> = store.audit_base()?;
    check_same_chain(store, node, &cursor, end, base.as_ref())?;
    let first = base.as_ref().map_or(0, |b| b.to);
    let mut from = cursor.next_seq.max(first);
    let mut head_hash = cursor.head_hash;
    bar.set_length(end.saturating_sub(cursor.next_seq.max(first)) + bar.position());
    // Payloads the central store has confirmed in this attempt: each goes once.
    let mut sent = std::collections::HashSet::new();
    while from < end {
        let records = store.audit_raw(from, *batch, MAX_BATCH_BYTES)?;
        let Some(last) = records.last() else { break };
        let last_seq = last.seq;
        let (payloads, digests) = if args.payloads {
            payloads_of(store, &records, &sent)?
        } else {
            (Vec::new(), Vec::new())
        };
        let mut body = json!({ "records": records });
        if let Some(b) = &base {
            body["base"] = serde_json::to_value(b)?;
        }
        if !payloads.is_empty() {
            body["payloads"] = Value::Array(payloads);
        }
        let (status, text) = client.call(
            &format!("/admin/sync/nodes/{node}/records"),
            Some(serde_json::to_vec(&body)?),
        )?;
        match status {
            200 => {}
            413 if *batch > 1 => {
                *batch = (*batch / 2).max(1);
                continue;
            }
            _ => {
                return Err(Stop::Fatal(anyhow!(
                    "{}: records {from}..={last_seq}: {status}: {}",
                    client.base,
                    error_of(&text)
                )));
            }
        }
        let r: Ingested = serde_json::from_str(&text).context("the central store's answer")?;
        sent.extend(digests);
        totals.accepted += r.accepted;
        totals.duplicates += r.duplicates;
        totals.lost += r.lost;
        totals.payloads += r.payloads;
        totals.batches += 1;
        if r.next_seq <= from {
            return Err(Stop::Fatal(anyhow!(
                "{}: the central store kept nothing of records {from}..={last_seq} (it now expects {})",
                client.base,
                r.next_seq
            )));
        }
        bar.inc(r.next_seq - from);
        from = r.next_seq;
        head_hash = r.head_hash;
        store.set_sync_cursor(
            &client.base,
            &SyncCursor {
                next_seq: from,
                head_hash: head_hash.clone(),
                time: now_rfc3339(),
            },
        )?;
    }
    let cursor = SyncCursor {
        next_seq: from.max(cursor.next_seq),
        head_hash,
        time: now_rfc3339(),
    };
    store.set_sync_cursor(&client.base, &cursor)?;
    Ok(cursor)
}

/// Refuses to push onto a chain the central store holds that is not this one.
fn check_same_chain(
    store: &Store,
    node: &str,
    cursor: &Cursor,
    end: u64,
    base: Option<&Skip>,
) -> Result<(), Stop> {
    let other = |why: String| {
        Stop::Fatal(anyhow!(
            "the central store's chain of node {node} is not this store's: {why}; push under another id with --node"
        ))
    };
    if cursor.next_seq > end {
        return Err(other(format!(
            "it holds {} records, this store has {end}",
            cursor.next_seq
        )));
    }
    if cursor.next_seq == 0 {
        return Ok(());
    }
    let ours = match store.audit_by_seq(cursor.next_seq - 1)? {
        Some(r) => Some(r.hash),
        // Pruned here since: the base keeps the hash of its last record.
        None => base
            .filter(|b| b.to == cursor.next_seq)
            .map(|b| b.prev_hash.clone()),
    };
    match ours {
        Some(h) if h != cursor.head_hash => Err(other(format!(
            "its record {} has hash {}, this store's has {h}",
            cursor.next_seq - 1,
            cursor.head_hash
        ))),
        // Pruned here and not checkable: the central store still checks every link.
        _ => Ok(()),
    }
}

/// The stored input and output payloads of `records` not in `sent`, base64,
/// each once, with their digests.
fn payloads_of(
    store: &Store,
    records: &[RawRecord],
    sent: &std::collections::HashSet<Digest>,
) -> Result<(Vec<Value>, Vec<Digest>)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for r in records {
        let rec: AuditRecord = serde_json::from_str(&r.body)
            .with_context(|| format!("record {} of this store", r.seq))?;
        for d in std::iter::once(rec.input_digest).chain(rec.output_digest) {
            if sent.contains(&d) || !seen.insert(d.clone()) {
                continue;
            }
            let Some(bytes) = store.payload(&d)? else {
                continue;
            };
            if bytes.len() > MAX_SHIPPED_PAYLOAD {
                tracing::warn!(digest = %d, bytes = bytes.len(), "payload too big to ship; its digest stays in the record");
                continue;
            }
            out.push(json!({
                "digest": d.as_str(),
                "data": base64::engine::general_purpose::STANDARD.encode(&bytes),
            }));
        }
    }
    Ok((out, seen.into_iter().collect()))
}

/// `keel sync status`: this store's node id, chain, and what each central store holds of it.
fn status(store: &Store) -> Result<String> {
    let u = store.audit_usage()?;
    let mut out = String::new();
    let _ = writeln!(out, "node id: {}", store.node_id()?);
    let _ = writeln!(
        out,
        "audit chain: records {}..{} held here{}",
        u.first_seq,
        u.next_seq,
        if u.first_seq > 0 {
            format!(" ({} pruned under the cap)", u.first_seq)
        } else {
            String::new()
        }
    );
    match u.synced_to {
        Some(s) => {
            let _ = writeln!(
                out,
                "shipped: up to seq {s}; {} records not yet shipped",
                u.next_seq.saturating_sub(s)
            );
        }
        None => {
            let _ = writeln!(out, "shipped: never (keel sync push --to URL)");
        }
    }
    Ok(out)
}

/// `keel sync nodes`: the node chains this (central) store holds, each verified.
fn nodes(store: &Store, json: bool) -> Result<String> {
    let chains = store.node_chains()?;
    let mut out = String::new();
    if json {
        for c in &chains {
            let verified = store.verify_node(&c.node);
            let mut v = serde_json::to_value(c)?;
            v["verified"] = json!(verified.is_ok());
            if let Err(e) = verified {
                v["error"] = json!(e.to_string());
            }
            let _ = writeln!(out, "{v}");
        }
        return Ok(out);
    }
    if chains.is_empty() {
        return Ok("no node has pushed its audit chain to this store\n".into());
    }
    let _ = writeln!(
        out,
        "{:<32} {:>8} {:>8} {:>6} {:>10}  {:<20}  chain",
        "node", "records", "next", "lost", "duplicates", "last push"
    );
    for c in &chains {
        let verdict = match store.verify_node(&c.node) {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("BROKEN: {e}"),
        };
        let _ = writeln!(
            out,
            "{:<32} {:>8} {:>8} {:>6} {:>10}  {:<20}  {verdict}",
            c.node,
            c.records,
            c.next_seq,
            c.lost(),
            c.duplicates,
            c.last_push
        );
    }
    Ok(out)
}
