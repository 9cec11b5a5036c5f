//! `keel drift` and `keel report`: an ad-hoc drift check between two data
//! files, through the same drift monitor as the `drift-monitor` plugin,
//! compiled natively. Columns are split across threads (one monitor per
//! share of the columns), fed by one reader; the report is a table with
//! histograms in the terminal, JSON, or a self-contained HTML page.

use crate::exit::{self, Failure, fail};
use crate::render::{progress_bar, thousands};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use keel_algos::drift::{ColumnDrift, DriftConfig, DriftMonitor, Histogram, report_of};
use keel_data::Batch;
use keel_data::io::Schema;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Output formats.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Html,
}

/// Arguments of `keel drift`.
#[derive(clap::Args)]
pub struct DriftArgs {
    /// Reference data: .csv, .jsonl/.ndjson or .parquet.
    pub reference: PathBuf,
    /// Current data, same formats; read with the reference's column types.
    pub current: PathBuf,
    /// Columns to compare (default: every column of the reference).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Method for every column (default: chosen per column).
    #[arg(long, value_parser = ["auto", "psi", "ks", "chisquare", "z", "jensenshannon", "wasserstein", "hellinger", "linf"])]
    pub method: Option<String>,
    /// Threshold for every column (default: 0.05 for p-values, 0.1 for distances).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Share of drifted columns at which the dataset drifts.
    #[arg(long, default_value_t = 0.5)]
    pub drift_share: f64,
    /// Per-column overrides as a JSON or TOML file of the monitor's config
    /// (`[column.NAME] method = …, threshold = …`); flags win over it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Exit with code 6 when the dataset drifted.
    #[arg(long)]
    pub fail_on_drift: bool,
    /// Rows per batch read.
    #[arg(long, default_value_t = 65_536)]
    pub batch_size: usize,
    /// Threads comparing columns (default: the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Arguments of `keel report`: those of `keel drift`, always as HTML.
#[derive(clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    args: DriftArgs,
}

impl ReportArgs {
    /// Writes the HTML report (to `drift-report.html` unless told otherwise).
    pub fn run(mut self) -> Result<(), Failure> {
        self.args.format = Format::Html;
        if self.args.output.is_none() {
            self.args.output = Some(PathBuf::from("drift-report.html"));
        }
        self.args.run()
    }
}

impl DriftArgs {
    /// Prints or writes the report; exit 6 on drift with `--fail-on-drift`.
    pub fn run(self) -> Result<(), Failure> {
        let out = check(&self).map_err(|e| match e {
            DriftError::Usage(e) => fail(exit::USAGE, e),
            DriftError::Data(e) => exit::data_failure(e),
            DriftError::Other(e) => fail(exit::FAILURE, e),
        })?;
        match &self.output {
            Some(path) => {
                std::fs::write(path, &out.text)
                    .with_context(|| format!("writing {}", path.display()))?;
                errln!(
                    "{}: {}",
                    path.display(),
                    if out.dataset_drift {
                        "dataset drift"
                    } else {
                        "no dataset drift"
                    }
                );
            }
            None => out!("{}", out.text),
        }
        if self.fail_on_drift && out.dataset_drift {
            return Err(fail(
                exit::DRIFT,
                anyhow::anyhow!("dataset drift detected (--fail-on-drift)"),
            ));
        }
        Ok(())
    }

    /// The monitor's config: the `--config` file, then the flags over it.
    fn config(&self) -> Result<DriftConfig, DriftError> {
        let mut config = match &self.config {
            Some(path) => read_config(path).map_err(DriftError::Usage)?,
            None => DriftConfig::default(),
        };
        if !self.columns.is_empty() {
            config.columns = Some(self.columns.clone());
        }
        if self.method.is_some() {
            config.method = self.method.clone();
        }
        if self.threshold.is_some() {
            config.threshold = self.threshold;
        }
        config.drift_share = self.drift_share;
        Ok(config)
    }
}

/// What the check found, ready to print.
struct Outcome {
    text: String,
    dataset_drift: bool,
}

/// Batches of the current file with the bytes read so far; `None` at the end.
type Next<'a> = Box<dyn FnMut() -> Result<Option<(Batch, u64)>, keel_data::io::ReadError> + 'a>;

/// The current file read ahead whole (Parquet), or `None` to stream it.
type Early = Option<Result<Vec<(Batch, u64)>, keel_data::io::ReadError>>;

/// What the shards computed: reference rows and the columns' statistics.
type Shards = Vec<(u64, Vec<ColumnDrift>)>;

