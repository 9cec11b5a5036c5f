//! The run loop: a reader thread, worker threads and a writer thread, with
//! results put back in input order, findings counted, monitors fed, and a
//! summary that survives an early stop.

use super::{
    BatchError, LiveMonitors, LocatedFinding, MonitorResult, MonitorState, Pipeline, Processed,
    severity_name,
};
use crate::alert::{AlertSink, NoDelivery};
use crate::error::CallError;
use crate::window;
use keel_data::Batch;
use keel_data::io::{BatchSource, ReadError, SourceBatch};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Progress of a run, reported after each batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub rows: u64,
    pub batches: u64,
    pub bytes_read: u64,
}

/// Findings counted by validator, rule and severity.
pub type FindingCounts = BTreeMap<(String, String, String), u64>;

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_rejected: u64,
    pub batches: u64,
    pub elapsed: Duration,
    pub findings: FindingCounts,
    /// The first findings, with their input lines, for display.
    pub examples: Vec<(LocatedFinding, Option<u64>)>,
    pub monitors: Vec<MonitorResult>,
    /// Time spent in each stage across all workers: (stage, plugin, time).
    pub stage_time: Vec<(String, String, Duration)>,
    /// Largest linear memory any instance of each stage reached, in bytes (stage order).
    pub stage_peak: Vec<usize>,
    /// The same for each validator: (validator, bytes), in spec order.
    pub validator_peak: Vec<(String, usize)>,
    pub workers: usize,
}

/// Why a run stopped. Output written before the failure stays written.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{error}")]
    Read {
        error: ReadError,
        summary: Box<RunSummary>,
    },
    #[error("{}: lines {}-{}: {}", file.display(), lines.0, lines.1, error.error)]
    Stage {
        file: PathBuf,
        lines: (u64, u64),
        error: BatchError,
        summary: Box<RunSummary>,
    },
    #[error("cannot write output: {message}")]
    Sink {
        message: String,
        summary: Box<RunSummary>,
    },
    #[error("cannot start monitors: {0}")]
    Monitor(CallError),
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub batch_size: Option<usize>,
    pub workers: Option<usize>,
    /// Saved monitor states by monitor name, to carry on from.
    pub resume: HashMap<String, MonitorState>,
    /// Where the monitors' alerts go; by default nowhere (they are still
    /// logged and kept in the summary).
    pub alerts: Arc<dyn AlertSink>,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            batch_size: None,
            workers: None,
            resume: HashMap::new(),
            alerts: Arc::new(NoDelivery),
        }
    }
}

enum Msg {
    Done(u64, SourceBatch, Result<Processed, BatchError>, u64),
    ReadFailed(u64, ReadError),
}

/// Why a run stopped early; becomes a [`RunError`] once the summary is final.
enum Stop {
    Read(ReadError),
    Stage {
        lines: (u64, u64),
        error: BatchError,
    },
    Sink(String),
}

const EXAMPLES: usize = 20;

