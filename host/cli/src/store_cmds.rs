//! The CLI's store commands: `plugin add|ls|retire`, `pipeline ls|show|retention`
//! and `audit log|show|verify|export|expire`. The operations shared with the
//! daemon (resolving, deploying, recording) live in keel-ops.

use anyhow::{Context, Result, bail};
use keel_ops::get_deployed;
pub use keel_ops::{
    Ending, Hashing, Resolver, canonicalize, finish, load_monitor_states, materialize, open,
    read_input, record, save_monitor_states,
};
use keel_runtime::Runtime;
use keel_store::{
    AuditFilter, Digest, Outcome, PayloadStatus, StageRole, State, Store, StoreError,
};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `keel plugin add`: validates the component, stores it, tags it.
pub fn plugin_add(
    store: &Store,
    rt: &Runtime,
    file: &Path,
    name: &str,
    version: &str,
    state: State,
    sig: Option<PathBuf>,
) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let offered = match sig {
        Some(p) => Some(keel_ops::trust::Offered {
            text: std::fs::read_to_string(&p)
                .with_context(|| format!("reading {}", p.display()))?,
            source: p.display().to_string(),
        }),
        None => keel_ops::trust::Offered::read_if_exists(&keel_ops::trust::sig_path(file))?,
    };
    let (digest, s) =
        keel_ops::plugin_add_signed(store, rt, &bytes, name, version, state, offered.as_ref())
            .with_context(|| format!("adding {}", file.display()))?;
    println!("{name}@{version} {digest} ({}, {state})", s.kind);
    Ok(())
}

/// `keel plugin ls`.
pub fn plugin_ls(store: &Store) -> Result<()> {
    let tags = store.list_plugins()?;
    if tags.is_empty() {
        println!(
            "no plugins in the store (add one with `keel plugin add FILE --name N --version V`)"
        );
    }
    println!(
        "{:<28} {:<10} {:<10} {:<11} {:<20} added",
        "plugin", "version", "kind", "state", "digest"
    );
    for t in tags {
        println!(
            "{:<28} {:<10} {:<10} {:<11} {:<20} {}",
            t.name,
            t.version,
            t.meta.kind,
            t.state.to_string(),
            t.digest.short(),
            t.added_at
        );
    }
    Ok(())
}

/// `keel plugin retire N@V` (or another state).
pub fn plugin_set_state(store: &Store, reference: &str, state: State) -> Result<()> {
    let (name, version) = keel_store::split_reference(reference)?;
    store.set_state(name, version, state)?;
    println!("{name}@{version}: {state}");
    Ok(())
}

/// Filters for `keel audit log`.
pub struct LogArgs {
    pub pipeline: Option<String>,
    pub since: Option<String>,
    pub outcome: Option<String>,
    pub limit: usize,
    pub json: bool,
}

fn parse_outcome(s: &str) -> Result<Outcome> {
    Ok(match s {
        "ok" => Outcome::Ok,
        "error" => Outcome::Error,
        "trap" => Outcome::Trap,
        "timeout" => Outcome::Timeout,
        "rejected" => Outcome::Rejected,
        other => bail!("unknown outcome `{other}` (ok, error, trap, timeout, rejected)"),
    })
}