/// Runs the check. Errors are tagged for exit codes by the caller.
fn check(args: &DriftArgs) -> Result<Outcome, DriftError> {
    let config = args.config()?;
    let started = std::time::Instant::now();
    let (reference, early) = read_reference(args)?;
    let names: Vec<String> = match &config.columns {
        Some(c) => c.clone(),
        None => reference.columns().iter().map(|c| c.name.clone()).collect(),
    };
    // The current file is read with the reference's types, restricted to the
    // compared columns so a column the reference lacks is not an error here.
    let schema = Schema::of(&reference);
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, names.len().max(1));
    // Unknown per-column keys are caught by the shard that would own them;
    // a key for a column no shard watches is a config error too.
    for key in config.column.keys() {
        if !names.contains(key) {
            return Err(DriftError::Usage(anyhow::anyhow!(
                "invalid config `column.{key}`: `{key}` is not a compared column"
            )));
        }
    }
    tracing::info!(elapsed = ?started.elapsed(), rows = reference.rows(), "reference read");
    let shards = shard(&names, threads);
    let source = current_source(args, early, &schema)?;
    let total = std::fs::metadata(&args.current).map_or(0, |m| m.len());
    let bar = progress_bar(total, args.quiet);
    let (shards_done, rows) = compare(args, &config, &shards, reference, source, &bar, started)?;
    bar.finish_and_clear();
    tracing::info!(elapsed = ?started.elapsed(), "statistics computed");
    let reference_rows = shards_done.first().map_or(0, |d| d.0);
    let mut columns: Vec<ColumnDrift> = shards_done.into_iter().flat_map(|d| d.1).collect();
    // Shards hold interleaved columns; restore the order asked for.
    columns.sort_by_key(|c| names.iter().position(|n| *n == c.column));
    render(args, &config, &columns, reference_rows, rows)
}

/// Reads the reference whole. Parquet files carry their own types, so the
/// current file need not wait for the reference's: both are read at once
/// (two cores, two decoders) and the current batches wait in memory until
/// the monitors exist. Text files are typed after the reference, so they are
/// read one after the other.
fn read_reference(args: &DriftArgs) -> Result<(Batch, Early), DriftError> {
    let both_parquet = [&args.reference, &args.current].iter().all(|p| {
        matches!(
            keel_data::io::Format::from_path(p),
            Ok(keel_data::io::Format::Parquet)
        )
    });
    if !both_parquet {
        let reference = keel_data::io::read_all(&args.reference, None)
            .map_err(|e| DriftError::Data(e.into()))?;
        return Ok((reference, None));
    }
    let (reference, early) = std::thread::scope(|s| {
        let r = s.spawn(|| keel_data::io::read_all(&args.reference, None));
        let early = read_ahead(&args.current, args.batch_size);
        (r.join(), early)
    });
    let reference = reference
        .map_err(|_| DriftError::Other(anyhow::anyhow!("the reference reader panicked")))?
        .map_err(|e| DriftError::Data(e.into()))?;
    Ok((reference, Some(early)))
}

/// The current file's batches: those read ahead, else a reader typed by `schema`.
fn current_source<'a>(
    args: &'a DriftArgs,
    early: Early,
    schema: &Schema,
) -> Result<Next<'a>, DriftError> {
    Ok(match early {
        Some(early) => {
            let mut batches = early.map_err(|e| DriftError::Data(e.into()))?.into_iter();
            Box::new(move || Ok(batches.next()))
        }
        None => {
            let mut src = keel_data::io::open(&args.current, Some(schema), args.batch_size)
                .map_err(|e| DriftError::Data(e.into()))?;
            Box::new(move || Ok(src.next_batch()?.map(|sb| (sb.batch, src.bytes_read()))))
        }
    })
}

/// One thread per shard profiles the reference, then counts the current
/// batches and computes its columns' statistics; meanwhile this thread
/// reads the current file, so reading overlaps with profiling (the channel
/// holds batches read before the monitors are ready). Returns each shard's
/// result and the current file's rows.
fn compare(
    args: &DriftArgs,
    config: &DriftConfig,
    shards: &[Vec<String>],
    reference: Batch,
    mut source: Next,
    bar: &ProgressBar,
    started: std::time::Instant,
) -> Result<(Shards, u64), DriftError> {
    std::thread::scope(|s| {
        // Each shard lets go of the reference once profiled, so its memory
        // is reused for the current values instead of new pages.
        let reference = Arc::new(reference);
        let mut txs = Vec::new();
        let mut handles = Vec::new();
        for cols in shards {
            let mut c = config.clone();
            c.columns = Some(cols.clone());
            c.column.retain(|k, _| cols.contains(k));
            let reference = Arc::clone(&reference);
            let (tx, rx) = crossbeam_channel::bounded::<Arc<Batch>>(64);
            txs.push(tx);
            handles.push(s.spawn(move || shard_worker(c, reference, rx, args)));
        }
        // The shards hold the reference now; each drops it once profiled.
        drop(reference);
        let (rows, read_error) = feed(&mut source, &txs, bar);
        tracing::info!(elapsed = ?started.elapsed(), rows, "current read");
        drop(txs);
        let done: Vec<_> = handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(DriftError::Other(anyhow::anyhow!(
                        "a drift thread panicked"
                    )))
                })
            })
            .collect();
        let done = done.into_iter().collect::<Result<Vec<_>, DriftError>>()?;
        match read_error {
            Some(e) => Err(DriftError::Data(e.into())),
            None => Ok((done, rows)),
        }
    })
}

