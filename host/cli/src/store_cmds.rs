//! The CLI's side of the store: recording each `keel run` in the audit log,
//! resolving `plugin = "name@version"` through the registry, and the
//! `plugin add|ls|retire` and `audit log|show|verify|export` commands.

use anyhow::{Context, Result, bail};
use keel_runtime::pipeline::{Pipeline, PluginDirs, PluginResolver, RunSummary, severity_name};
use keel_runtime::{Outcome as RunOutcome, Plugin, Runtime};
use keel_store::{
    AuditFilter, AuditRecord, Digest, FindingEntry, MonitorVerdict, Outcome, PayloadStatus,
    PipelineRef, PluginMeta, Severity, StageEntry, StageRole, State, Store, StoreError,
};
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Opens the store at `dir` (or the default location).
pub fn open(dir: Option<&Path>) -> Result<Store> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => Store::default_dir().context("locating the store")?,
    };
    Store::open(&dir).with_context(|| format!("opening the store at {}", dir.display()))
}

/// Plugin references: `name@version` from the store, anything else from
/// the plugin directories (or as a path).
pub struct Resolver<'a> {
    pub store: Option<&'a Store>,
    pub dirs: PluginDirs,
}

impl PluginResolver for Resolver<'_> {
    fn resolve(&self, reference: &str, spec_dir: &Path) -> Result<(Vec<u8>, String), String> {
        let is_path = reference.ends_with(".wasm") || reference.contains('/');
        match (self.store, reference.contains('@') && !is_path) {
            (Some(store), true) => store
                .resolve_for_new_pipeline(reference)
                .map(|r| (r.bytes, reference.to_string()))
                .map_err(|e| e.to_string()),
            (None, true) => Err(format!(
                "`{reference}` names a stored plugin, but auditing is off (--no-audit) so no store is open"
            )),
            _ => self.dirs.resolve(reference, spec_dir),
        }
    }
}

/// A writer that hashes everything written through it (the output digest).
pub struct Hashing<W> {
    inner: W,
    hash: Arc<Mutex<Sha256>>,
}

