//! `keel replay`: re-runs recorded inputs through the deployed pipeline
//! version that produced them and checks the output digests match (runs are
//! deterministic: virtual clocks, seeded randomness, canonical NaNs); with
//! `--with STAGE=PLUGIN@VERSION` (or `STAGE=MODEL@VERSION`), also runs a candidate version on the same
//! inputs and reports what would change: rows, per-column max difference,
//! monitor verdicts. This is how a candidate is tried on production traffic.

use super::Globals;
use crate::exit::{self, Failure, fail};
use anyhow::{Context, Result, bail};
use keel_algos::performance::monitor::PerformanceConfig;
use keel_data::io::{BatchWriter, Format};
use keel_data::{Batch, Value};
use keel_ops::feedback;
use keel_ops::record::PredictionPlan;
use keel_ops::source::{self, Spec, Trust};
use keel_ops::{Hashing, Resolver, finish};
use keel_runtime::Runtime;
use keel_runtime::pipeline::{Pipeline, PluginDirs, RunOptions};
use keel_runtime::spec::PipelineSpec;
use keel_store::{AuditFilter, AuditRecord, Digest, Outcome, Store};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Pipeline NAME or NAME@VERSION (only versions deployed with `keel pipeline deploy`).
    #[arg(long)]
    pipeline: String,
    /// Only records since (RFC 3339 time or a date).
    #[arg(long)]
    since: Option<String>,
    /// Substitute a stage's plugin (STAGE=PLUGIN@VERSION) or, for a stage that
    /// loads a model of that name, its model (STAGE=MODEL@VERSION). Repeatable.
    #[arg(long = "with")]
    with: Vec<String>,
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

impl ReplayArgs {
    /// Replays; exit 5 when some output differs from the recorded one.
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        let rt = globals.runtime()?;
        match replay(&globals.store()?, rt, &self) {
            Ok(true) => Ok(()),
            Ok(false) => Err(fail(
                exit::INTEGRITY,
                anyhow::anyhow!("replay produced different outputs (see DIFF lines)"),
            )),
            Err(e) if exit::is_usage(&e) => Err(fail(exit::USAGE, e)),
            Err(e) => Err(fail(exit::PLUGIN, e)),
        }
    }
}

/// One run's outputs and verdicts.
struct Outcomes {
    batch: Batch,
    digests: [Digest; 2],
    alerts: BTreeMap<String, bool>,
}

