//! Loading a spec: each stage, validator and monitor resolved and compiled,
//! models loaded, reference data fitted stage by stage, monitors given their
//! baselines.

use super::{LoadError, MonitorSlot, Pipeline, PluginResolver, ValidatorSlot, point_of};
use crate::engine::Runtime;
use crate::error::{CallError, Outcome, RuntimeError};
use crate::instance::{Instance, Placement, call_seed};
use crate::nn::{ModelError, StageModel};
use crate::plugin::{Plugin, PluginKind};
use crate::sandbox::Grant;
use crate::spec::{PipelineSpec, StageSpec, config_json};
use keel_data::Batch;
use keel_data::io::Schema;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        let mut loader = Loader {
            rt: &rt,
            path,
            dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            resolver,
            cache: HashMap::new(),
        };
        let stages = loader.stages(&spec)?;
        let validators = loader.validators(&spec)?;
        let monitor_plugins = loader.monitor_plugins(&spec)?;
        let dir = loader.dir;
        let raw_ref = match &spec.reference {
            Some(r) => Some(keel_data::io::read_all(&dir.join(r), None)?),
            None => None,
        };
        let schema = raw_ref.as_ref().map(|r| input_schema(r, &spec));
        let mut pipeline = Pipeline {
            rt,
            spec,
            stages,
            validators,
            monitors: Vec::new(),
            refs: vec![raw_ref.clone()],
            schema,
        };
        pipeline.fit_references(raw_ref)?;
        pipeline.attach_monitors(monitor_plugins, &dir)?;
        Ok(pipeline)
    }

    /// Fits stage by stage: each stage sees the reference as the stages
    /// before it transformed it, and `refs` gets the data at every point.
    fn fit_references(&mut self, raw_ref: Option<Batch>) -> Result<(), LoadError> {
        let Some(mut current) = raw_ref else {
            self.refs.extend((0..self.stages.len()).map(|_| None));
            return Ok(());
        };
        for placement in &self.stages {
            let mut inst =
                Instance::create(&self.rt, placement, Some(&current)).map_err(LoadError::Fit)?;
            current = run_chunked(&mut inst, current, self.batch_size(), &placement.stage)
                .map_err(LoadError::Fit)?;
            self.refs.push(Some(current.clone()));
        }
        Ok(())
    }

    /// Gives each monitor its point and its baseline: its own reference,
    /// pushed through the stages before its point, or the pipeline's there.
    fn attach_monitors(&mut self, plugins: Vec<Plugin>, dir: &Path) -> Result<(), LoadError> {
        let specs = self.spec.monitors.clone();
        for (m, plugin) in specs.iter().zip(plugins) {
            let at = point_of(&self.spec, &self.spec.monitor_at(m));
            let reference = match &m.reference {
                Some(r) => {
                    let raw = keel_data::io::read_all(&dir.join(r), self.schema.as_ref())?;
                    self.propagate(raw, at).map_err(LoadError::Fit)?
                }
                None => self.refs[at].clone().unwrap_or_default(),
            };
            self.monitors.push(MonitorSlot {
                at,
                placement: Placement {
                    plugin,
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
                labels: m.feed == crate::spec::Feed::Labels,
            });
        }
        Ok(())
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
}

/// What loading a spec needs at hand: where it lives, how to find plugins,
/// and the plugins found so far (a plugin named twice is compiled once).
struct Loader<'a> {
    rt: &'a Runtime,
    path: &'a Path,
    dir: PathBuf,
    resolver: &'a dyn PluginResolver,
    cache: HashMap<String, Plugin>,
}

