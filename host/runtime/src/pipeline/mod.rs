//! The pipeline executor: validators, transform stages and monitors wired as
//! the spec says, input streamed in batches across worker threads (one store
//! per instance, instances reused across the batches of a run), outputs and
//! monitor observations put back in input order.
//!
//! One file per job: [`resolve`] finds plugins and models, [`load`] turns a
//! spec into a [`Pipeline`] (stages, validators, monitors, fitted references),
//! [`worker`] runs one batch through one set of instances, [`run`] streams a
//! whole input across workers and collects in order, [`monitors`] feeds the
//! monitors and evaluates their alerts (delivery is the caller's
//! [`AlertSink`](crate::alert::AlertSink)).

mod config_schema;
mod load;
mod monitors;
mod resolve;
mod run;
mod worker;

pub use monitors::{LiveMonitors, Monitor, MonitorResult, MonitorState};
pub use resolve::{FoundModel, PluginDirs, PluginResolver, is_model_path, model_from_path};
pub use run::{FindingCounts, Progress, RunError, RunOptions, RunSummary};
pub use worker::{BatchError, LocatedFinding, Processed, Worker};

use crate::alert::AlertSpec;
use crate::engine::Runtime;
use crate::error::{CallError, RuntimeError};
use crate::instance::{Placement, Severity};
use crate::spec::{INPUT, PipelineSpec, Policy, SpecError};
use crate::window::WindowKind;
use keel_data::Batch;
use keel_data::io::{ReadError, Schema};
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Fed joined prediction + label rows as labels arrive, not stage output.
    labels: bool,
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

    /// The reference data as the input reads it (the spec's `reference`), if any.
    pub fn input_reference(&self) -> Option<&Batch> {
        self.refs.first()?.as_ref()
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

/// The WIT name of a severity.
pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}
