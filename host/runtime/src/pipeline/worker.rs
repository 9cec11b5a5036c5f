//! The worker loop: one set of plugin instances (created on first use,
//! replaced when a trap poisons one) taking one batch at a time through
//! validators and stages, tapping the batches monitors watch.

use super::Pipeline;
use crate::engine::Runtime;
use crate::error::{CallError, Outcome};
use crate::instance::{Finding, Instance, Placement, Severity, call_seed};
use crate::spec::Policy;
use keel_data::Batch;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Pipeline {
    /// A worker: one set of instances, created on first use.
    pub fn worker(&self) -> Worker<&Pipeline> {
        Worker::new(self)
    }

    /// A worker that owns a share of the pipeline, for pools that outlive a
    /// borrow (the daemon keeps one per concurrent request).
    pub fn shared_worker(self: &Arc<Self>) -> Worker<Arc<Pipeline>> {
        Worker::new(self.clone())
    }

    /// Instances of the pipeline's stages and validators, created ahead of
    /// the first request so it does not pay for instantiation.
    pub fn warm(
        &self,
        worker: &mut Worker<impl std::ops::Deref<Target = Pipeline>>,
    ) -> Result<(), CallError> {
        for i in 0..self.stages.len() {
            ensure(
                &mut worker.stages[i],
                &self.rt,
                &self.stages[i],
                self.refs[i].as_ref(),
            )?;
        }
        for (i, v) in self.validators.iter().enumerate() {
            ensure(
                &mut worker.validators[i],
                &self.rt,
                &v.placement,
                self.refs[v.at].as_ref(),
            )?;
        }
        Ok(())
    }
}

/// A finding located in the input.
#[derive(Debug, Clone)]
pub struct LocatedFinding {
    pub validator: String,
    pub finding: Finding,
    /// Zero-based index of the input row, when the finding names a row.
    pub input_row: Option<u64>,
}

/// What one batch became.
#[derive(Debug)]
pub struct Processed {
    pub output: Batch,
    pub findings: Vec<LocatedFinding>,
    pub rows_in: usize,
    pub rows_rejected: usize,
    /// Batches at monitor attachment points, by point index.
    pub taps: Vec<(usize, Batch)>,
    /// Time spent in each stage, in stage order.
    pub stage_time: Vec<Duration>,
    /// Peak linear memory of each stage's instance so far, in bytes.
    pub stage_peak: Vec<usize>,
    /// The same for each validator, in spec order (0: not instantiated).
    pub validator_peak: Vec<usize>,
}

/// A failure processing one batch.
#[derive(Debug, Clone)]
pub struct BatchError {
    pub error: CallError,
    pub first_row: u64,
    pub rows: usize,
}

/// One set of plugin instances; processes batches one at a time.
pub struct Worker<P: std::ops::Deref<Target = Pipeline>> {
    pipeline: P,
    stages: Vec<Option<Instance>>,
    validators: Vec<Option<Instance>>,
}

impl<P: std::ops::Deref<Target = Pipeline>> Worker<P> {
    fn new(pipeline: P) -> Worker<P> {
        let (stages, validators) = (pipeline.stages.len(), pipeline.validators.len());
        Worker {
            pipeline,
            stages: (0..stages).map(|_| None).collect(),
            validators: (0..validators).map(|_| None).collect(),
        }
    }