fn run_once(rt: &Arc<Runtime>, store: &Store, spec: &Path, input: &Path) -> Result<Outcomes> {
    let resolver = Resolver {
        store: Some(store),
        dirs: PluginDirs::default(),
    };
    let pipeline = Pipeline::load(rt.clone(), spec, &resolver)?;
    let source = keel_data::io::open(input, pipeline.input_schema(), pipeline.batch_size())?;
    let mut outputs: Vec<Batch> = Vec::new();
    let mut sink = |b: &Batch| -> Result<(), String> {
        outputs.push(b.clone());
        Ok(())
    };
    // Alerts go out as they did on the recorded run.
    let options = RunOptions {
        alerts: keel_ops::alerts::sink(),
        ..RunOptions::default()
    };
    let summary = pipeline
        .run(source, &options, &mut sink, &mut |_| {})
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The recorded digest is of the bytes `keel run` wrote: CSV (also when
    // nothing was written) or JSON Lines, so both encodings are hashed.
    let mut digests = Vec::new();
    for format in [Format::Csv, Format::JsonLines] {
        let (w, hash) = Hashing::new(std::io::sink());
        let mut writer = BatchWriter::new(Box::new(w), format, Path::new("<replay>"));
        for b in &outputs {
            writer.write(b)?;
        }
        writer.finish()?;
        digests.push(finish(&hash).context("hashing replay output")?);
    }
    let mut batch = Batch::default();
    for b in outputs {
        batch.append(b).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let alerts = summary
        .monitors
        .iter()
        .map(|m| (m.name.clone(), m.report.as_ref().is_some_and(|r| r.alert)))
        .collect();
    let [csv, jsonl]: [Digest; 2] = digests
        .try_into()
        .map_err(|_| anyhow::anyhow!("two digests expected"))?;
    Ok(Outcomes {
        batch,
        digests: [csv, jsonl],
        alerts,
    })
}

/// What a candidate changed against the released version, over all records.
#[derive(Default)]
struct Diff {
    rows: u64,
    rows_changed: u64,
    max_abs: BTreeMap<String, f64>,
    changed_cells: BTreeMap<String, u64>,
    flips: Vec<String>,
}

/// The rows of the replayed records that have a label, as the recorded
/// version and the candidate answered them, for a performance monitor's
/// realized metrics on each.
#[derive(Default)]
struct Labelled {
    config: Option<PerformanceConfig>,
    recorded: Option<Batch>,
    candidate: Option<Batch>,
}

impl Labelled {
    fn add(&mut self, store: &Store, r: &AuditRecord, a: &Outcomes, b: &Outcomes) -> Result<()> {
        let Some(deployed) = store.get_pipeline(&r.pipeline.name, Some(&r.pipeline.version))?
        else {
            return Ok(());
        };
        let spec = PipelineSpec::parse(&deployed.spec_toml, Path::new("pipeline.toml"))?;
        let Some(config) = feedback::performance_config(&spec) else {
            return Ok(());
        };
        let plan = PredictionPlan::of(&spec);
        let label = config.label_column.clone();
        for (side, out) in [(&mut self.recorded, a), (&mut self.candidate, b)] {
            let rows =
                feedback::labelled_rows(store, &r.pipeline.name, &plan, &r.id, &out.batch, &label)?;
            match side {
                Some(all) => all.append(rows)?,
                None => *side = Some(rows),
            }
        }
        self.config = Some(config);
        Ok(())
    }

    /// One line per metric: recorded, candidate and the change.
    fn print(&self) -> Result<()> {
        let (Some(config), Some(a), Some(b)) = (&self.config, &self.recorded, &self.candidate)
        else {
            return Ok(());
        };
        let (Some(ra), Some(rb)) = (
            feedback::realized(config, a)?,
            feedback::realized(config, b)?,
        ) else {
            outln!("  no labelled rows yet (keel feedback import, or POST …/feedback)");
            return Ok(());
        };
        outln!("  on {} labelled rows (labels joined by id):", a.rows());
        for (metric, before) in &ra {
            let after = rb.get(metric).copied().flatten();
            let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
            let delta = match (before, after) {
                (Some(x), Some(y)) => format!("({:+.4})", y - x),
                _ => String::new(),
            };
            outln!(
                "    {metric:<18} recorded {}  candidate {}  {delta}",
                fmt(*before),
                fmt(after)
            );
        }
        Ok(())
    }
}

fn compare(a: &Outcomes, b: &Outcomes, diff: &mut Diff, record: &AuditRecord) {
    let rows = a.batch.rows().min(b.batch.rows());
    diff.rows += a.batch.rows() as u64;
    let mut changed = vec![a.batch.rows() != b.batch.rows(); a.batch.rows()];
    for col in a.batch.columns() {
        let Some(other) = b.batch.column(&col.name) else {
            changed.iter_mut().for_each(|c| *c = true);
            continue;
        };
        for (i, flag) in changed.iter_mut().enumerate().take(rows) {
            let (x, y) = (col.value(i), other.value(i));
            if x == y {
                continue;
            }
            *flag = true;
            *diff.changed_cells.entry(col.name.clone()).or_default() += 1;
            if let (Value::F64(x), Value::F64(y)) = (x, y) {
                let d = (x - y).abs();
                let m = diff.max_abs.entry(col.name.clone()).or_insert(0.0);
                if d > *m {
                    *m = d;
                }
            }
        }
    }
    diff.rows_changed += changed.iter().filter(|c| **c).count() as u64;
    for (monitor, alert) in &a.alerts {
        let theirs = b.alerts.get(monitor).copied().unwrap_or(false);
        if *alert != theirs {
            diff.flips.push(format!(
                "record {}: monitor `{monitor}` {} → {}",
                record.id,
                if *alert { "ALERT" } else { "ok" },
                if theirs { "ALERT" } else { "ok" }
            ));
        }
    }
}

/// Writes a candidate spec: the deployed one with `--with` substitutions.
fn candidate_spec(store: &Store, spec_text: &str, with: &[String], path: &Path) -> Result<()> {
    let mut table: toml::Table = toml::from_str(spec_text)?;
    for w in with {
        let (stage, reference) = w.split_once('=').with_context(|| {
            format!("--with {w}: expected STAGE=PLUGIN@VERSION or STAGE=MODEL@VERSION")
        })?;
        let entry = named_entry(&mut table, stage).with_context(|| {
            format!("--with {w}: the pipeline has no stage, validator or monitor `{stage}`")
        })?;
        substitute(store, entry, reference).with_context(|| format!("--with {w}"))?;
    }
    std::fs::write(path, toml::to_string(&table)?)?;
    Ok(())
}

/// The stage, validator or monitor called `name` in a spec table.
fn named_entry<'a>(table: &'a mut toml::Table, name: &str) -> Option<&'a mut toml::Table> {
    ["stages", "validators", "monitors"]
        .into_iter()
        .filter_map(|section| match table.get(section) {
            Some(toml::Value::Array(items)) => items
                .iter()
                .position(|i| i.get("name").and_then(|n| n.as_str()) == Some(name))
                .map(|at| (section, at)),
            _ => None,
        })
        .next()
        .and_then(|(section, at)| {
            table
                .get_mut(section)?
                .as_array_mut()?
                .get_mut(at)?
                .as_table_mut()
        })
}

