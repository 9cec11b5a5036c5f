//! Pipeline specs (TOML): ordered transform stages, validators and monitors
//! attached to points of the pipeline, per-stage limits and grants. Parsing
//! rejects unknown keys and dangling references with errors that name the file
//! and the offending key.

use crate::alert::AlertSpec;
use crate::sandbox::{Grant, Limits};
use crate::window::WindowSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where validators and monitors attach: the raw input or a stage's output.
pub const INPUT: &str = "input";

/// A whole pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The pipeline's name (lowercase letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// The pipeline's version.
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// Reference data (CSV / JSON Lines), relative to the spec file: fits
    /// stages that learn parameters, is the baseline of monitors, and fixes
    /// the input schema.
    #[serde(default)]
    pub reference: Option<PathBuf>,
    #[serde(default)]
    pub run: RunSpec,
    #[serde(default)]
    pub stages: Vec<StageSpec>,
    #[serde(default)]
    pub validators: Vec<ValidatorSpec>,
    #[serde(default)]
    pub monitors: Vec<MonitorSpec>,
}

fn default_version() -> String {
    "0.0.0".into()
}

/// Execution settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Rows per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Worker threads; default: the number of cores.
    #[serde(default)]
    pub workers: Option<usize>,
    /// The column that names each row (it must reach the output): what
    /// labels are joined on. Without it a row is `<record-id>:<row>` (the
    /// daemon's record id is the OIP request id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_column: Option<String>,
}

fn default_batch_size() -> usize {
    1024
}

impl Default for RunSpec {
    fn default() -> RunSpec {
        RunSpec {
            batch_size: default_batch_size(),
            workers: None,
            id_column: None,
        }
    }
}

/// A transform stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub name: String,
    /// A plugin name looked up in the plugin directories, or a path to a `.wasm` file.
    pub plugin: String,
    #[serde(default)]
    pub config: toml::Table,
    /// A TOML file (relative to the spec) whose table is the config; keys
    /// in `config` override it. Inlined when the spec is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_file: Option<PathBuf>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Models the stage's plugin may load through `wasi:nn` (`load-by-name`):
    /// `name@version` from the store, or a path to an `.onnx` file relative to
    /// the spec. The plugin loads each by its name without the version (the
    /// file stem for a path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
}

/// What a validator's error findings do to the data.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Record findings; let the data through.
    #[default]
    Warn,
    /// Drop rows with error findings (the whole batch for batch-level errors).
    Reject,
}

/// A validator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValidatorSpec {
    pub name: String,
    pub plugin: String,
    /// `input` or a stage name: validates that stage's output.
    #[serde(default = "default_at")]
    pub at: String,
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub config: toml::Table,
    /// As for stages: a TOML file whose table is the config (e.g. `keel profile` output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_file: Option<PathBuf>,
    #[serde(default)]
    pub limits: Limits,
}

fn default_at() -> String {
    INPUT.into()
}

/// A monitor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MonitorSpec {
    pub name: String,
    pub plugin: String,
    /// `input` or a stage name; default: the last stage's output.
    #[serde(default)]
    pub at: Option<String>,
    /// Its own reference file (raw input shape), instead of the pipeline's.
    #[serde(default)]
    pub reference: Option<PathBuf>,
    #[serde(default)]
    pub config: toml::Table,
    /// As for stages: a TOML file whose table is the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_file: Option<PathBuf>,
    #[serde(default)]
    pub limits: Limits,
    /// Report per window instead of once per run; see [`WindowSpec`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowSpec>,
    /// Alert policy and sinks; alerts are logged and recorded even without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertSpec>,
    /// What the monitor is fed: stage output (default), or stored
    /// predictions joined to their labels as labels arrive.
    #[serde(default, skip_serializing_if = "Feed::is_predictions")]
    pub feed: Feed,
}

/// What a monitor is fed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Feed {
    /// The output of its `at` point, as the pipeline runs.
    #[default]
    Predictions,
    /// Stored predictions joined to their labels, whenever labels are
    /// accepted (`keel feedback import`, the daemon's feedback endpoint).
    Labels,
}

impl Feed {
    fn is_predictions(&self) -> bool {
        *self == Feed::Predictions
    }
}

/// A spec that cannot be used: names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", file.display())]
    Parse { file: PathBuf, message: String },
    #[error("{}: `{key}`: {message}", file.display())]
    Invalid {
        file: PathBuf,
        key: String,
        message: String,
    },
}

/// A `config_file` larger than this is refused: a spec naming `/dev/zero`
/// or a huge file gets an error, not a host that reads forever.
pub const MAX_CONFIG_FILE_BYTES: u64 = 64 << 20;

fn read_capped(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_CONFIG_FILE_BYTES >> 20
        )));
    }
    Ok(text)
}

