//! `{{name}}`: one finding per null cell of the configured columns (all columns when none are named).

use keel_sdk::{Batch, Config, FindingExt, Info, Result, Severity, Validate, finding};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Cfg {
    #[serde(default)]
    columns: Vec<String>,
}

struct Plugin(Cfg);

impl Validate for Plugin {
    fn info() -> Info {
        Info::new("{{name}}", env!("CARGO_PKG_VERSION"), "Flags null cells.").schema(SCHEMA)
    }
    fn create(config: Config, _reference: Option<Batch>) -> Result<Self> {
        Ok(Plugin(config.parse()?))
    }
    fn validate(&mut self, input: &Batch) -> Result<Vec<keel_sdk::Finding>> {
        let mut out = Vec::new();
        for col in input.columns() {
            if !self.0.columns.is_empty() && !self.0.columns.contains(&col.name) {
                continue;
            }
            for row in (0..input.rows()).filter(|&i| !col.is_valid(i)) {
                out.push(
                    finding("not-null", Severity::Error, format!("`{}` is null", col.name))
                        .column(&col.name)
                        .row(row),
                );
            }
        }
        Ok(out)
    }
}

const SCHEMA: &str = r#"{"type":"object","properties":{"columns":{"type":"array","items":{"type":"string"}}},"additionalProperties":false}"#;

keel_sdk::export_validator!(Plugin);
