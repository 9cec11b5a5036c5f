//! JSON Lines input and output: one JSON object per line. The first batch
//! fixes the columns (a given schema's, then new keys in order of first
//! appearance) and their types (widened over that batch: s64 and f64 make
//! f64, anything else mixed makes string); later keys are errors.

use super::text::{Builder, TextFormat, TextSource, builders, columns, expected};
use super::{Field, ReadError, Schema};
use crate::{Batch, Column, ColumnData, DataType};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

type Object = serde_json::Map<String, serde_json::Value>;

/// JSON Lines rows: one object per non-blank line.
pub(super) struct JsonlRows {
    reader: BufReader<Box<dyn Read + Send>>,
    /// The current line, kept between rows.
    buf: Vec<u8>,
    line: u64,
    bytes: u64,
}

/// Opens JSON Lines input.
pub(super) fn open(
    path: &Path,
    file: Box<dyn Read + Send>,
    schema: Option<&Schema>,
    batch_size: usize,
) -> TextSource<JsonlRows> {
    let rows = JsonlRows {
        reader: BufReader::with_capacity(1 << 16, file),
        buf: Vec::new(),
        line: 0,
        bytes: 0,
    };
    TextSource::new(path, rows, schema, batch_size)
}

impl TextFormat for JsonlRows {
    type Row = Object;

    /// Reads the next non-blank line as a JSON object; `None` at the end.
    fn read_row(&mut self, path: &Path) -> Result<Option<(Object, u64)>, ReadError> {
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| ReadError::Io {
                    file: path.to_path_buf(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes += n as u64;
            self.line += 1;
            let text = std::str::from_utf8(&self.buf).map_err(|e| ReadError::Syntax {
                file: path.to_path_buf(),
                line: self.line,
                message: format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1),
            })?;
            if text.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| ReadError::Syntax {
                    file: path.to_path_buf(),
                    line: self.line,
                    message: format!("invalid JSON at column {}: {e}", e.column()),
                })?;
            let serde_json::Value::Object(map) = value else {
                return Err(ReadError::Syntax {
                    file: path.to_path_buf(),
                    line: self.line,
                    message: "expected a JSON object per line".into(),
                });
            };
            return Ok(Some((map, self.line)));
        }
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Column order: the given schema's, then new keys in order of first
    /// appearance; types widened over the first batch.
    fn fix_schema(
        &mut self,
        given: Option<&Schema>,
        objects: &[Object],
        path: &Path,
    ) -> Result<Schema, ReadError> {
        let mut fields: Vec<(String, Option<DataType>)> = given
            .iter()
            .flat_map(|s| s.fields.iter().map(|f| (f.name.clone(), Some(f.data_type))))
            .collect();
        let given_len = fields.len();
        for obj in objects {
            for (k, v) in obj {
                match fields.iter().position(|(n, _)| n == k) {
                    Some(i) if i < given_len => {}
                    Some(i) => fields[i].1 = widen(fields[i].1, json_type(v)),
                    None => fields.push((k.clone(), json_type(v))),
                }
            }
        }
        if objects.is_empty() && fields.is_empty() {
            return Err(ReadError::Empty {
                file: path.to_path_buf(),
            });
        }
        if let Some(s) = given
            && let Some(missing) = s
                .fields
                .iter()
                .find(|f| !objects.iter().any(|o| o.contains_key(&f.name)))
            && !objects.is_empty()
        {
            return Err(ReadError::MissingColumn {
                file: path.to_path_buf(),
                column: missing.name.clone(),
            });
        }
        Ok(json_schema(fields))
    }

    fn build(
        &self,
        schema: &Schema,
        objects: &[Object],
        lines: &[u64],
        path: &Path,
    ) -> Result<Vec<Column>, (usize, ReadError)> {
        let value_error = |line: u64, column: &str, message: String| ReadError::Value {
            file: path.to_path_buf(),
            line,
            column: column.to_string(),
            message,
        };
        let mut builders = builders(schema, objects.len());
        for (j, (obj, line)) in objects.iter().zip(lines).enumerate() {
            if let Some(k) = obj.keys().find(|k| schema.get(k).is_none()) {
                return Err((
                    j,
                    value_error(
                        *line,
                        k,
                        "key not seen in the first batch (declare it in the first lines)".into(),
                    ),
                ));
            }
            for (f, b) in schema.fields.iter().zip(builders.iter_mut()) {
                let v = obj.get(&f.name).unwrap_or(&serde_json::Value::Null);
                push_json(b, v).map_err(|m| (j, value_error(*line, &f.name, m)))?;
            }
        }
        Ok(columns(builders, schema))
    }
}

