//! What the two text readers (CSV, JSON Lines) share: column builders that
//! parse cells, and [`TextSource`], the one [`BatchSource`] over a text
//! format's rows (batching, the schema the first batch fixes, an error held
//! back until the good rows before it are returned).

use super::{BatchSource, ReadError, Schema, SourceBatch};
use crate::{Batch, Column, ColumnData, DataType};
use std::path::{Path, PathBuf};

/// Accumulates cells of one column as they are parsed.
pub(super) struct Builder {
    pub(super) data: ColumnData,
    pub(super) validity: Vec<bool>,
    any_null: bool,
}

impl Builder {
    pub(super) fn new(t: DataType, cap: usize) -> Builder {
        Builder {
            data: ColumnData::with_capacity(t, cap.min(1 << 16)),
            validity: Vec::with_capacity(cap.min(1 << 16)),
            any_null: false,
        }
    }

    pub(super) fn push_null(&mut self) {
        match &mut self.data {
            ColumnData::F64(v) => v.push(0.0),
            ColumnData::F32(v) => v.push(0.0),
            ColumnData::S64(v) => v.push(0),
            ColumnData::Bool(v) => v.push(false),
            ColumnData::String(v) => v.push(String::new()),
        }
        self.validity.push(false);
        self.any_null = true;
    }

    /// Parses a text cell; on failure returns what was expected.
    pub(super) fn push_text(&mut self, s: &str) -> Result<(), String> {
        match &mut self.data {
            ColumnData::F64(v) => v.push(parse_float(s, "f64", f64::MAX)?),
            ColumnData::F32(v) => v.push(parse_float(s, "f32", f64::from(f32::MAX))? as f32),
            ColumnData::S64(v) => v.push(parse_i64(s)?),
            ColumnData::Bool(v) => v.push(parse_bool(s).ok_or_else(|| expected("bool", s))?),
            ColumnData::String(v) => v.push(s.to_string()),
        }
        self.validity.push(true);
        Ok(())
    }

    pub(super) fn finish(self, name: String) -> Column {
        Column {
            name,
            data: self.data,
            validity: self.any_null.then_some(self.validity),
        }
    }
}

pub(super) fn expected(t: &str, s: &str) -> String {
    let shown: String = s.chars().take(40).collect();
    format!("expected {t}, found `{shown}`")
}

pub(super) fn parse_f64(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// A float cell of type `t`: a finite number beyond `max` (`1e400`) is out of
/// range rather than silently infinite; `inf` and `NaN` spelled out are kept.
fn parse_float(s: &str, t: &str, max: f64) -> Result<f64, String> {
    let x = parse_f64(s).ok_or_else(|| expected(t, s))?;
    if x.abs() > max && !s.to_ascii_lowercase().contains("inf") {
        let shown: String = s.trim().chars().take(40).collect();
        return Err(format!("`{shown}` is out of range for {t}"));
    }
    Ok(x)
}

fn parse_i64(s: &str) -> Result<i64, String> {
    let t = s.trim();
    t.parse::<i64>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            format!("`{t}` is out of range for s64")
        }
        _ => expected("s64", s),
    })
}

pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// One builder per field of `schema`, for `rows` rows.
pub(super) fn builders(schema: &Schema, rows: usize) -> Vec<Builder> {
    schema
        .fields
        .iter()
        .map(|f| Builder::new(f.data_type, rows))
        .collect()
}

/// The columns `builders` made, named after `schema`'s fields.
pub(super) fn columns(builders: Vec<Builder>, schema: &Schema) -> Vec<Column> {
    builders
        .into_iter()
        .zip(&schema.fields)
        .map(|(b, f)| b.finish(f.name.clone()))
        .collect()
}

