//! The CLI's side of the store: recording each `keel run` in the audit log,
//! resolving `plugin = "name@version"` through the registry, and the
//! `plugin add|ls|retire` and `audit log|show|verify|export` commands.

use crate::render;
use anyhow::{Context, Result, bail};
use keel_runtime::pipeline::{
    MonitorState, Pipeline, PluginDirs, PluginResolver, RunSummary, severity_name,
};
use keel_runtime::{Outcome as RunOutcome, Plugin, Runtime};
use keel_store::{
    AuditFilter, AuditRecord, Digest, FindingEntry, MonitorVerdict, Outcome, PayloadStatus,
    PipelineRef, PluginMeta, Severity, StageEntry, StageRole, State, Store, StoreError,
};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
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
        if let Some(hex) = reference.strip_prefix("sha256:") {
            // A deployed spec names its plugins by digest.
            let store = self.store.ok_or("a deployed pipeline needs the store")?;
            let digest: Digest = format!("sha256:{hex}")
                .parse()
                .map_err(|e: StoreError| e.to_string())?;
            return match store.plugin_bytes(&digest) {
                Ok(Some(bytes)) => Ok((bytes, reference.to_string())),
                Ok(None) => Err(format!("plugin {reference} is not in the store")),
                Err(e) => Err(e.to_string()),
            };
        }
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
        let at = summary
            .stage_time
            .iter()
            .position(|(name, _, _)| *name == u.name);
        let duration = at.map_or(0, |i| summary.stage_time[i].2.as_micros() as u64);
        let peak = at
            .and_then(|i| summary.stage_peak.get(i))
            .filter(|p| **p > 0)
            .map(|p| *p as u64);
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
            peak_memory_bytes: if u.role == "stage" { peak } else { None },
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
        // One verdict per window closed during the run, then the open window's
        // (or, unwindowed, the whole run's).
        for w in &m.windows {
            r.monitor_verdicts.push(MonitorVerdict {
                monitor: m.name.clone(),
                alert: w.report.alert,
                summary: w.report.summary.clone(),
                metrics: render::metrics_json(&w.report),
                window: serde_json::to_value(&w.window).ok(),
            });
        }
        r.alerts
            .extend(m.alerts.iter().filter_map(|a| serde_json::to_value(a).ok()));
        // An open window with no rows yet has nothing to say.
        if m.error.is_none() && m.window.as_ref().is_some_and(|w| w.partial && w.rows == 0) {
            continue;
        }
        let (alert, text, metrics) = match (&m.report, &m.error) {
            (Some(rep), _) => (rep.alert, rep.summary.clone(), render::metrics_json(rep)),
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
            window: m
                .window
                .as_ref()
                .filter(|w| w.partial)
                .and_then(|w| serde_json::to_value(w).ok()),
        });
    }
    r
}

/// Saved monitor states of `pipeline` that belong to `identity` (others are
/// from another pipeline version and are ignored, with a note).
pub fn load_monitor_states(
    store: &Store,
    pipeline: &Pipeline,
    identity: &str,
) -> Result<HashMap<String, MonitorState>> {
    let mut out = HashMap::new();
    for m in &pipeline.spec().monitors {
        let Some(bytes) = store.monitor_state(&pipeline.spec().name, &m.name)? else {
            continue;
        };
        let state: MonitorState = serde_json::from_slice(&bytes)
            .with_context(|| format!("monitor `{}`: the saved state is not readable", m.name))?;
        if state.identity == identity {
            out.insert(m.name.clone(), state);
        } else {
            tracing::info!(monitor = %m.name, "saved monitor state is from another version of the pipeline; starting afresh");
        }
    }
    Ok(out)
}