/// The schema of fields typed from JSON values: string where only nulls
/// were seen.
pub fn json_schema(fields: Vec<(String, Option<DataType>)>) -> Schema {
    Schema {
        fields: fields
            .into_iter()
            .map(|(name, t)| Field {
                name,
                data_type: t.unwrap_or(DataType::String),
            })
            .collect(),
    }
}

/// The type a JSON value suggests (`None`: null, no suggestion).
pub fn json_type(v: &serde_json::Value) -> Option<DataType> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(_) => Some(DataType::Bool),
        serde_json::Value::Number(n) if n.is_i64() => Some(DataType::S64),
        serde_json::Value::Number(_) => Some(DataType::F64),
        _ => Some(DataType::String),
    }
}

/// The type that holds both: s64 and f64 make f64, other mixes string.
pub fn widen(a: Option<DataType>, b: Option<DataType>) -> Option<DataType> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(x), Some(y)) if x == y => Some(x),
        (Some(DataType::S64), Some(DataType::F64)) | (Some(DataType::F64), Some(DataType::S64)) => {
            Some(DataType::F64)
        }
        _ => Some(DataType::String),
    }
}

pub(super) fn push_json(b: &mut Builder, v: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value as J;
    let shown = || {
        let s = v.to_string();
        s.chars().take(40).collect::<String>()
    };
    match (&mut b.data, v) {
        (_, J::Null) => {
            b.push_null();
            return Ok(());
        }
        (ColumnData::F64(d), J::Number(n)) => {
            d.push(n.as_f64().ok_or_else(|| expected("f64", &shown()))?)
        }
        (ColumnData::F32(d), J::Number(n)) => {
            let x = n.as_f64().ok_or_else(|| expected("f32", &shown()))?;
            if x.abs() > f64::from(f32::MAX) {
                return Err(format!("`{n}` is out of range for f32"));
            }
            d.push(x as f32)
        }
        (ColumnData::S64(d), J::Number(n)) => d.push(n.as_i64().ok_or_else(|| {
            // Integers beyond i64 arrive as u64 or (past u64) as whole floats.
            match n.as_f64() {
                Some(x) if n.is_u64() || (x.fract() == 0.0 && x.abs() >= 9.2e18) => {
                    format!("`{n}` is out of range for s64")
                }
                _ => format!("expected s64, found the non-integer {n}"),
            }
        })?),
        (ColumnData::Bool(d), J::Bool(x)) => d.push(*x),
        (ColumnData::String(d), J::String(s)) => d.push(s.clone()),
        (ColumnData::String(d), J::Number(_) | J::Bool(_)) => d.push(v.to_string()),
        (data, _) => return Err(expected(data.data_type().as_str(), &shown())),
    }
    b.validity.push(true);
    Ok(())
}

fn json_value(v: crate::Value<'_>) -> serde_json::Value {
    use crate::Value as V;
    match v {
        V::Null => serde_json::Value::Null,
        V::F64(x) => serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into),
        V::S64(x) => x.into(),
        V::Bool(x) => x.into(),
        V::Str(s) => s.into(),
    }
}

/// Appends row `row` of `batch` to `line` as a JSON object (without its
/// newline); `map` is scratch space kept between rows.
pub(super) fn push_row(
    line: &mut String,
    map: &mut serde_json::Map<String, serde_json::Value>,
    batch: &Batch,
    row: usize,
) {
    use std::fmt::Write as _;
    map.clear();
    for c in batch.columns() {
        map.insert(c.name.clone(), json_value(c.value(row)));
    }
    let _ = write!(line, "{}", serde_json::Value::Object(std::mem::take(map)));
}
