//! The pipeline executor: validators, transform stages and monitors wired as
//! the spec says, input streamed in batches across worker threads (one store
//! per instance, instances reused across the batches of a run), outputs and
//! monitor observations put back in input order.

use crate::alert::{self, Alert, AlertSpec, AlertState};
use crate::engine::Runtime;
use crate::error::{CallError, Outcome, RuntimeError};
use crate::instance::{Finding, Instance, Placement, Report, Severity, call_seed};
use crate::plugin::{Plugin, PluginKind};
use crate::spec::{INPUT, PipelineSpec, Policy, SpecError, config_json};
use crate::window::{self, Watch, WindowKind, WindowReport, WindowState};
use keel_data::Batch;
use keel_data::io::{BatchSource, ReadError, Schema, SourceBatch};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Finds plugin bytes for a spec's `plugin = "…"` value.
pub trait PluginResolver {
    /// Returns the component bytes and a label for errors and records.
    fn resolve(&self, reference: &str, spec_dir: &Path) -> Result<(Vec<u8>, String), String>;

    /// Finds the model a stage's `models = [...]` entry names. By default
    /// only paths (relative to the spec); a resolver with a store also
    /// resolves `name@version`.
    fn resolve_model(&self, reference: &str, spec_dir: &Path) -> Result<FoundModel, String> {
        model_from_path(reference, spec_dir)
    }
}

/// A model file found for a stage.
#[derive(Debug, Clone)]
pub struct FoundModel {
    pub bytes: Vec<u8>,
    /// The name the plugin loads it by.
    pub name: String,
    /// The stored version, for `name@version` references.
    pub version: Option<String>,
    /// Where it came from, for errors and records.
    pub label: String,
}

/// Whether a `models` entry is a path (else `name@version`).
pub fn is_model_path(reference: &str) -> bool {
    reference.ends_with(".onnx") || reference.contains('/') || !reference.contains('@')
}

/// Reads a model named by path, relative to the spec; its name is the file stem.
pub fn model_from_path(reference: &str, spec_dir: &Path) -> Result<FoundModel, String> {
    if !is_model_path(reference) {
        return Err(format!(
            "`{reference}` names a stored model, but no store is open (auditing is off?); name an .onnx file instead"
        ));
    }
    let path = spec_dir.join(reference);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| format!("{}: no file name to load the model by", path.display()))?
        .to_string();
    Ok(FoundModel {
        bytes,
        name,
        version: None,
        label: path.display().to_string(),
    })
}

/// Resolves `name` as `<dir>/<name>.wasm` in each directory in turn, and a
/// value ending in `.wasm` or containing `/` as a path relative to the spec.
#[derive(Debug, Clone, Default)]
pub struct PluginDirs(pub Vec<PathBuf>);