/// One shard: profiles the reference for its columns, then observes every
/// current batch it is sent.
fn shard_worker(
    config: DriftConfig,
    reference: Arc<Batch>,
    rx: crossbeam_channel::Receiver<Arc<Batch>>,
    args: &DriftArgs,
) -> Result<(u64, Vec<ColumnDrift>), DriftError> {
    let built = DriftMonitor::new(config, &reference);
    drop(reference);
    let mut m = built.map_err(|e| match e.kind() {
        keel_algos::ErrorKind::Config => DriftError::Usage(anyhow::anyhow!("{e}")),
        _ => DriftError::Data(anyhow::anyhow!("{}: {e}", args.reference.display())),
    })?;
    for b in rx {
        m.observe(&b)
            .map_err(|e| DriftError::Data(anyhow::anyhow!("{}: {e}", args.current.display())))?;
    }
    Ok((m.reference_rows(), m.into_columns()))
}

/// Sends every current batch to every shard; returns the rows read and the
/// read error that stopped it, if one did.
fn feed(
    source: &mut Next,
    txs: &[crossbeam_channel::Sender<Arc<Batch>>],
    bar: &ProgressBar,
) -> (u64, Option<keel_data::io::ReadError>) {
    let mut rows = 0u64;
    loop {
        match source() {
            Ok(Some((batch, bytes))) => {
                rows += batch.rows() as u64;
                let b = Arc::new(batch);
                // A shard that stopped on an error reports it when joined.
                if txs.iter().any(|tx| tx.send(Arc::clone(&b)).is_err()) {
                    return (rows, None);
                }
                bar.set_position(bytes);
                bar.set_message(format!("{} rows", thousands(rows)));
            }
            Ok(None) => return (rows, None),
            Err(e) => return (rows, Some(e)),
        }
    }
}

/// The report in the format asked for.
fn render(
    args: &DriftArgs,
    config: &DriftConfig,
    columns: &[ColumnDrift],
    reference_rows: u64,
    rows: u64,
) -> Result<Outcome, DriftError> {
    let report = report_of(columns, rows, config.drift_share);
    let json = serde_json::json!({
        "reference": {"source": args.reference.display().to_string(), "rows": reference_rows},
        "current": {"source": args.current.display().to_string(), "rows": rows},
        "drift_share": config.drift_share,
        "share_drifted": report.metrics.last().map_or(0.0, |m| m.value),
        "dataset_drift": report.alert,
        "summary": report.summary,
        "columns": columns,
    });
    let text = match args.format {
        Format::Json => {
            serde_json::to_string_pretty(&json).map_err(|e| DriftError::Other(e.into()))? + "\n"
        }
        Format::Html => keel_report::render_drift_html(&json)
            .map_err(|e| DriftError::Other(anyhow::anyhow!("rendering the report: {e}")))?,
        Format::Table => table(
            &args.reference,
            &args.current,
            &json,
            columns,
            &report.summary,
        ),
    };
    Ok(Outcome {
        text,
        dataset_drift: report.alert,
    })
}

/// Reads a whole file as batches, each with the bytes read so far.
fn read_ahead(
    path: &Path,
    batch_size: usize,
) -> Result<Vec<(Batch, u64)>, keel_data::io::ReadError> {
    let mut src = keel_data::io::open(path, None, batch_size)?;
    let mut out = Vec::new();
    while let Some(sb) = src.next_batch()? {
        out.push((sb.batch, src.bytes_read()));
    }
    Ok(out)
}

/// Why the check failed, for the exit code.
#[derive(Debug)]
pub enum DriftError {
    Usage(anyhow::Error),
    Data(anyhow::Error),
    Other(anyhow::Error),
}

/// Splits `names` into `n` shards of similar cost (round robin keeps wide
/// runs of one type from landing on one thread).
fn shard(names: &[String], n: usize) -> Vec<Vec<String>> {
    let mut shards = vec![Vec::new(); n];
    for (i, name) in names.iter().enumerate() {
        shards[i % n].push(name.clone());
    }
    shards.retain(|s| !s.is_empty());
    shards
}