impl Pipeline {
    /// Runs `source` through the pipeline, handing output batches to `sink`
    /// in input order and calling `progress` after each batch.
    pub fn run(
        &self,
        source: Box<dyn BatchSource>,
        options: &RunOptions,
        sink: &mut (dyn FnMut(&Batch) -> Result<(), String> + Send),
        progress: &mut dyn FnMut(Progress),
    ) -> Result<RunSummary, RunError> {
        let started = Instant::now();
        let workers = options
            .workers
            .or(self.spec.run.workers)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        let file = source.path().to_path_buf();
        let mut live = self
            .live_monitors(&options.resume, options.alerts.clone())
            .map_err(RunError::Monitor)?;
        let mut summary = RunSummary {
            rows_in: 0,
            rows_out: 0,
            rows_rejected: 0,
            batches: 0,
            elapsed: Duration::ZERO,
            findings: BTreeMap::new(),
            examples: Vec::new(),
            monitors: Vec::new(),
            stage_time: self
                .stages
                .iter()
                .map(|s| (s.stage.clone(), s.plugin.name().to_string(), Duration::ZERO))
                .collect(),
            stage_peak: vec![0; self.stages.len()],
            validator_peak: self
                .validators
                .iter()
                .map(|v| (v.placement.stage.clone(), 0))
                .collect(),
            workers,
        };
        let (job_tx, job_rx) = crossbeam_channel::bounded::<(u64, SourceBatch, u64)>(workers * 2);
        let (res_tx, res_rx) = crossbeam_channel::bounded::<Msg>(workers * 2);
        let outcome: Result<(), Stop> = std::thread::scope(|s| {
            let reader_tx = res_tx.clone();
            let mut source = source;
            s.spawn(move || {
                let mut seq = 0;
                loop {
                    match source.next_batch() {
                        Ok(Some(b)) => {
                            if job_tx.send((seq, b, source.bytes_read())).is_err() {
                                return;
                            }
                            seq += 1;
                        }
                        Ok(None) => return,
                        Err(e) => {
                            let _ = reader_tx.send(Msg::ReadFailed(seq, e));
                            return;
                        }
                    }
                }
            });
            for _ in 0..workers {
                let rx = job_rx.clone();
                let tx = res_tx.clone();
                s.spawn(move || {
                    let mut worker = self.worker();
                    for (seq, sb, bytes) in rx {
                        let r = worker.process(sb.batch.clone(), sb.first_row);
                        if tx.send(Msg::Done(seq, sb, r, bytes)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(job_rx);
            drop(res_tx);
            // Output is formatted and written on its own thread, overlapping
            // with monitors and the workers.
            let (out_tx, out_rx) = crossbeam_channel::bounded::<Batch>(workers * 2);
            let writer = s.spawn(move || -> Result<(), String> {
                for b in out_rx {
                    sink(&b)?;
                }
                Ok(())
            });
            let collected = self.collect(res_rx, &mut summary, &mut live, &out_tx, progress);
            drop(out_tx);
            let written = writer
                .join()
                .unwrap_or_else(|_| Err("the output writer panicked".into()));
            written.map_err(Stop::Sink).and(collected)
        });
        // Monitors report even when the run stopped early: what they saw is real.
        summary.monitors = self.conclude(&mut live, true);
        summary.elapsed = started.elapsed();
        let summary = Box::new(summary);
        match outcome {
            Ok(()) => Ok(*summary),
            Err(Stop::Read(error)) => Err(RunError::Read { error, summary }),
            Err(Stop::Stage { lines, error }) => Err(RunError::Stage {
                file,
                lines,
                error,
                summary,
            }),
            Err(Stop::Sink(message)) => Err(RunError::Sink { message, summary }),
        }
    }

    fn collect(
        &self,
        res_rx: crossbeam_channel::Receiver<Msg>,
        summary: &mut RunSummary,
        live: &mut LiveMonitors,
        out: &crossbeam_channel::Sender<Batch>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), Stop> {
        let mut pending: BTreeMap<u64, (SourceBatch, Result<Processed, BatchError>, u64)> =
            BTreeMap::new();
        let mut next = 0u64;
        let mut read_error: Option<(u64, ReadError)> = None;
        for msg in res_rx.iter() {
            match msg {
                Msg::Done(seq, sb, r, bytes) => {
                    pending.insert(seq, (sb, r, bytes));
                }
                Msg::ReadFailed(seq, e) => read_error = Some((seq, e)),
            }
            while let Some((sb, r, bytes)) = pending.remove(&next) {
                next += 1;
                let p = match r {
                    Ok(p) => p,
                    Err(error) => {
                        let first = sb.lines.first().copied().unwrap_or(0);
                        let last = sb.lines.last().copied().unwrap_or(first);
                        return Err(Stop::Stage {
                            lines: (first, last),
                            error,
                        });
                    }
                };
                for (stage, t) in summary.stage_time.iter_mut().zip(&p.stage_time) {
                    stage.2 += *t;
                }
                for (peak, p) in summary.stage_peak.iter_mut().zip(&p.stage_peak) {
                    *peak = (*peak).max(*p);
                }
                for ((_, peak), p) in summary.validator_peak.iter_mut().zip(&p.validator_peak) {
                    *peak = (*peak).max(*p);
                }
                for f in p.findings {
                    let key = (
                        f.validator.clone(),
                        f.finding.rule.clone(),
                        severity_name(f.finding.severity).to_string(),
                    );
                    *summary.findings.entry(key).or_default() += 1;
                    if summary.examples.len() < EXAMPLES {
                        let line = f.input_row.and_then(|r| {
                            r.checked_sub(sb.first_row)
                                .and_then(|i| sb.lines.get(i as usize).copied())
                        });
                        summary.examples.push((f, line));
                    }
                }
                self.observe(live, &p.taps, window::now_ms());
                summary.rows_in += p.rows_in as u64;
                summary.rows_out += p.output.rows() as u64;
                if out.send(p.output).is_err() {
                    // The writer stopped on an error; `run` reports it.
                    return Ok(());
                }
                summary.rows_rejected += p.rows_rejected as u64;
                summary.batches += 1;
                progress(Progress {
                    rows: summary.rows_in,
                    batches: summary.batches,
                    bytes_read: bytes,
                });
            }
            if let Some((seq, _)) = &read_error
                && *seq == next
            {
                break;
            }
        }
        match read_error {
            Some((_, error)) => Err(Stop::Read(error)),
            None => Ok(()),
        }
    }
}