    /// The pipeline this worker runs.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    fn validate_at(
        &mut self,
        at: usize,
        batch: Batch,
        row_map: &mut Option<Vec<u64>>,
        first_row: u64,
        findings: &mut Vec<LocatedFinding>,
        rejected: &mut usize,
    ) -> Result<Batch, CallError> {
        let mut batch = batch;
        for (vi, slot) in self.pipeline.validators.iter().enumerate() {
            if slot.at != at {
                continue;
            }
            let reference = self.pipeline.refs[at].as_ref();
            let inst = ensure(
                &mut self.validators[vi],
                &self.pipeline.rt,
                &slot.placement,
                reference,
            )?;
            let seed = call_seed(&slot.placement.stage, first_row);
            let found = match inst.validate(batch.clone(), seed) {
                Ok(f) => f,
                Err(e) => {
                    if inst.is_poisoned() {
                        self.validators[vi] = None;
                    }
                    return Err(e);
                }
            };
            let mut keep = vec![true; batch.rows()];
            let mut reject_all = false;
            for f in found {
                let input_row = f.row.and_then(|r| {
                    row_map
                        .as_ref()
                        .map_or(Some(first_row + u64::from(r)), |m| {
                            m.get(r as usize).copied()
                        })
                });
                if slot.policy == Policy::Reject && f.severity == Severity::Error {
                    match f.row {
                        Some(r) if (r as usize) < keep.len() => keep[r as usize] = false,
                        _ => reject_all = true,
                    }
                }
                findings.push(LocatedFinding {
                    validator: slot.placement.stage.clone(),
                    finding: f,
                    input_row,
                });
            }
            if reject_all {
                keep.iter_mut().for_each(|k| *k = false);
            }
            let dropped = keep.iter().filter(|k| !**k).count();
            if dropped > 0 {
                *rejected += dropped;
                let map = row_map
                    .take()
                    .unwrap_or_else(|| (0..batch.rows() as u64).map(|r| first_row + r).collect());
                *row_map = Some(
                    map.into_iter()
                        .zip(&keep)
                        .filter(|(_, k)| **k)
                        .map(|(r, _)| r)
                        .collect(),
                );
                batch = batch.filter(&keep);
            }
        }
        Ok(batch)
    }

    /// Runs one batch through validators and stages. `first_row` is the
    /// batch's offset in the input (it seeds randomness and locates findings).
    pub fn process(&mut self, input: Batch, first_row: u64) -> Result<Processed, BatchError> {
        let rows_in = input.rows();
        let fail = |error| BatchError {
            error,
            first_row,
            rows: rows_in,
        };
        let mut findings = Vec::new();
        let mut rejected = 0;
        let mut row_map: Option<Vec<u64>> = None;
        let mut taps = Vec::new();
        let mut stage_time = Vec::with_capacity(self.pipeline.stages.len());
        let mut stage_peak = Vec::with_capacity(self.pipeline.stages.len());
        let tapped: Vec<bool> = (0..=self.pipeline.stages.len())
            .map(|at| {
                self.pipeline
                    .monitors
                    .iter()
                    .any(|m| m.at == at && !m.labels)
            })
            .collect();
        let tap = |at: usize, b: &Batch, taps: &mut Vec<(usize, Batch)>| {
            if tapped[at] {
                taps.push((at, b.clone()));
            }
        };
        let mut batch = self
            .validate_at(
                0,
                input,
                &mut row_map,
                first_row,
                &mut findings,
                &mut rejected,
            )
            .map_err(fail)?;
        tap(0, &batch, &mut taps);
        for i in 0..self.pipeline.stages.len() {
            let placement = &self.pipeline.stages[i];
            let started = Instant::now();
            let inst = ensure(
                &mut self.stages[i],
                &self.pipeline.rt,
                placement,
                self.pipeline.refs[i].as_ref(),
            )
            .map_err(fail)?;
            let rows_before = batch.rows();
            let result = inst.process(batch, call_seed(&placement.stage, first_row));
            stage_peak.push(inst.peak_memory());
            match result {
                Ok(out) => {
                    if out.rows() != rows_before {
                        // Row identity is lost once a stage changes the row count.
                        row_map = Some(Vec::new());
                    }
                    batch = out;
                }
                Err(e) => {
                    if inst.is_poisoned() {
                        self.stages[i] = None;
                    }
                    return Err(fail(e));
                }
            }
            stage_time.push(started.elapsed());
            batch = self
                .validate_at(
                    i + 1,
                    batch,
                    &mut row_map,
                    first_row,
                    &mut findings,
                    &mut rejected,
                )
                .map_err(fail)?;
            tap(i + 1, &batch, &mut taps);
        }
        Ok(Processed {
            output: batch,
            findings,
            rows_in,
            rows_rejected: rejected,
            taps,
            stage_time,
            stage_peak,
            validator_peak: self
                .validators
                .iter()
                .map(|v| v.as_ref().map_or(0, Instance::peak_memory))
                .collect(),
        })
    }
}

fn ensure<'a>(
    slot: &'a mut Option<Instance>,
    rt: &Runtime,
    placement: &Placement,
    reference: Option<&Batch>,
) -> Result<&'a mut Instance, CallError> {
    if slot.is_none() {
        *slot = Some(Instance::create(rt, placement, reference)?);
    }
    slot.as_mut().ok_or_else(|| CallError {
        plugin: placement.plugin.name().to_string(),
        stage: placement.stage.clone(),
        call: "create",
        outcome: Outcome::Error,
        limit: None,
        column: None,
        message: "instance unavailable".into(),
    })
}