impl PluginResolver for PluginDirs {
    fn resolve(&self, reference: &str, spec_dir: &Path) -> Result<(Vec<u8>, String), String> {
        let read = |p: &Path| {
            std::fs::read(p)
                .map(|b| (b, p.display().to_string()))
                .map_err(|e| format!("{}: {e}", p.display()))
        };
        if reference.ends_with(".wasm") || reference.contains('/') {
            return read(&spec_dir.join(reference));
        }
        for d in &self.0 {
            let p = d.join(format!("{reference}.wasm"));
            if p.is_file() {
                return read(&p);
            }
        }
        Err(format!(
            "no plugin `{reference}` in the plugin directories ({}); pass --plugin-dir or set KEEL_PLUGIN_PATH",
            self.0
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// Why a pipeline could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("{}: `{key}`: {message}", file.display())]
    Plugin {
        file: PathBuf,
        key: String,
        message: String,
    },
    // The runtime error is part of the message, not a `source`: a chain
    // printer (`{:#}`) would say it twice.
    #[error("{}: `{key}`: {error}", file.display())]
    Runtime {
        file: PathBuf,
        key: String,
        error: RuntimeError,
    },
    #[error(transparent)]
    Reference(#[from] ReadError),
    #[error("fitting on the reference data: {0}")]
    Fit(CallError),
}

struct ValidatorSlot {
    at: usize,
    policy: Policy,
    placement: Placement,
}

struct MonitorSlot {
    at: usize,
    placement: Placement,
    reference: Batch,
    window: Option<WindowKind>,
    alerts: AlertSpec,
}

/// A loaded pipeline: plugins compiled, references fitted, ready to run.
pub struct Pipeline {
    rt: Arc<Runtime>,
    spec: PipelineSpec,
    stages: Vec<Placement>,
    validators: Vec<ValidatorSlot>,
    monitors: Vec<MonitorSlot>,
    /// Reference data at each point: 0 = input, i + 1 = after stage i.
    refs: Vec<Option<Batch>>,
    schema: Option<Schema>,
}

/// Where a plugin came from, for summaries and the audit log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginUse {
    pub role: &'static str,
    pub name: String,
    pub plugin: String,
    pub version: String,
    pub digest: String,
    pub config_digest: String,
    /// Models the stage may load, with their digests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelUse>,
}

/// A model a stage may load, for summaries and the audit log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelUse {
    /// The name the plugin loads it by.
    pub name: String,
    /// Its stored version, for `name@version` references.
    pub version: Option<String>,
    /// `sha256:<hex>` of the model file.
    pub digest: String,
}

impl Pipeline {
    /// Loads the spec at `path`, resolving plugins with `resolver`.
    pub fn load(
        rt: Arc<Runtime>,
        path: &Path,
        resolver: &dyn PluginResolver,
    ) -> Result<Pipeline, LoadError> {
        let spec = PipelineSpec::load(path)?;
        Pipeline::from_spec(rt, spec, path, resolver)
    }

    /// Builds a pipeline from a parsed spec; `path` anchors relative paths.
    pub fn from_spec(
        rt: Arc<Runtime>,
        spec: PipelineSpec,
        path: &Path,
        resolver: &dyn PluginResolver,
    ) -> Result<Pipeline, LoadError> {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut cache: HashMap<String, Plugin> = HashMap::new();
        let mut load =
            |reference: &str, key: String, want: PluginKind| -> Result<Plugin, LoadError> {
                let plugin = match cache.get(reference) {
                    Some(p) => p.clone(),
                    None => {
                        let (bytes, label) =
                            resolver.resolve(reference, &dir).map_err(|message| {
                                LoadError::Plugin {
                                    file: path.to_path_buf(),
                                    key: key.clone(),
                                    message,
                                }
                            })?;
                        let p = Plugin::load(&rt, &bytes, &label).map_err(|error| {
                            LoadError::Runtime {
                                file: path.to_path_buf(),
                                key: key.clone(),
                                error,
                            }
                        })?;
                        cache.insert(reference.to_string(), p.clone());
                        p
                    }
                };
                if plugin.kind() != want {
                    return Err(LoadError::Runtime {
                        file: path.to_path_buf(),
                        key,
                        error: RuntimeError::WrongKind {
                            plugin: plugin.name().to_string(),
                            role: "this entry".into(),
                            expected: want.as_str(),
                            found: plugin.kind().as_str(),
                        },
                    });
                }
                Ok(plugin)
            };
        let resolve_grants = |grants: &[crate::sandbox::Grant]| {
            grants
                .iter()
                .map(|g| crate::sandbox::Grant {
                    host: dir.join(&g.host),
                    ..g.clone()
                })
                .collect::<Vec<_>>()
        };
        let mut stages = Vec::new();
        for (i, s) in spec.stages.iter().enumerate() {
            let plugin = load(
                &s.plugin,
                format!("stages[{i}].plugin"),
                PluginKind::Transform,
            )?;
            let mut models: Vec<crate::nn::StageModel> = Vec::new();
            // Said before any model is looked up, so a missing file cannot hide it.
            if !cfg!(feature = "nn") && !s.models.is_empty() {
                return Err(LoadError::Plugin {
                    file: path.to_path_buf(),
                    key: format!("stages[{i}].models"),
                    message: crate::nn::ModelError::Disabled {
                        source_name: format!("stage `{}`", s.name),
                    }
                    .to_string(),
                });
            }
            for (j, reference) in s.models.iter().enumerate() {
                let key = format!("stages[{i}].models[{j}]");
                let found = resolver.resolve_model(reference, &dir).map_err(|message| {
                    LoadError::Plugin {
                        file: path.to_path_buf(),
                        key: key.clone(),
                        message,
                    }
                })?;
                if models.iter().any(|m| m.name == found.name) {
                    return Err(LoadError::Plugin {
                        file: path.to_path_buf(),
                        key,
                        message: format!(
                            "a second model named `{}`: the plugin loads models by name, so names must differ",
                            found.name
                        ),
                    });
                }
                let model =
                    rt.load_model(&found.bytes, &found.label)
                        .map_err(|e| LoadError::Plugin {
                            file: path.to_path_buf(),
                            key,
                            message: e.to_string(),
                        })?;
                models.push(crate::nn::StageModel {
                    name: found.name,
                    reference: reference.clone(),
                    version: found.version,
                    model,
                });
            }
            stages.push(Placement {
                plugin,
                stage: s.name.clone(),
                limits: s.limits,
                grants: resolve_grants(&s.grants),
                config: config_json(&s.config),
                models,
            });
        }
        let mut validators = Vec::new();
        for (i, v) in spec.validators.iter().enumerate() {
            let plugin = load(
                &v.plugin,
                format!("validators[{i}].plugin"),
                PluginKind::Validator,
            )?;
            validators.push(ValidatorSlot {
                at: point_of(&spec, &v.at),
                policy: v.policy,
                placement: Placement {
                    plugin,
                    stage: v.name.clone(),
                    limits: v.limits,
                    grants: Vec::new(),
                    config: config_json(&v.config),
                    models: Vec::new(),
                },
            });
        }
        let mut monitor_plugins = Vec::new();
        for (i, m) in spec.monitors.iter().enumerate() {
            let plugin = load(
                &m.plugin,
                format!("monitors[{i}].plugin"),
                PluginKind::Monitor,
            )?;
            monitor_plugins.push(plugin);
        }
        let raw_ref = match &spec.reference {
            Some(r) => Some(keel_data::io::read_all(&dir.join(r), None)?),
            None => None,
        };
        let schema = raw_ref.as_ref().map(Schema::of);
        let mut pipeline = Pipeline {
            rt,
            spec,
            stages,
            validators,
            monitors: Vec::new(),
            refs: vec![raw_ref.clone()],
            schema,
        };
        // Fit stage by stage: each stage sees the reference as the stages
        // before it transformed it.
        if let Some(mut current) = raw_ref {
            for i in 0..pipeline.stages.len() {
                let placement = &pipeline.stages[i];
                let mut inst = Instance::create(&pipeline.rt, placement, Some(&current))
                    .map_err(LoadError::Fit)?;
                current = run_chunked(&mut inst, current, pipeline.batch_size(), &placement.stage)
                    .map_err(LoadError::Fit)?;
                pipeline.refs.push(Some(current.clone()));
            }
        } else {
            pipeline
                .refs
                .extend((0..pipeline.stages.len()).map(|_| None));
        }
        for (i, m) in pipeline.spec.monitors.clone().iter().enumerate() {
            let at = point_of(&pipeline.spec, &pipeline.spec.monitor_at(m));
            let reference = match &m.reference {
                Some(r) => {
                    let raw = keel_data::io::read_all(&dir.join(r), pipeline.schema.as_ref())?;
                    pipeline.propagate(raw, at).map_err(LoadError::Fit)?
                }
                None => pipeline.refs[at].clone().unwrap_or_default(),
            };
            pipeline.monitors.push(MonitorSlot {
                at,
                placement: Placement {
                    plugin: monitor_plugins[i].clone(),
                    stage: m.name.clone(),
                    limits: m.limits,
                    grants: Vec::new(),
                    config: config_json(&m.config),
                    models: Vec::new(),
                },
                reference,
                // Checked when the spec was parsed.
                window: m.window.as_ref().and_then(|w| w.kind().ok()),
                alerts: m.alerts.clone().unwrap_or_default(),
            });
        }
        Ok(pipeline)
    }

    /// Pushes raw data through the stages before point `upto`.
    fn propagate(&self, raw: Batch, upto: usize) -> Result<Batch, CallError> {
        let mut current = raw;
        for (i, placement) in self.stages.iter().take(upto).enumerate() {
            let mut inst = Instance::create(&self.rt, placement, self.refs[i].as_ref())?;
            current = run_chunked(&mut inst, current, self.batch_size(), &placement.stage)?;
        }
        Ok(current)
    }

    /// The parsed spec.
    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// The input schema fixed by the reference data, if any.
    pub fn input_schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    /// The spec's batch size.
    pub fn batch_size(&self) -> usize {
        self.spec.run.batch_size
    }

    /// Every plugin the pipeline uses, with digests.
    pub fn plugins(&self) -> Vec<PluginUse> {
        use sha2::Digest;
        let make = |role, p: &Placement| PluginUse {
            role,
            name: p.stage.clone(),
            plugin: p.plugin.name().to_string(),
            version: p.plugin.version().to_string(),
            digest: p.plugin.digest().to_string(),
            config_digest: format!("sha256:{}", hex::encode(sha2::Sha256::digest(&p.config))),
            models: p
                .models
                .iter()
                .map(|m| ModelUse {
                    name: m.name.clone(),
                    version: m.version.clone(),
                    digest: m.model.digest().to_string(),
                })
                .collect(),
        };
        self.stages
            .iter()
            .map(|p| make("stage", p))
            .chain(
                self.validators
                    .iter()
                    .map(|v| make("validator", &v.placement)),
            )
            .chain(self.monitors.iter().map(|m| make("monitor", &m.placement)))
            .collect()
    }

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

    /// The output columns and their types, as the reference data produced
    /// them (the model's outputs), when the pipeline has reference data.
    pub fn output_columns(&self) -> Option<Vec<(String, keel_data::DataType)>> {
        self.refs.last()?.as_ref().map(|b| {
            b.columns()
                .iter()
                .map(|c| (c.name.clone(), c.data_type()))
                .collect()
        })
    }

    /// Creates the pipeline's monitors (one instance each).
    pub fn monitors(&self) -> Result<Vec<Monitor>, CallError> {
        self.monitors
            .iter()
            .map(|m| {
                let mut instance = Instance::create(&self.rt, &m.placement, Some(&m.reference))?;
                let watch = Watch::new(&m.placement.stage, m.window.clone(), &mut instance)
                    .map_err(|message| CallError {
                        plugin: m.placement.plugin.name().to_string(),
                        stage: m.placement.stage.clone(),
                        call: "snapshot",
                        outcome: Outcome::Error,
                        limit: None,
                        column: None,
                        message,
                    })?;
                Ok(Monitor {
                    name: m.placement.stage.clone(),
                    at: m.at,
                    instance,
                    watch,
                    alert_spec: m.alerts.clone(),
                    alert_state: AlertState::default(),
                    windows: Vec::new(),
                    alerts: Vec::new(),
                })
            })
            .collect()
    }

    /// The reference data at a monitor's attachment point (for reports and histograms).
    pub fn monitor_reference(&self, name: &str) -> Option<&Batch> {
        self.monitors
            .iter()
            .find(|m| m.placement.stage == name)
            .map(|m| &m.reference)
    }

    fn point_name(&self, at: usize) -> String {
        if at == 0 {
            INPUT.to_string()
        } else {
            self.stages[at - 1].stage.clone()
        }
    }
}

/// The point index of `at`: 0 = input, i + 1 = after stage i.
fn point_of(spec: &PipelineSpec, at: &str) -> usize {
    if at == INPUT {
        0
    } else {
        spec.stages
            .iter()
            .position(|s| s.name == at)
            .map_or(0, |i| i + 1)
    }
}

/// Runs a whole batch through one instance in chunks of `chunk` rows.
fn run_chunked(
    inst: &mut Instance,
    data: Batch,
    chunk: usize,
    stage: &str,
) -> Result<Batch, CallError> {
    let mut out = Batch::default();
    let rows = data.rows();
    let mut start = 0;
    loop {
        let end = (start + chunk).min(rows);
        let piece = inst.process(data.slice(start, end), call_seed(stage, start as u64))?;
        out.append(piece).map_err(|e| CallError {
            plugin: String::new(),
            stage: stage.to_string(),
            call: "process",
            outcome: Outcome::Error,
            limit: None,
            column: None,
            message: format!("output changed shape between batches: {e}"),
        })?;
        start = end;
        if start >= rows {
            break;
        }
    }
    Ok(out)
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
            .map(|at| self.pipeline.monitors.iter().any(|m| m.at == at))
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

/// A live monitor.
pub struct Monitor {
    pub name: String,
    at: usize,
    pub instance: Instance,
    watch: Watch,
    alert_spec: AlertSpec,
    alert_state: AlertState,
    windows: Vec<WindowReport>,
    alerts: Vec<Alert>,
}

/// A monitor's state between runs: its open window and its alerts.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MonitorState {
    /// Identifies what the state belongs to (the caller's choice, e.g. the
    /// pipeline digest); state saved under another identity is not resumed.
    pub identity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowState>,
    #[serde(default)]
    pub alerts: AlertState,
}

/// What a monitor concluded over a run.
#[derive(Debug, Clone)]
pub struct MonitorResult {
    pub name: String,
    pub at: String,
    /// The report on the open window (windowed) or on the whole run.
    pub report: Option<Report>,
    /// Where that report's window lies (`partial` when it is still open).
    pub window: Option<window::WindowInfo>,
    pub error: Option<String>,
    /// Windows closed during the run, in order.
    pub windows: Vec<WindowReport>,
    /// Alerts raised during the run.
    pub alerts: Vec<Alert>,
    /// State to save so the next run carries on (without `identity`).
    pub state: Option<MonitorState>,
    /// Largest linear memory the monitor's instance reached, in bytes.
    pub peak_memory_bytes: Option<u64>,
}

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
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub batch_size: Option<usize>,
    pub workers: Option<usize>,
    /// Saved monitor states by monitor name, to carry on from.
    pub resume: HashMap<String, MonitorState>,
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
            .live_monitors(&options.resume)
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

/// A pipeline's monitors while data flows: fed batch by batch, concluded
/// at the end of a run (or whenever a daemon wants a status).
pub struct LiveMonitors {
    monitors: Vec<Monitor>,
    /// A monitor that failed is disabled, with its error kept for its result.
    errors: Vec<Option<String>>,
}

impl LiveMonitors {
    /// The monitors' names, in spec order.
    pub fn names(&self) -> Vec<String> {
        self.monitors.iter().map(|m| m.name.clone()).collect()
    }

    /// Windows closed and alerts raised since the last call, per monitor
    /// name; they are handed over once (a daemon records them as they come).
    pub fn take_closed(&mut self) -> Vec<(String, Vec<WindowReport>, Vec<Alert>)> {
        self.monitors
            .iter_mut()
            .filter(|m| !m.windows.is_empty() || !m.alerts.is_empty())
            .map(|m| {
                (
                    m.name.clone(),
                    std::mem::take(&mut m.windows),
                    std::mem::take(&mut m.alerts),
                )
            })
            .collect()
    }
}

impl Pipeline {
    /// Creates the monitors and resumes each from its saved state, if any.
    /// A state that cannot be resumed disables that monitor (logged), not the run.
    pub fn live_monitors(
        &self,
        resume: &HashMap<String, MonitorState>,
    ) -> Result<LiveMonitors, CallError> {
        let mut monitors = self.monitors()?;
        let mut errors: Vec<Option<String>> = vec![None; monitors.len()];
        for (m, err) in monitors.iter_mut().zip(errors.iter_mut()) {
            if let Some(saved) = resume.get(&m.name) {
                m.alert_state = saved.alerts.clone();
                if let Some(w) = &saved.window
                    && let Err(e) = m.watch.resume(&mut m.instance, w)
                {
                    tracing::error!(monitor = %m.name, error = %e, "cannot resume the saved window; monitor disabled for this run");
                    *err = Some(format!("resuming the saved window: {e}"));
                }
            }
        }
        Ok(LiveMonitors { monitors, errors })
    }

    /// Feeds the batches tapped by one [`Worker::process`] call to the
    /// monitors attached at their points; windows that close are evaluated
    /// for alerts and kept until [`LiveMonitors::take_closed`] or [`Pipeline::conclude`].
    pub fn observe(&self, live: &mut LiveMonitors, taps: &[(usize, Batch)], now_ms: i64) {
        for (m, err) in live.monitors.iter_mut().zip(live.errors.iter_mut()) {
            if err.is_some() {
                continue;
            }
            let Some((_, b)) = taps.iter().find(|(at, _)| *at == m.at) else {
                continue;
            };
            match m.watch.feed(&mut m.instance, b, now_ms) {
                Ok(closed) => {
                    for wr in closed {
                        self.raise(m, &wr);
                        m.windows.push(wr);
                    }
                }
                Err(e) => {
                    // A monitor is an observer: its failure is recorded, the data flows on.
                    tracing::error!(monitor = %m.name, error = %e, "monitor failed; disabled from here on");
                    *err = Some(e);
                }
            }
        }
    }

    /// Each monitor's result: its report on the open window (or, unwindowed,
    /// on everything seen), the windows closed and alerts raised since the
    /// last call, and the state to save. With `last`, unwindowed monitors
    /// raise their alerts, since what they saw is their only window (a status
    /// taken mid-stream passes `false`).
    pub fn conclude(&self, live: &mut LiveMonitors, last: bool) -> Vec<MonitorResult> {
        let mut out = Vec::with_capacity(live.monitors.len());
        for (m, err) in live.monitors.iter_mut().zip(live.errors.iter()) {
            let (open, error) = match err {
                Some(e) => (None, Some(e.clone())),
                None => match m.watch.report_open(&mut m.instance) {
                    Ok(r) => (Some(r), None),
                    Err(e) => (None, Some(e)),
                },
            };
            // Unwindowed, the run is the window; windowed, a partial window
            // raises nothing (too few rows to judge).
            if let Some(wr) = &open
                && last
                && !m.watch.windowed()
            {
                let wr = wr.clone();
                self.raise(m, &wr);
            }
            let state = if error.is_none() {
                let window = if m.watch.windowed() {
                    m.watch.save(&mut m.instance).ok()
                } else {
                    None
                };
                Some(MonitorState {
                    identity: String::new(),
                    window,
                    alerts: m.alert_state.clone(),
                })
            } else {
                None
            };
            out.push(MonitorResult {
                name: m.name.clone(),
                at: self.point_name(m.at),
                window: open.as_ref().map(|w| w.window.clone()),
                report: open.map(|w| w.report),
                error,
                windows: std::mem::take(&mut m.windows),
                alerts: std::mem::take(&mut m.alerts),
                state,
                peak_memory_bytes: Some(m.instance.peak_memory() as u64).filter(|p| *p > 0),
            });
        }
        out
    }
}

impl Pipeline {
    /// Evaluates one window's report for alerts; logs and delivers what it raises.
    fn raise(&self, m: &mut Monitor, wr: &WindowReport) {
        let now = window::now_ms();
        let ev = m
            .alert_state
            .evaluate(&m.alert_spec, &wr.report, wr.window.index, now);
        for k in &ev.cleared {
            tracing::info!(monitor = %m.name, alert = %k, window = wr.window.index, "alert cleared");
        }
        if ev.raised.is_empty() {
            return;
        }
        let mut a = Alert {
            pipeline: self.spec.name.clone(),
            version: self.spec.version.clone(),
            monitor: m.name.clone(),
            time: window::rfc3339(now),
            window: wr.window.clone(),
            summary: wr.report.summary.clone(),
            raised: ev.raised,
            active: m.alert_state.active.keys().cloned().collect(),
            deliveries: Vec::new(),
        };
        tracing::warn!(
            monitor = %m.name,
            window = wr.window.index,
            raised = %a.raised.iter().map(|r| r.key.as_str()).collect::<Vec<_>>().join(", "),
            summary = %a.summary,
            "alert raised"
        );
        a.deliveries = alert::deliver(&m.alert_spec, &a);
        m.alerts.push(a);
    }
}

/// The WIT name of a severity.
pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}