impl Loader<'_> {
    fn refused(&self, key: String, message: String) -> LoadError {
        LoadError::Plugin {
            file: self.path.to_path_buf(),
            key,
            message,
        }
    }

    fn failed(&self, key: String, error: RuntimeError) -> LoadError {
        LoadError::Runtime {
            file: self.path.to_path_buf(),
            key,
            error,
        }
    }

    /// Refuses a config its plugin's schema does not accept, naming the
    /// entry (`stages[1]`, the stage `impute`) and the key.
    fn check_config(
        &self,
        plugin: &Plugin,
        entry: (&str, usize, &str),
        config: &toml::Table,
    ) -> Result<(), LoadError> {
        let (section, i, name) = entry;
        let schema = &plugin.summary().config_schema;
        super::config_schema::check(schema, &config_json(config)).map_err(|(key, message)| {
            let role = section.trim_end_matches('s');
            let key = if key.is_empty() {
                format!("{section}[{i}].config")
            } else {
                format!("{section}[{i}].config.{key}")
            };
            self.refused(
                key,
                format!(
                    "{role} `{name}` (plugin `{}`): {message}; see `keel plugin inspect` for its config schema",
                    plugin.name()
                ),
            )
        })
    }

    /// The plugin `reference` names, which must be of kind `want`; `key`
    /// names the spec entry in errors.
    fn plugin(
        &mut self,
        reference: &str,
        key: String,
        want: PluginKind,
    ) -> Result<Plugin, LoadError> {
        let plugin = match self.cache.get(reference) {
            Some(p) => p.clone(),
            None => {
                let (bytes, label) = self
                    .resolver
                    .resolve(reference, &self.dir)
                    .map_err(|message| self.refused(key.clone(), message))?;
                let p = Plugin::load(self.rt, &bytes, &label)
                    .map_err(|error| self.failed(key.clone(), error))?;
                self.cache.insert(reference.to_string(), p.clone());
                p
            }
        };
        if plugin.kind() != want {
            return Err(self.failed(
                key,
                RuntimeError::WrongKind {
                    plugin: plugin.name().to_string(),
                    role: "this entry".into(),
                    expected: want.as_str(),
                    found: plugin.kind().as_str(),
                },
            ));
        }
        Ok(plugin)
    }

    fn stages(&mut self, spec: &PipelineSpec) -> Result<Vec<Placement>, LoadError> {
        let mut stages = Vec::new();
        for (i, s) in spec.stages.iter().enumerate() {
            let plugin = self.plugin(
                &s.plugin,
                format!("stages[{i}].plugin"),
                PluginKind::Transform,
            )?;
            self.check_config(&plugin, ("stages", i, &s.name), &s.config)?;
            let models = self.models(i, s)?;
            stages.push(Placement {
                plugin,
                stage: s.name.clone(),
                limits: s.limits,
                // Relative to the spec file.
                grants: s
                    .grants
                    .iter()
                    .map(|g| Grant {
                        host: self.dir.join(&g.host),
                        ..g.clone()
                    })
                    .collect(),
                config: config_json(&s.config),
                models,
            });
        }
        Ok(stages)
    }

    /// The models stage `i` names, loaded (and shared through the runtime).
    fn models(&self, i: usize, s: &StageSpec) -> Result<Vec<StageModel>, LoadError> {
        let mut models: Vec<StageModel> = Vec::new();
        // Said before any model is looked up, so a missing file cannot hide it.
        if !cfg!(feature = "nn") && !s.models.is_empty() {
            return Err(self.refused(
                format!("stages[{i}].models"),
                ModelError::Disabled {
                    source_name: format!("stage `{}`", s.name),
                }
                .to_string(),
            ));
        }
        for (j, reference) in s.models.iter().enumerate() {
            let key = format!("stages[{i}].models[{j}]");
            let found = self
                .resolver
                .resolve_model(reference, &self.dir)
                .map_err(|message| self.refused(key.clone(), message))?;
            if models.iter().any(|m| m.name == found.name) {
                return Err(self.refused(
                    key,
                    format!(
                        "a second model named `{}`: the plugin loads models by name, so names must differ",
                        found.name
                    ),
                ));
            }
            let model = self
                .rt
                .load_model(&found.bytes, &found.label)
                .map_err(|e| self.refused(key, e.to_string()))?;
            models.push(StageModel {
                name: found.name,
                reference: reference.clone(),
                version: found.version,
                model,
            });
        }
        Ok(models)
    }

    fn validators(&mut self, spec: &PipelineSpec) -> Result<Vec<ValidatorSlot>, LoadError> {
        let mut validators = Vec::new();
        for (i, v) in spec.validators.iter().enumerate() {
            let plugin = self.plugin(
                &v.plugin,
                format!("validators[{i}].plugin"),
                PluginKind::Validator,
            )?;
            self.check_config(&plugin, ("validators", i, &v.name), &v.config)?;
            validators.push(ValidatorSlot {
                at: point_of(spec, &v.at),
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
        Ok(validators)
    }

    /// The monitors' plugins; the monitors themselves are attached once the
    /// reference data is fitted.
    fn monitor_plugins(&mut self, spec: &PipelineSpec) -> Result<Vec<Plugin>, LoadError> {
        spec.monitors
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let plugin = self.plugin(
                    &m.plugin,
                    format!("monitors[{i}].plugin"),
                    PluginKind::Monitor,
                )?;
                self.check_config(&plugin, ("monitors", i, &m.name), &m.config)?;
                Ok(plugin)
            })
            .collect()
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

/// The input schema the reference fixes: its columns, except the truth that
/// a monitor's config names as `label_column` — it is in the reference so
/// performance monitors can fit on it, and it arrives later, as labels,
/// never with the inputs.
fn input_schema(reference: &Batch, spec: &PipelineSpec) -> Schema {
    let mut schema = Schema::of(reference);
    let truths: Vec<&str> = spec
        .monitors
        .iter()
        .filter_map(|m| m.config.get("label_column").and_then(|v| v.as_str()))
        .collect();
    schema.fields.retain(|f| !truths.contains(&f.name.as_str()));
    schema
}