fn read_config(path: &Path) -> Result<DriftConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let is_json = path.extension().is_some_and(|e| e == "json");
    let value: serde_json::Value = if is_json {
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?
    } else {
        let t: toml::Table =
            toml::from_str(&text).with_context(|| format!("{}: not TOML", path.display()))?;
        serde_json::to_value(t)?
    };
    serde_json::from_value(value).with_context(|| format!("{}: not a drift config", path.display()))
}

/// A terminal table, then one histogram per column (reference above, current below).
fn table(
    reference: &Path,
    current: &Path,
    json: &serde_json::Value,
    columns: &[ColumnDrift],
    summary: &str,
) -> String {
    let mut o = String::new();
    let rows = |k: &str| json[k]["rows"].as_u64().unwrap_or(0);
    let _ = writeln!(
        o,
        "reference {} ({} rows) vs current {} ({} rows)\n",
        reference.display(),
        thousands(rows("reference")),
        current.display(),
        thousands(rows("current"))
    );
    let _ = writeln!(
        o,
        "  {:<22} {:<12} {:<14} {:>10} {:>10} {:>9}  {:<8} {:>8}",
        "column", "kind", "method", "statistic", "p-value", "threshold", "verdict", "missing"
    );
    for c in columns {
        table_row(&mut o, c);
    }
    let _ = writeln!(
        o,
        "\n{}: {summary}",
        if json["dataset_drift"].as_bool() == Some(true) {
            "DATASET DRIFT"
        } else {
            "no dataset drift"
        }
    );
    let _ = writeln!(
        o,
        "\nhistograms (share of rows per bin; ref above, cur below)"
    );
    for c in columns {
        histogram(&mut o, c);
    }
    o
}

/// One column's line of the table.
fn table_row(o: &mut String, c: &ColumnDrift) {
    let stat = c
        .statistic
        .map_or_else(|| "-".into(), |v| format!("{v:.4}"));
    let p = c.p_value.map_or_else(
        || "-".into(),
        |v| {
            if v < 1e-4 {
                format!("{v:.1e}")
            } else {
                format!("{v:.4}")
            }
        },
    );
    let verdict = match (c.statistic, c.drift) {
        (None, _) => "no data",
        (_, true) => "DRIFT",
        _ => "ok",
    };
    let _ = writeln!(
        o,
        "  {:<22} {:<12} {:<14} {stat:>10} {p:>10} {:>9}  {verdict:<8} {:>7.1}%",
        truncate(&c.column, 22),
        c.kind,
        c.method.name(),
        c.threshold,
        c.current_missing_share * 100.0
    );
}

/// One column's histograms: its bins, then a bar line per side.
fn histogram(o: &mut String, c: &ColumnDrift) {
    let mut outside = String::new();
    let (labels, r, k) = match &c.histogram {
        Histogram::Numeric {
            edges,
            reference,
            current,
            reference_below,
            reference_above,
            current_below,
            current_above,
        } => {
            for (side, below, above) in [
                ("ref", reference_below, reference_above),
                ("cur", current_below, current_above),
            ] {
                if below + above > 0 {
                    let _ = write!(outside, " {side}: {below} below, {above} above;");
                }
            }
            (
                format!(
                    "{} .. {}",
                    edges.first().map_or(String::new(), |e| short(*e)),
                    edges.last().map_or(String::new(), |e| short(*e))
                ),
                reference.clone(),
                current.clone(),
            )
        }
        Histogram::Categorical {
            categories,
            reference,
            current,
        } => (
            categories
                .iter()
                .take(6)
                .map(|s| truncate(s, 10))
                .collect::<Vec<_>>()
                .join(" ")
                + if categories.len() > 6 { " …" } else { "" },
            reference.clone(),
            current.clone(),
        ),
    };
    let flag = if c.drift { " DRIFT" } else { "" };
    let outside = if outside.is_empty() {
        String::new()
    } else {
        format!(" outside the range:{}", outside.trim_end_matches(';'))
    };
    let _ = writeln!(o, "  {}{flag}  [{labels}]{outside}", c.column);
    let _ = writeln!(o, "    ref {}", spark(&r));
    let _ = writeln!(o, "    cur {}", spark(&k));
}

/// Bars of each bucket's share, scaled to the largest share of either side
/// would be better; per side keeps the shape readable at a glance.
fn spark(counts: &[u64]) -> String {
    const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = counts.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return "(no values)".into();
    }
    counts
        .iter()
        .take(60)
        .map(|c| {
            let level = (*c as f64 / max as f64 * 8.0).round() as usize;
            BARS[if *c > 0 { level.max(1) } else { 0 }]
        })
        .collect()
}

fn short(x: f64) -> String {
    if x.abs() >= 1e5 || (x != 0.0 && x.abs() < 1e-3) {
        format!("{x:.3e}")
    } else {
        format!("{}", (x * 1000.0).round() / 1000.0)
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}