impl PipelineSpec {
    /// Reads and checks a spec file.
    pub fn load(path: &Path) -> Result<PipelineSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        PipelineSpec::parse(&text, path)
    }

    /// Parses and checks spec text; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<PipelineSpec, SpecError> {
        let spec: PipelineSpec = toml::from_str(text).map_err(|e| {
            let mut message = e.message().to_string();
            if let Some(span) = e.span() {
                // Count bytes, not chars: a span need not fall on a char boundary.
                let upto = &text.as_bytes()[..span.start.min(text.len())];
                let line = upto.iter().filter(|b| **b == b'\n').count() + 1;
                let snippet = text.lines().nth(line - 1).unwrap_or("").trim();
                message = format!("line {line}: {message} (at `{snippet}`)");
            }
            SpecError::Parse {
                file: file.to_path_buf(),
                message,
            }
        })?;
        let mut spec = spec;
        spec.inline_config_files(file)?;
        spec.check(file)?;
        Ok(spec)
    }

    /// Replaces each `config_file` by its table, under the inline `config` keys.
    fn inline_config_files(&mut self, file: &Path) -> Result<(), SpecError> {
        let dir = file.parent().unwrap_or(Path::new("."));
        let load =
            |key: String, path: &Path, inline: &toml::Table| -> Result<toml::Table, SpecError> {
                let full = dir.join(path);
                let bad = |message: String| SpecError::Invalid {
                    file: file.to_path_buf(),
                    key: key.clone(),
                    message,
                };
                let text = read_capped(&full)
                    .map_err(|e| bad(format!("cannot read {}: {e}", full.display())))?;
                let mut table: toml::Table = toml::from_str(&text)
                    .map_err(|e| bad(format!("{}: {}", full.display(), e.message())))?;
                for (k, v) in inline {
                    table.insert(k.clone(), v.clone());
                }
                Ok(table)
            };
        for (i, s) in self.stages.iter_mut().enumerate() {
            if let Some(p) = s.config_file.take() {
                s.config = load(format!("stages[{i}].config_file"), &p, &s.config)?;
            }
        }
        for (i, v) in self.validators.iter_mut().enumerate() {
            if let Some(p) = v.config_file.take() {
                v.config = load(format!("validators[{i}].config_file"), &p, &v.config)?;
            }
        }
        for (i, m) in self.monitors.iter_mut().enumerate() {
            if let Some(p) = m.config_file.take() {
                m.config = load(format!("monitors[{i}].config_file"), &p, &m.config)?;
            }
        }
        Ok(())
    }

    fn check(&self, file: &Path) -> Result<(), SpecError> {
        let bad = |key: String, message: String| SpecError::Invalid {
            file: file.to_path_buf(),
            key,
            message,
        };
        self.check_settings(&bad)?;
        self.check_names(&bad)?;
        self.check_limits(&bad)?;
        self.check_attachments(&bad)
    }

    /// The pipeline's name and its run settings.
    fn check_settings(&self, bad: &impl Fn(String, String) -> SpecError) -> Result<(), SpecError> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad(
                "name".into(),
                format!(
                    "`{}` is not a valid name (letters, digits, `-`, `_`, `.`)",
                    self.name
                ),
            ));
        }
        if self.run.batch_size == 0 {
            return Err(bad("run.batch_size".into(), "must be at least 1".into()));
        }
        if self.run.workers == Some(0) {
            return Err(bad("run.workers".into(), "must be at least 1".into()));
        }
        Ok(())
    }

    /// Stage, validator and monitor names: present, not `input`, unique.
    fn check_names(&self, bad: &impl Fn(String, String) -> SpecError) -> Result<(), SpecError> {
        let mut names: Vec<(String, String)> = Vec::new();
        let mut seen = |name: &str, key: String| -> Result<(), SpecError> {
            if name.is_empty() {
                return Err(bad(key, "name is empty".into()));
            }
            if name == INPUT {
                return Err(bad(key, format!("`{INPUT}` is reserved for the raw input")));
            }
            if let Some((_, other)) = names.iter().find(|(n, _)| *n == name) {
                return Err(bad(
                    key,
                    format!("name `{name}` is already used by `{other}`"),
                ));
            }
            names.push((name.to_string(), key));
            Ok(())
        };
        for (i, s) in self.stages.iter().enumerate() {
            seen(&s.name, format!("stages[{i}].name"))?;
        }
        for (i, v) in self.validators.iter().enumerate() {
            seen(&v.name, format!("validators[{i}].name"))?;
        }
        for (i, m) in self.monitors.iter().enumerate() {
            seen(&m.name, format!("monitors[{i}].name"))?;
        }
        Ok(())
    }

    /// Every entry's plugin is named and its limits are in range.
    fn check_limits(&self, bad: &impl Fn(String, String) -> SpecError) -> Result<(), SpecError> {
        let limits = self
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("stages[{i}]"), &s.limits, &s.plugin))
            .chain(
                self.validators
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("validators[{i}]"), &v.limits, &v.plugin)),
            )
            .chain(
                self.monitors
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (format!("monitors[{i}]"), &m.limits, &m.plugin)),
            );
        for (key, l, plugin) in limits {
            if plugin.trim().is_empty() {
                return Err(bad(format!("{key}.plugin"), "is empty".into()));
            }
            if l.memory_mb == 0 || l.memory_mb > 4096 {
                return Err(bad(
                    format!("{key}.limits.memory_mb"),
                    format!("{} is outside 1..=4096", l.memory_mb),
                ));
            }
            if l.timeout_ms == 0 {
                return Err(bad(
                    format!("{key}.limits.timeout_ms"),
                    "must be at least 1".into(),
                ));
            }
            if l.max_output_rows == 0 {
                return Err(bad(
                    format!("{key}.limits.max_output_rows"),
                    "must be at least 1".into(),
                ));
            }
        }
        Ok(())
    }

    /// Where validators and monitors attach, and each monitor's window,
    /// alerts and reference data.
    fn check_attachments(
        &self,
        bad: &impl Fn(String, String) -> SpecError,
    ) -> Result<(), SpecError> {
        // `at` may only name the input or an earlier-declared stage; stages
        // are an ordered list, so the graph cannot have a cycle.
        let stage_names: Vec<&str> = self.stages.iter().map(|s| s.name.as_str()).collect();
        let check_at = |at: &str, key: String| -> Result<(), SpecError> {
            if at == INPUT || stage_names.contains(&at) {
                Ok(())
            } else {
                Err(bad(
                    key,
                    format!(
                        "`{at}` is neither `{INPUT}` nor a stage (stages: {})",
                        stage_names.join(", ")
                    ),
                ))
            }
        };
        for (i, v) in self.validators.iter().enumerate() {
            check_at(&v.at, format!("validators[{i}].at"))?;
        }
        for (i, m) in self.monitors.iter().enumerate() {
            if let Some(at) = &m.at {
                check_at(at, format!("monitors[{i}].at"))?;
            }
            if let Some(w) = &m.window {
                w.kind()
                    .map_err(|(k, msg)| bad(format!("monitors[{i}].window.{k}"), msg))?;
            }
            if let Some(a) = &m.alerts {
                a.check()
                    .map_err(|(k, msg)| bad(format!("monitors[{i}].alerts.{k}"), msg))?;
            }
            if m.reference.is_none() && self.reference.is_none() {
                return Err(bad(
                    format!("monitors[{i}].reference"),
                    "a monitor needs reference data: set `reference` here or at the top level"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// Where a monitor attaches: its `at`, or the last stage, or the input.
    pub fn monitor_at(&self, m: &MonitorSpec) -> String {
        m.at.clone().unwrap_or_else(|| {
            self.stages
                .last()
                .map_or_else(|| INPUT.to_string(), |s| s.name.clone())
        })
    }
}

/// Converts a TOML config table to the JSON text plugins receive.
pub fn config_json(t: &toml::Table) -> String {
    serde_json::to_string(t).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PipelineSpec, SpecError> {
        PipelineSpec::parse(text, Path::new("p.toml"))
    }

    #[test]
    fn parses_a_full_spec() {
        let s = parse(
            r#"
name = "p"
reference = "ref.csv"
[run]
batch_size = 10
[[stages]]
name = "a"
plugin = "scaler"
[stages.config]
columns = ["x"]
[stages.limits]
memory_mb = 32
[[validators]]
name = "v"
plugin = "rules"
at = "a"
policy = "reject"
[[monitors]]
name = "m"
plugin = "drift"
"#,
        )
        .unwrap();
        assert_eq!(s.stages[0].limits.memory_mb, 32);
        assert_eq!(s.stages[0].limits.timeout_ms, 10_000);
        assert_eq!(s.validators[0].policy, Policy::Reject);
        assert_eq!(s.monitor_at(&s.monitors[0]), "a");
        assert_eq!(config_json(&s.stages[0].config), r#"{"columns":["x"]}"#);
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = parse("name = \"p\"\n[[stages]]\nname = \"a\"\nplugin = \"x\"\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.toml: line 5: unknown field `bogus`"),
            "{e}"
        );

        let e = parse("name = \"p\"\n[[stages]]\nname = \"a\"\nplugin = \"x\"\n[[validators]]\nname = \"v\"\nplugin = \"y\"\nat = \"nope\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "p.toml: `validators[0].at`: `nope` is neither `input` nor a stage (stages: a)"
        );

        let e = parse("name = \"p\"\n[[stages]]\nname = \"a\"\nplugin = \"x\"\n[[stages]]\nname = \"a\"\nplugin = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "p.toml: `stages[1].name`: name `a` is already used by `stages[0].name`"
        );

        let e = parse("name = \"p\"\n[[monitors]]\nname = \"m\"\nplugin = \"d\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`monitors[0].reference`"), "{e}");

        let e = parse("name = \"p\"\n[[stages]]\nname = \"a\"\nplugin = \"x\"\n[stages.limits]\nmemory_mb = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`stages[0].limits.memory_mb`: 0 is outside"),
            "{e}"
        );

        let e = parse("name = \"bad name\"\n").unwrap_err().to_string();
        assert!(e.contains("`name`"), "{e}");
    }
}