/// One text format's rows: how they are read, typed and made columns.
pub(super) trait TextFormat: Send {
    /// A row as read: a CSV record, a JSON object.
    type Row;
    /// The next row and the line it ends on; `None` at the end.
    fn read_row(&mut self, path: &Path) -> Result<Option<(Self::Row, u64)>, ReadError>;
    /// Bytes consumed so far.
    fn bytes_read(&self) -> u64;
    /// The schema the first batch fixes; `given` is the caller's.
    fn fix_schema(
        &mut self,
        given: Option<&Schema>,
        rows: &[Self::Row],
        path: &Path,
    ) -> Result<Schema, ReadError>;
    /// The columns of `rows`; on a bad value, its row's index and the error.
    fn build(
        &self,
        schema: &Schema,
        rows: &[Self::Row],
        lines: &[u64],
        path: &Path,
    ) -> Result<Vec<Column>, (usize, ReadError)>;
}

/// A stream of batches from a text format: what both text readers do
/// around their rows (batching, fixing the schema, holding errors back).
pub(super) struct TextSource<F> {
    path: PathBuf,
    format: F,
    given: Option<Schema>,
    schema: Schema,
    /// The first batch fixed `schema`.
    fixed: bool,
    batch_size: usize,
    rows_read: u64,
    done: bool,
    /// An error met after some good rows of a batch: those rows are returned
    /// first, the error on the next call, so nothing before it is lost.
    pending: Option<ReadError>,
}

impl<F: TextFormat> TextSource<F> {
    pub(super) fn new(
        path: &Path,
        format: F,
        schema: Option<&Schema>,
        batch_size: usize,
    ) -> TextSource<F> {
        TextSource {
            path: path.to_path_buf(),
            format,
            given: schema.cloned(),
            schema: Schema::default(),
            fixed: false,
            batch_size,
            rows_read: 0,
            done: false,
            pending: None,
        }
    }

    /// Up to a batch of rows and their lines; a read error after good rows
    /// waits for the next call.
    fn read_rows(&mut self) -> Result<(Vec<F::Row>, Vec<u64>), ReadError> {
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        while rows.len() < self.batch_size {
            match self.format.read_row(&self.path) {
                Ok(Some((row, line))) => {
                    rows.push(row);
                    lines.push(line);
                }
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(e) if !rows.is_empty() => {
                    self.pending = Some(e);
                    break;
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
        Ok((rows, lines))
    }

    /// The batch of `rows` read at `lines` (`None` when there are none). A bad
    /// value in the first row is the error; after good rows, those rows are
    /// the batch and the error waits for the next call.
    fn make_batch(
        &mut self,
        mut rows: Vec<F::Row>,
        mut lines: Vec<u64>,
    ) -> Result<Option<SourceBatch>, ReadError> {
        if rows.is_empty() {
            return Ok(None);
        }
        let columns = match self.format.build(&self.schema, &rows, &lines, &self.path) {
            Ok(columns) => columns,
            Err((0, e)) => {
                self.done = true;
                return Err(e);
            }
            Err((good, e)) => {
                // A bad cell comes before any read error later in the batch.
                self.pending = Some(e);
                rows.truncate(good);
                lines.truncate(good);
                self.format
                    .build(&self.schema, &rows, &lines, &self.path)
                    .map_err(|(_, e)| e)?
            }
        };
        let batch = Batch::new(rows.len(), columns).map_err(|e| ReadError::Syntax {
            file: self.path.clone(),
            line: lines.first().copied().unwrap_or(0),
            message: e.to_string(),
        })?;
        let first_row = self.rows_read;
        self.rows_read += rows.len() as u64;
        Ok(Some(SourceBatch {
            batch,
            first_row,
            lines,
        }))
    }
}

impl<F: TextFormat> BatchSource for TextSource<F> {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn bytes_read(&self) -> u64 {
        self.format.bytes_read()
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn next_batch(&mut self) -> Result<Option<SourceBatch>, ReadError> {
        if let Some(e) = self.pending.take() {
            self.done = true;
            return Err(e);
        }
        if self.done {
            return Ok(None);
        }
        let (rows, lines) = self.read_rows()?;
        if !self.fixed {
            self.schema = self
                .format
                .fix_schema(self.given.as_ref(), &rows, &self.path)?;
            self.fixed = true;
        }
        self.make_batch(rows, lines)
    }
}
