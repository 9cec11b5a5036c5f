//! `{{name}}`: multiplies a numeric column by a factor (nulls stay null).

use keel_sdk::{Batch, Column, ColumnData, Config, Info, Result, Transform};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Cfg {
    column: String,
    #[serde(default = "two")]
    factor: f64,
}

fn two() -> f64 {
    2.0
}

struct Plugin(Cfg);

impl Transform for Plugin {
    fn info() -> Info {
        Info::new("{{name}}", env!("CARGO_PKG_VERSION"), "Multiplies a numeric column by a factor.")
            .schema(SCHEMA)
    }
    fn create(config: Config, _reference: Option<Batch>) -> Result<Self> {
        Ok(Plugin(config.parse()?))
    }
    fn process(&mut self, mut input: Batch) -> Result<Batch> {
        let col = input.require(&self.0.column)?;
        let values = col.numeric()?.iter().map(|x| x * self.0.factor).collect();
        let scaled = Column { data: ColumnData::F64(values), ..col.clone() };
        input.set(scaled)?;
        Ok(input)
    }
}

const SCHEMA: &str = r#"{"type":"object","properties":{"column":{"type":"string"},"factor":{"type":"number"}},"required":["column"],"additionalProperties":false}"#;

keel_sdk::export_transform!(Plugin);