/// Points one spec entry at a candidate: a model version when the entry loads
/// a model of that name (a retrained model is the usual candidate), else a
/// plugin version, pinned by digest.
fn substitute(store: &Store, entry: &mut toml::Table, reference: &str) -> Result<()> {
    let (name, version) = reference.split_once('@').context("expected NAME@VERSION")?;
    if let Some(toml::Value::Array(models)) = entry.get_mut("models") {
        let slot = models.iter_mut().find(|m| {
            m.as_str()
                .is_some_and(|m| m.split_once('@').map_or(m, |(n, _)| n) == name)
        });
        if let Some(slot) = slot {
            if store.model_tag(name, version)?.is_none() {
                bail!("no model `{name}@{version}` in the store (keel model ls)");
            }
            *slot = toml::Value::String(reference.to_string());
            return Ok(());
        }
    }
    let resolved = store.resolve_for_replay(reference)?;
    let digest = Digest::of(&resolved.bytes);
    entry.insert("plugin".into(), toml::Value::String(digest.to_string()));
    Ok(())
}

/// Replays; returns `Ok(false)` when some output digest did not match.
fn replay(store: &Store, rt: Arc<Runtime>, args: &ReplayArgs) -> Result<bool> {
    let (name, version) = match args.pipeline.split_once('@') {
        Some((n, v)) => (n.to_string(), Some(v.to_string())),
        None => (args.pipeline.clone(), None),
    };
    let filter = AuditFilter {
        pipeline: Some(name.clone()),
        since: args
            .since
            .as_deref()
            .map(|s| keel_store::parse_rfc3339(s).with_context(|| format!("--since {s}")))
            .transpose()?,
        outcome: Some(Outcome::Ok),
        limit: Some(args.limit),
    };
    let mut records = store.audit_log(&filter)?;
    records.reverse();
    if let Some(v) = &version {
        records.retain(|r| &r.pipeline.version == v);
    }
    if records.is_empty() {
        let none = format!("no successful records of `{}` to replay", args.pipeline);
        return Err(exit::usage(anyhow::Error::msg(none)));
    }
    let (mut matched, mut mismatched, mut skipped) = (0, 0, 0);
    let mut diff = Diff::default();
    let mut labelled = Labelled::default();
    for r in &records {
        let reference = format!("{}@{}", r.pipeline.name, r.pipeline.version);
        let deployed = store.get_pipeline(&r.pipeline.name, Some(&r.pipeline.version))?;
        if deployed.as_ref().map(|p| &p.digest) != Some(&r.pipeline.digest) {
            outln!(
                "skip  {} {reference}: that exact version was never deployed",
                r.id
            );
            skipped += 1;
            continue;
        }
        let Some(input) = store.payload(&r.input_digest)? else {
            outln!(
                "skip  {} {reference}: input payload not kept ({})",
                r.id,
                r.input_digest.short()
            );
            skipped += 1;
            continue;
        };
        let dir = tempfile::tempdir()?;
        let source = source::open(
            Spec::Deployed(reference.clone()),
            Some(store),
            PluginDirs::default(),
            dir.path(),
            Trust::Skip,
        )?;
        let (spec, spec_text) = (source.path(), source.canonical_text()?);
        let is_jsonl = input.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let input_path = dir
            .path()
            .join(if is_jsonl { "input.jsonl" } else { "input.csv" });
        std::fs::write(&input_path, &input)?;
        let original = run_once(&rt, store, spec, &input_path)
            .with_context(|| format!("replaying record {}", r.id))?;
        let ok = r
            .output_digest
            .as_ref()
            .is_some_and(|d| original.digests.contains(d));
        if ok {
            matched += 1;
            outln!(
                "same  {} {reference}: {} rows, output {}",
                r.id,
                original.batch.rows(),
                original.digests[0].short()
            );
        } else {
            mismatched += 1;
            outln!(
                "DIFF  {} {reference}: recorded output {} but replay gives {}",
                r.id,
                r.output_digest.as_ref().map_or("none", |d| d.short()),
                original.digests[0].short()
            );
        }
        if !args.with.is_empty() {
            let cand = dir.path().join("candidate.toml");
            candidate_spec(store, &spec_text, &args.with, &cand).map_err(exit::usage)?;
            let candidate = run_once(&rt, store, &cand, &input_path)
                .with_context(|| format!("running the candidate on record {}", r.id))?;
            compare(&original, &candidate, &mut diff, r);
            labelled.add(store, r, &original, &candidate)?;
        }
    }
    outln!(
        "\nreplayed {} records: {matched} identical, {mismatched} different, {skipped} skipped",
        matched + mismatched
    );
    if !args.with.is_empty() {
        outln!(
            "\ncandidate ({}) against the recorded version:",
            args.with.join(", ")
        );
        outln!("  rows changed: {} of {}", diff.rows_changed, diff.rows);
        for (col, n) in &diff.changed_cells {
            let m = diff
                .max_abs
                .get(col)
                .map_or_else(String::new, |m| format!(", max |Δ| {m:.6}"));
            outln!("  {col:<24} {n} cells changed{m}");
        }
        if diff.flips.is_empty() {
            outln!("  verdicts flipped: none");
        }
        for f in &diff.flips {
            outln!("  verdict flipped: {f}");
        }
        labelled.print()?;
    }
    Ok(mismatched == 0)
}