/// `keel audit log`.
pub fn audit_log(store: &Store, a: &LogArgs) -> Result<()> {
    let filter = AuditFilter {
        pipeline: a.pipeline.clone(),
        since: a
            .since
            .as_deref()
            .map(|s| keel_store::parse_rfc3339(s).with_context(|| format!("--since {s}")))
            .transpose()?,
        outcome: a.outcome.as_deref().map(parse_outcome).transpose()?,
        limit: Some(a.limit),
    };
    let records = store.audit_log(&filter)?;
    if a.json {
        for r in &records {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    println!(
        "{:>5}  {:<20} {:<26} {:<22} {:<8} {:>9} {:>9} {:>8}  alerts",
        "seq", "time", "id", "pipeline", "outcome", "rows in", "rows out", "findings"
    );
    for r in &records {
        let alerts: Vec<&str> = r
            .monitor_verdicts
            .iter()
            .filter(|m| m.alert)
            .map(|m| m.monitor.as_str())
            .collect();
        println!(
            "{:>5}  {:<20} {:<26} {:<22} {:<8} {:>9} {:>9} {:>8}  {}",
            r.seq,
            r.time.chars().take(19).collect::<String>(),
            r.id,
            format!("{}@{}", r.pipeline.name, r.pipeline.version),
            r.outcome.to_string(),
            r.rows_in,
            r.rows_out,
            r.findings.len(),
            alerts.join(", ")
        );
    }
    Ok(())
}

fn payload(store: &Store, d: &Digest) -> String {
    match store.payload_status(d) {
        Ok(PayloadStatus::Present { size }) => format!("payload stored, {size} bytes"),
        Ok(PayloadStatus::Expired { at }) => format!("payload expired {at}"),
        Ok(PayloadStatus::NotStored) => "digest only".into(),
        Err(e) => format!("payload unknown: {e}"),
    }
}

/// `keel audit show ID`: the lineage of one invocation.
pub fn audit_show(store: &Store, id: &str, json: bool) -> Result<()> {
    let r = store
        .audit_get(id)?
        .with_context(|| format!("no audit record `{id}` (list them with `keel audit log`)"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "record   {} (seq {}) · {} · {}",
        r.id, r.seq, r.time, r.outcome
    );
    if let Some(e) = &r.error {
        println!("error    {e}");
    }
    println!(
        "pipeline {}@{} {}",
        r.pipeline.name, r.pipeline.version, r.pipeline.digest
    );
    println!(
        "input    {} · {} rows · {}",
        r.input_digest,
        r.rows_in,
        payload(store, &r.input_digest)
    );
    for (role, arrow) in [
        (StageRole::Validator, "check"),
        (StageRole::Stage, "  →"),
        (StageRole::Monitor, "watch"),
    ] {
        for s in r.stages.iter().filter(|s| s.role == role) {
            let mem = s
                .peak_memory_bytes
                .map_or_else(String::new, |b| format!(" {:.1} MiB", b as f64 / 1048576.0));
            println!(
                "  {arrow} {:<16} {}@{} {} config {} {:>9.1} ms{mem} {}",
                s.name,
                s.plugin,
                s.plugin_version,
                s.plugin_digest.short(),
                s.config_digest.short(),
                s.duration_us as f64 / 1e3,
                s.outcome
            );
            if let Some(e) = &s.error {
                println!("        {e}");
            }
        }
    }
    match &r.output_digest {
        Some(d) => println!("output   {d} · {} rows", r.rows_out),
        None => println!("output   none"),
    }
    if !r.findings.is_empty() {
        println!("findings (first {}):", r.findings.len());
        for f in r.findings.iter().take(10) {
            let row = f.row.map_or_else(String::new, |x| format!("row {x}: "));
            println!(
                "  {}/{} {:?}: {row}{}",
                f.validator, f.rule, f.severity, f.message
            );
        }
    }
    for m in &r.monitor_verdicts {
        println!(
            "monitor  {}: {} {}",
            m.monitor,
            if m.alert { "ALERT" } else { "ok" },
            m.summary
        );
    }
    if let Some(s) = &r.serving {
        let route = s["route"].as_str().unwrap_or("?");
        match s["shadow_of"].as_str() {
            Some(of) => println!(
                "served   {route} of {of} (primary {}); answers identical: {}",
                s["primary_version"].as_str().unwrap_or("?"),
                s["compare"]["identical"]
            ),
            None => println!("served   by keel serve, route {route}"),
        }
    }
    println!(
        "chain    prev {} hash {}",
        short(&r.prev_hash),
        short(&r.hash)
    );
    Ok(())
}

fn short(h: &str) -> &str {
    &h[..h.len().min(16)]
}

/// `keel audit verify`: `Ok(Err(message))` when the chain is broken.
pub fn audit_verify(store: &Store) -> Result<std::result::Result<String, String>> {
    match store.verify() {
        Ok(r) => Ok(Ok(format!(
            "audit chain intact: {} records, head {}",
            r.records, r.head_hash
        ))),
        Err(StoreError::Chain(c)) => Ok(Err(format!(
            "audit chain broken at record seq {}{}: {}",
            c.seq,
            c.id.map_or_else(String::new, |id| format!(" (id {id})")),
            c.reason
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `keel audit export`.
pub fn audit_export(store: &Store, format: &str, output: Option<&PathBuf>) -> Result<u64> {
    let mut out: Box<dyn Write> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let n = match format {
        "jsonl" => store.export_jsonl(&mut out)?,
        "openlineage" => store.export_openlineage(&mut out)?,
        other => bail!("unknown export format `{other}` (jsonl, openlineage)"),
    };
    out.flush()?;
    Ok(n)
}

/// `keel pipeline ls`.
pub fn pipeline_ls(store: &Store) -> Result<()> {
    let list = store.list_pipelines()?;
    if list.is_empty() {
        println!("no pipelines deployed (deploy one with `keel pipeline deploy FILE.toml`)");
        return Ok(());
    }
    println!(
        "{:<24} {:<10} {:<20} {:>7}  added",
        "pipeline", "version", "digest", "plugins"
    );
    for p in list {
        println!(
            "{:<24} {:<10} {:<20} {:>7}  {}",
            p.name,
            p.version,
            p.digest.short(),
            p.plugins.len(),
            p.added_at
        );
    }
    Ok(())
}

/// `keel pipeline show NAME[@VERSION]`.
pub fn pipeline_show(store: &Store, reference: &str) -> Result<()> {
    let p = get_deployed(store, reference)?;
    println!(
        "# {}@{} {} (deployed {})",
        p.name, p.version, p.digest, p.added_at
    );
    for pl in &p.plugins {
        let tags: Vec<String> = store
            .list_plugins()?
            .into_iter()
            .filter(|t| t.digest == pl.digest)
            .map(|t| format!("{}@{} ({})", t.name, t.version, t.state))
            .collect();
        println!("# {:<28} {} {}", pl.role, pl.digest, tags.join(", "));
    }
    println!("{}", p.spec_toml);
    Ok(())
}
/// `keel pipeline retention NAME POLICY`: `all`, `digests-only` or `sample=RATE`.
pub fn set_retention(store: &Store, pipeline: &str, policy: &str) -> Result<()> {
    let retention = match policy {
        "all" => keel_store::Retention::All,
        "digests-only" => keel_store::Retention::DigestsOnly,
        other => match other.strip_prefix("sample=").map(str::parse::<f64>) {
            Some(Ok(rate)) if (0.0..=1.0).contains(&rate) => keel_store::Retention::Sample { rate },
            _ => bail!(
                "retention `{other}`: expected all, digests-only or sample=RATE with RATE in 0..=1"
            ),
        },
    };
    store.set_retention(pipeline, retention)?;
    store.flush()?;
    println!("{pipeline}: payloads {policy}");
    Ok(())
}

/// `keel audit expire --before T`: drops payload bytes, keeps every record.
pub fn expire(store: &Store, before: &str) -> Result<()> {
    let cutoff = keel_store::parse_rfc3339(before).with_context(|| format!("--before {before}"))?;
    let r = store.expire_payloads(cutoff)?;
    store.flush()?;
    println!(
        "expired {} payloads ({} bytes); audit records untouched",
        r.payloads, r.bytes
    );
    Ok(())
}