impl<W> Hashing<W> {
    pub fn new(inner: W) -> (Hashing<W>, Arc<Mutex<Sha256>>) {
        let hash = Arc::new(Mutex::new(Sha256::new()));
        (
            Hashing {
                inner,
                hash: hash.clone(),
            },
            hash,
        )
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Ok(mut h) = self.hash.lock() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The digest of a finished hash.
pub fn finish(hash: &Arc<Mutex<Sha256>>) -> Option<Digest> {
    let h = hash.lock().ok()?.clone();
    Some(Digest::from_hash(h.finalize().into()))
}

/// The digest of a file and, with `keep`, its bytes (read once for both).
pub fn read_input(path: &Path, keep: bool) -> Result<(Digest, Option<Vec<u8>>)> {
    if keep {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        return Ok((Digest::of(&bytes), Some(bytes)));
    }
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let (mut w, hash) = Hashing::new(std::io::sink());
    std::io::copy(&mut f, &mut w).with_context(|| format!("reading {}", path.display()))?;
    Ok((finish(&hash).context("hashing the input")?, None))
}

fn outcome(o: RunOutcome) -> Outcome {
    match o {
        RunOutcome::Ok => Outcome::Ok,
        RunOutcome::Error => Outcome::Error,
        RunOutcome::Trap => Outcome::Trap,
        RunOutcome::Timeout => Outcome::Timeout,
        RunOutcome::Rejected => Outcome::Rejected,
    }
}

/// How a run ended, for its record.
pub struct Ending {
    pub outcome: RunOutcome,
    pub error: Option<String>,
    /// The stage that failed, if one did.
    pub failed_stage: Option<String>,
}

/// Builds the audit record of one `keel run`.
pub fn record(
    pipeline: &Pipeline,
    spec_text: &str,
    summary: &RunSummary,
    input_digest: Digest,
    output_digest: Option<Digest>,
    ending: &Ending,
) -> AuditRecord {
    let uses = pipeline.plugins();
    let digest_of = |s: &str| {
        s.parse::<Digest>()
            .unwrap_or_else(|_| Digest::of(s.as_bytes()))
    };
    let roles: Vec<(String, Digest)> = uses
        .iter()
        .map(|u| (format!("{}:{}", u.role, u.name), digest_of(&u.digest)))
        .collect();
    let spec = pipeline.spec();
    let mut r = AuditRecord::new(
        PipelineRef {
            name: spec.name.clone(),
            version: spec.version.clone(),
            digest: keel_store::digest_pipeline(spec_text, &roles),
        },
        input_digest,
    );
    r.outcome = outcome(ending.outcome);
    r.error = ending.error.clone();
    r.output_digest = output_digest;
    r.rows_in = summary.rows_in;
    r.rows_out = summary.rows_out;
    for u in &uses {
        let duration = summary
            .stage_time
            .iter()
            .find(|(name, _, _)| *name == u.name)
            .map_or(0, |(_, _, t)| t.as_micros() as u64);
        let failed = ending.failed_stage.as_deref() == Some(u.name.as_str());
        r.stages.push(StageEntry {
            name: u.name.clone(),
            role: match u.role {
                "validator" => StageRole::Validator,
                "monitor" => StageRole::Monitor,
                _ => StageRole::Stage,
            },
            plugin: u.plugin.clone(),
            plugin_version: u.version.clone(),
            plugin_digest: digest_of(&u.digest),
            config_digest: digest_of(&u.config_digest),
            duration_us: duration,
            fuel_used: None,
            peak_memory_bytes: None,
            outcome: if failed {
                outcome(ending.outcome)
            } else {
                Outcome::Ok
            },
            error: if failed { ending.error.clone() } else { None },
        });
    }
    for (f, _line) in &summary.examples {
        r.findings.push(FindingEntry {
            validator: f.validator.clone(),
            rule: f.finding.rule.clone(),
            column: f.finding.column.clone(),
            row: f.input_row,
            severity: match severity_name(f.finding.severity) {
                "info" => Severity::Info,
                "warning" => Severity::Warning,
                _ => Severity::Error,
            },
            message: f.finding.message.clone(),
        });
    }
    for m in &summary.monitors {
        let (alert, text, metrics) = match (&m.report, &m.error) {
            (Some(rep), _) => (
                rep.alert,
                rep.summary.clone(),
                serde_json::Value::Array(
                    rep.metrics
                        .iter()
                        .map(|x| {
                            serde_json::json!({"column": x.column, "name": x.name,
                                "value": finite(x.value), "threshold": x.threshold,
                                "p_value": x.p_value, "alert": x.alert})
                        })
                        .collect(),
                ),
            ),
            (None, e) => (
                false,
                format!("monitor failed: {}", e.clone().unwrap_or_default()),
                serde_json::Value::Null,
            ),
        };
        r.monitor_verdicts.push(MonitorVerdict {
            monitor: m.name.clone(),
            alert,
            summary: text,
            metrics,
        });
    }
    r
}

fn finite(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into)
}

/// `keel plugin add`: validates the component, stores it, tags it.
pub fn plugin_add(
    store: &Store,
    rt: &Runtime,
    file: &Path,
    name: &str,
    version: &str,
    state: State,
) -> Result<()> {
    let plugin =
        Plugin::load_file(rt, file).with_context(|| format!("checking {}", file.display()))?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let digest = store.put_plugin(&bytes)?;
    let s = plugin.summary();
    store.tag_plugin(
        name,
        version,
        &digest,
        PluginMeta {
            kind: s.kind.as_str().to_string(),
            description: s.description.clone(),
            contract: Some(keel_runtime::CONTRACT.to_string()),
            config_schema: Some(s.config_schema.to_string()),
        },
    )?;
    if store.lifecycle(name, version)? != state {
        store.set_state(name, version, state)?;
    }
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
            println!(
                "  {arrow} {:<16} {}@{} {} config {} {:>9.1} ms {}",
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
