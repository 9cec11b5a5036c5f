//! `keel audit`: the audit log — list and show records, walk the hash chain,
//! export records, expire payloads, and the store's size cap.

use super::Globals;
use crate::exit::{self, Failure, fail};
use anyhow::{Context, Result, anyhow, bail};
use keel_store::{
    AuditFilter, Digest, Outcome, PayloadStatus, PruneReport, StageRole, Store, StoreError,
};
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// List invocations, newest first.
    Log(LogArgs),
    /// The lineage of one invocation: input, each plugin with version and digest, output, verdicts.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Walk the hash chain; exits 5 naming the first bad record.
    Verify,
    /// Remove payloads stored before a time; records and the chain stay intact.
    Expire {
        /// RFC 3339 time or a date.
        #[arg(long)]
        before: String,
    },
    /// Show what records and payloads take; with SIZE (64MiB, 1GB, off), set the
    /// store's cap: beyond it the oldest payloads go first, then the oldest records
    /// (their last hash is kept, so the chain still verifies).
    Cap { size: Option<String> },
    /// Export records as JSON Lines or OpenLineage RunEvents.
    Export {
        #[arg(long, value_parser = ["jsonl", "openlineage"], default_value = "jsonl")]
        format: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

// Filters for `keel audit log` (a plain comment: a doc comment here would
// become the subcommand's about text).
#[derive(clap::Args)]
pub struct LogArgs {
    #[arg(long)]
    pipeline: Option<String>,
    /// RFC 3339 time or a date (2026-11-22).
    #[arg(long)]
    since: Option<String>,
    /// ok, error, trap, timeout or rejected.
    #[arg(long)]
    outcome: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// One JSON record per line.
    #[arg(long)]
    json: bool,
}

impl AuditCommand {
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        let store = globals.store()?;
        match self {
            AuditCommand::Log(a) => Ok(audit_log(&store, &a)?),
            AuditCommand::Show { id, json } => Ok(audit_show(&store, &id, json)?),
            AuditCommand::Verify => match audit_verify(&store)? {
                Ok(message) => {
                    outln!("{message}");
                    Ok(())
                }
                Err(message) => Err(fail(exit::INTEGRITY, anyhow!(message))),
            },
            AuditCommand::Expire { before } => {
                expire(&store, &before).map_err(|e| fail(exit::USAGE, e))
            }
            AuditCommand::Cap { size } => {
                out!("{}", cap(&store, size.as_deref())?);
                Ok(())
            }
            AuditCommand::Export { format, output } => {
                let n = audit_export(&store, &format, output.as_ref())?;
                errln!("exported {n} records");
                Ok(())
            }
        }
    }
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
fn audit_log(store: &Store, a: &LogArgs) -> Result<()> {
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
            outln!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    outln!(
        "{:>5}  {:<20} {:<26} {:<22} {:<8} {:>9} {:>9} {:>8}  alerts",
        "seq",
        "time",
        "id",
        "pipeline",
        "outcome",
        "rows in",
        "rows out",
        "findings"
    );
    for r in &records {
        let alerts: Vec<&str> = r
            .monitor_verdicts
            .iter()
            .filter(|m| m.alert)
            .map(|m| m.monitor.as_str())
            .collect();
        outln!(
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
fn audit_show(store: &Store, id: &str, json: bool) -> Result<()> {
    let r = store
        .audit_get(id)?
        .with_context(|| format!("no audit record `{id}` (list them with `keel audit log`)"))?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    outln!(
        "record   {} (seq {}) · {} · {}",
        r.id,
        r.seq,
        r.time,
        r.outcome
    );
    if let Some(e) = &r.error {
        outln!("error    {e}");
    }
    outln!(
        "pipeline {}@{} {}",
        r.pipeline.name,
        r.pipeline.version,
        r.pipeline.digest
    );
    outln!(
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
            outln!(
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
                outln!("        {e}");
            }
        }
    }
    match &r.output_digest {
        Some(d) => outln!("output   {d} · {} rows", r.rows_out),
        None => outln!("output   none"),
    }
    if !r.findings.is_empty() {
        outln!("findings (first {}):", r.findings.len());
        for f in r.findings.iter().take(10) {
            let row = f.row.map_or_else(String::new, |x| format!("row {x}: "));
            outln!(
                "  {}/{} {:?}: {row}{}",
                f.validator,
                f.rule,
                f.severity,
                f.message
            );
        }
    }
    for m in &r.monitor_verdicts {
        outln!(
            "monitor  {}: {} {}",
            m.monitor,
            if m.alert { "ALERT" } else { "ok" },
            m.summary
        );
    }
    if let Some(s) = &r.serving {
        let route = s["route"].as_str().unwrap_or("?");
        match s["shadow_of"].as_str() {
            Some(of) => outln!(
                "served   {route} of {of} (primary {}); answers identical: {}",
                s["primary_version"].as_str().unwrap_or("?"),
                s["compare"]["identical"]
            ),
            None => outln!("served   by keel serve, route {route}"),
        }
    }
    outln!(
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
fn audit_verify(store: &Store) -> Result<std::result::Result<String, String>> {
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
fn audit_export(store: &Store, format: &str, output: Option<&PathBuf>) -> Result<u64> {
    let mut out: Box<dyn Write> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(crate::out::Stdout)),
    };
    let n = match format {
        "jsonl" => store.export_jsonl(&mut out)?,
        "openlineage" => store.export_openlineage(&mut out)?,
        other => bail!("unknown export format `{other}` (jsonl, openlineage)"),
    };
    out.flush()?;
    Ok(n)
}

/// `keel audit expire --before T`: drops payload bytes, keeps every record.
fn expire(store: &Store, before: &str) -> Result<()> {
    let cutoff = keel_store::parse_rfc3339(before).with_context(|| format!("--before {before}"))?;
    let r = store.expire_payloads(cutoff)?;
    store.flush()?;
    outln!(
        "expired {} payloads ({} bytes); audit records untouched",
        r.payloads,
        r.bytes
    );
    Ok(())
}

/// Parses `64MiB`, `500MB`, `1GiB`, `4096` (bytes).
fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow!("size {s:?}: expected a number and a unit, like 64MiB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => bail!("size {s:?}: unknown unit {other:?} (B, KB, KiB, MB, MiB, GB, GiB)"),
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        bail!("size {s:?} is out of range");
    }
    Ok(bytes as u64)
}

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / (1024.0 * 1024.0))
}

/// `keel audit cap [SIZE|off]`: shows the usage, or sets the cap and enforces it.
fn cap(store: &Store, size: Option<&str>) -> Result<String> {
    let mut out = String::new();
    if let Some(size) = size {
        let cap = match size {
            "off" | "none" => None,
            s => Some(parse_size(s)?),
        };
        let r = store.set_audit_cap(cap)?;
        describe_prune(&mut out, &r);
    }
    let u = store.audit_usage()?;
    let _ = writeln!(
        out,
        "audit store: {} ({} of records, {} of predictions, {} of payloads), cap {}",
        mib(u.total_bytes()),
        mib(u.record_bytes),
        mib(u.prediction_bytes),
        mib(u.payload_bytes),
        u.cap_bytes.map_or_else(|| "none".to_owned(), mib)
    );
    let _ = writeln!(
        out,
        "records held: {}..{}{}",
        u.first_seq,
        u.next_seq,
        if u.first_seq > 0 {
            format!(
                " (0..{} pruned; the chain verifies from the hash kept for them)",
                u.first_seq
            )
        } else {
            String::new()
        }
    );
    Ok(out)
}

fn describe_prune(out: &mut String, r: &PruneReport) {
    if r.is_empty() {
        let _ = writeln!(out, "nothing to prune");
        return;
    }
    let _ = writeln!(
        out,
        "pruned: {} payloads ({}), {} records ({}) with {} predictions ({})",
        r.payloads,
        mib(r.payload_bytes),
        r.records,
        mib(r.record_bytes),
        r.predictions,
        mib(r.prediction_bytes)
    );
    if r.unsynced_records > 0 {
        let _ = writeln!(
            out,
            "warning: {} of those records had not been shipped (keel sync push)",
            r.unsynced_records
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1.5 KB").unwrap(), 1500);
        assert_eq!(parse_size("2gib").unwrap(), 2 << 30);
        for bad in ["", "MiB", "12 parsecs", "0", "-1MB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
