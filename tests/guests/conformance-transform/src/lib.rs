//! The conformance transform (tests/conformance/README.md), in Rust: every
//! other language's version must give the same output on the shared vectors.
//!
//! Per column: f64/f32 `2x + offset`, s64 `2x`, bool `!x`, string reversed by
//! code point; nulls stay null with the placeholder value; a `nulls` column
//! counts the null cells of each row.

use keel_sdk::{Batch, Column, ColumnData, Config, Error, Info, Result, Transform};

struct Cfg {
    offset: f64,
    /// A sandbox probe instead of the transform: `read-file` (of `path`),
    /// `loop` (forever) or `grow` (memory until refused).
    probe: String,
    path: String,
}

impl Cfg {
    /// Parsed by hand, as the other languages' SDKs do, so that every error
    /// names the key in `column` (serde's type errors do not name it).
    fn parse(config: &Config) -> Result<Cfg> {
        let text = if config.as_str().trim().is_empty() {
            "{}"
        } else {
            config.as_str()
        };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::config(format!("config is not JSON: {e}")))?;
        let map = value
            .as_object()
            .ok_or_else(|| Error::config("config must be a JSON object"))?;
        let mut cfg = Cfg {
            offset: 1.0,
            probe: String::new(),
            path: String::new(),
        };
        for (key, v) in map {
            let bad = |want: &str| {
                Error::config(format!("config key `{key}`: expected {want}, got {v}"))
                    .in_column(key.clone())
            };
            match key.as_str() {
                "offset" => cfg.offset = v.as_f64().ok_or_else(|| bad("a number"))?,
                "probe" => cfg.probe = v.as_str().ok_or_else(|| bad("a string"))?.to_string(),
                "path" => cfg.path = v.as_str().ok_or_else(|| bad("a string"))?.to_string(),
                _ => {
                    return Err(Error::config(format!(
                        "unknown config key `{key}` (expected one of: offset, probe, path)"
                    ))
                    .in_column(key.clone()));
                }
            }
        }
        Ok(cfg)
    }
}

struct Conformance(Cfg);

/// Replaces the values of null rows by the contract's placeholder, so that
/// outputs compare byte for byte across languages.
fn blank<T: Clone>(values: Vec<T>, validity: Option<&Vec<bool>>, zero: T) -> Vec<T> {
    match validity {
        None => values,
        Some(v) => values
            .into_iter()
            .zip(v)
            .map(|(x, ok)| if *ok { x } else { zero.clone() })
            .collect(),
    }
}

impl Transform for Conformance {
    fn info() -> Info {
        Info::new(
            "conformance-transform",
            "0.1.0",
            "The cross-language conformance transform (Rust).",
        )
        .schema(r#"{"type":"object","properties":{"offset":{"type":"number"},"probe":{"enum":["read-file","loop","grow"]},"path":{"type":"string"}},"additionalProperties":false}"#)
    }

    fn create(config: Config, _reference: Option<Batch>) -> Result<Self> {
        Ok(Conformance(Cfg::parse(&config)?))
    }

    fn process(&mut self, input: Batch) -> Result<Batch> {
        match self.0.probe.as_str() {
            "" => {}
            "read-file" => {
                let text = std::fs::read_to_string(&self.0.path)
                    .map_err(|e| Error::input(format!("cannot read {}: {e}", self.0.path)))?;
                return Ok(Batch::from_columns(vec![Column::new(
                    "content",
                    ColumnData::String(vec![text]),
                )])?);
            }
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            other => {
                return Err(Error::config(format!("unknown probe `{other}`")).in_column("probe"));
            }
        }
        if input.column("nulls").is_some() {
            return Err(Error::input("the input already has a column `nulls`").in_column("nulls"));
        }
        let rows = input.rows();
        let mut nulls = vec![0i64; rows];
        let off = self.0.offset;
        let mut out = Vec::with_capacity(input.columns().len() + 1);
        for col in input.into_columns() {
            if let Some(v) = &col.validity {
                for (n, ok) in nulls.iter_mut().zip(v) {
                    *n += i64::from(!*ok);
                }
            }
            let valid = col.validity.as_ref();
            let data = match col.data {
                ColumnData::F64(x) => ColumnData::F64(blank(
                    x.into_iter().map(|x| 2.0 * x + off).collect(),
                    valid,
                    0.0,
                )),
                ColumnData::F32(x) => ColumnData::F32(blank(
                    x.into_iter()
                        .map(|x| (2.0 * f64::from(x) + off) as f32)
                        .collect(),
                    valid,
                    0.0,
                )),
                ColumnData::S64(x) => ColumnData::S64(blank(
                    x.into_iter().map(|x| x.wrapping_mul(2)).collect(),
                    valid,
                    0,
                )),
                ColumnData::Bool(x) => {
                    ColumnData::Bool(blank(x.into_iter().map(|b| !b).collect(), valid, false))
                }
                ColumnData::String(x) => ColumnData::String(blank(
                    x.into_iter().map(|s| s.chars().rev().collect()).collect(),
                    valid,
                    String::new(),
                )),
            };
            out.push(Column { data, ..col });
        }
        out.push(Column::new("nulls", ColumnData::S64(nulls)));
        Ok(Batch::new(rows, out)?)
    }
}

keel_sdk::export_transform!(Conformance);