/// Saves each monitor's state and appends its window reports to its history.
pub fn save_monitor_states(
    store: &Store,
    pipeline: &Pipeline,
    summary: &RunSummary,
    identity: &str,
) -> Result<()> {
    let name = &pipeline.spec().name;
    for m in &summary.monitors {
        for w in &m.windows {
            store.append_monitor_report(name, &m.name, &render::window_report_json(w))?;
        }
        if let Some(state) = &m.state {
            let state = MonitorState {
                identity: identity.to_string(),
                ..state.clone()
            };
            store.put_monitor_state(name, &m.name, &serde_json::to_vec(&state)?)?;
        }
    }
    Ok(())
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

/// A spec made self-contained: plugins named by digest, reference files by
/// payload digest, grant paths absolute. Its digest is the pipeline's digest
/// whether it is deployed or run from its file.
pub struct Canonical {
    pub text: String,
    pub plugins: Vec<(String, Digest)>,
    /// (file name in the canonical spec, bytes) of every reference file.
    pub files: Vec<(String, Vec<u8>)>,
    /// Plugin bytes by digest.
    pub plugin_bytes: Vec<(Digest, Vec<u8>)>,
}

fn file_entry(dir: &Path, value: &str) -> Result<(String, Vec<u8>)> {
    if value.starts_with("sha256:") {
        bail!("`{value}` is already a stored file");
    }
    let path = dir.join(value);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("csv");
    Ok((format!("{}.{ext}", Digest::of(&bytes)), bytes))
}

/// Canonicalises the spec at `spec_path` (resolving plugins with `resolver`).
pub fn canonicalize(
    spec_path: &Path,
    text: &str,
    resolver: &dyn PluginResolver,
) -> Result<Canonical> {
    let dir = spec_path.parent().unwrap_or(Path::new("."));
    let mut table: toml::Table =
        toml::from_str(text).with_context(|| format!("parsing {}", spec_path.display()))?;
    let mut out = Canonical {
        text: String::new(),
        plugins: Vec::new(),
        files: Vec::new(),
        plugin_bytes: Vec::new(),
    };
    if let Some(toml::Value::String(r)) = table.get("reference").cloned() {
        let (name, bytes) = file_entry(dir, &r)?;
        table.insert("reference".into(), toml::Value::String(name.clone()));
        out.files.push((name, bytes));
    }
    for (section, role) in [
        ("validators", "validator"),
        ("stages", "stage"),
        ("monitors", "monitor"),
    ] {
        let Some(toml::Value::Array(items)) = table.get_mut(section) else {
            continue;
        };
        for item in items.iter_mut() {
            let Some(t) = item.as_table_mut() else {
                continue;
            };
            let name = t
                .get("name")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            let reference = t
                .get("plugin")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            let (bytes, _) = resolver
                .resolve(&reference, dir)
                .map_err(|e| anyhow::anyhow!("{section} `{name}`: {e}"))?;
            let digest = Digest::of(&bytes);
            t.insert("plugin".into(), toml::Value::String(digest.to_string()));
            out.plugins.push((format!("{role}:{name}"), digest.clone()));
            out.plugin_bytes.push((digest, bytes));
            if let Some(toml::Value::String(r)) = t.get("reference").cloned() {
                let (file, bytes) = file_entry(dir, &r)?;
                t.insert("reference".into(), toml::Value::String(file.clone()));
                out.files.push((file, bytes));
            }
            if let Some(toml::Value::Array(grants)) = t.get_mut("grants") {
                for g in grants.iter_mut().filter_map(|g| g.as_table_mut()) {
                    if let Some(toml::Value::String(h)) = g.get("host").cloned() {
                        let abs =
                            std::path::absolute(dir.join(&h)).unwrap_or_else(|_| dir.join(&h));
                        g.insert(
                            "host".into(),
                            toml::Value::String(abs.display().to_string()),
                        );
                    }
                }
            }
        }
    }
    out.text = toml::to_string(&table).context("writing the canonical spec")?;
    Ok(out)
}

/// `keel pipeline deploy`: stores plugins, reference files and the canonical spec.
pub fn pipeline_deploy(
    store: &Store,
    rt: &Runtime,
    spec_path: &Path,
    dirs: PluginDirs,
) -> Result<()> {
    let text = std::fs::read_to_string(spec_path)
        .with_context(|| format!("reading {}", spec_path.display()))?;
    let spec = keel_runtime::spec::PipelineSpec::parse(&text, spec_path)?;
    let resolver = Resolver {
        store: Some(store),
        dirs,
    };
    let canonical = canonicalize(spec_path, &text, &resolver)?;
    for (digest, bytes) in &canonical.plugin_bytes {
        // Only components that load here are stored.
        Plugin::load(rt, bytes, digest.as_str())
            .with_context(|| format!("checking plugin {digest}"))?;
        store.put_plugin(bytes)?;
    }
    for (_, bytes) in &canonical.files {
        store.put_payload(bytes)?;
    }
    let digest = store.put_pipeline(
        &spec.name,
        &spec.version,
        &canonical.text,
        &canonical.plugins,
    )?;
    store.flush()?;
    println!(
        "{}@{} {digest} ({} plugins, {} reference files)",
        spec.name,
        spec.version,
        canonical.plugins.len(),
        canonical.files.len()
    );
    Ok(())
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

fn get_deployed(store: &Store, reference: &str) -> Result<keel_store::PipelineRecord> {
    let (name, version) = match reference.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (reference, None),
    };
    store
        .get_pipeline(name, version)?
        .with_context(|| format!("no deployed pipeline `{reference}` (see `keel pipeline ls`)"))
}

/// Writes a deployed pipeline's spec and reference files into `dir`, ready
/// for `Pipeline::load`; returns the spec's path and its canonical text.
pub fn materialize(store: &Store, reference: &str, dir: &Path) -> Result<(PathBuf, String)> {
    let p = get_deployed(store, reference)?;
    let table: toml::Table = toml::from_str(&p.spec_toml)?;
    let mut files: Vec<String> = Vec::new();
    if let Some(r) = table.get("reference").and_then(|v| v.as_str()) {
        files.push(r.to_string());
    }
    if let Some(toml::Value::Array(ms)) = table.get("monitors") {
        files.extend(ms.iter().filter_map(|m| {
            m.get("reference")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        }));
    }
    for f in files {
        let digest: Digest = f.rsplit_once('.').map_or(f.as_str(), |(d, _)| d).parse()?;
        let bytes = store.payload(&digest)?.with_context(|| {
            format!("reference file {f} of {reference} is no longer in the store")
        })?;
        std::fs::write(dir.join(&f), bytes)?;
    }
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, &p.spec_toml)?;
    Ok((path, p.spec_toml))
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
