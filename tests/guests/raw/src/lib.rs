//! A transform on the raw generated bindings, bypassing the SDK's checks, so
//! the host can be tested against malformed output: a column shorter than the
//! batch (`ragged`), a validity mask of the wrong length (`ragged-validity`),
//! a row count that lies (`rows-lie`), two columns of one name (`duplicate`).
//! The config is `{"mode": "ragged"}` (or just `"ragged"`); `echo` behaves.

use keel_sdk::bindings::transform as tb;
use tb::exports::keel::plugin::transform::{Guest, GuestTransformer, Transformer};
use tb::keel::plugin::types::{
    Batch, Column, ColumnData, Error, ErrorCode, PluginInfo, PluginKind,
};

struct Raw;

/// The mode named by the config, without a JSON parser: the SDK's is not
/// used here, and this guest's config is one string.
fn mode_of(config: &str) -> String {
    let rest = match config.find("\"mode\"") {
        Some(i) => config[i + 6..].trim_start().trim_start_matches(':'),
        None => config,
    };
    rest.trim()
        .trim_start_matches('"')
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

struct RawTransformer {
    mode: String,
}

impl tb::exports::keel::plugin::metadata::Guest for Raw {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "raw".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Transform,
            description: "Returns malformed batches on request (sandbox tests).".into(),
            config_schema: "{}".into(),
        }
    }
}

impl Guest for Raw {
    type Transformer = RawTransformer;
}

impl GuestTransformer for RawTransformer {
    fn create(config: String, _reference: Option<Batch>) -> Result<Transformer, Error> {
        Ok(Transformer::new(RawTransformer {
            mode: mode_of(&config),
        }))
    }

    fn process(&self, mut input: Batch) -> Result<Batch, Error> {
        let rows = input.rows as usize;
        let f64s = |n: usize| ColumnData::F64((0..n).map(|i| i as f64).collect());
        match self.mode.as_str() {
            "echo" => Ok(input),
            "ragged" => {
                input.columns.push(Column {
                    name: "short".into(),
                    data: f64s(rows.saturating_sub(1)),
                    validity: None,
                });
                Ok(input)
            }
            "ragged-validity" => {
                input.columns.push(Column {
                    name: "masked".into(),
                    data: f64s(rows),
                    validity: Some(vec![true; rows + 1]),
                });
                Ok(input)
            }
            "rows-lie" => {
                input.rows += 7;
                Ok(input)
            }
            "duplicate" => {
                input.columns.push(Column {
                    name: "dup".into(),
                    data: f64s(rows),
                    validity: None,
                });
                input.columns.push(Column {
                    name: "dup".into(),
                    data: f64s(rows),
                    validity: None,
                });
                Ok(input)
            }
            other => Err(Error {
                code: ErrorCode::InvalidConfig,
                message: format!("unknown mode `{other}`"),
                column: None,
            }),
        }
    }
}

tb::export_world!(Raw with_types_in tb);
