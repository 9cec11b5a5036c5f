//! What the two text readers (CSV, JSON Lines) share: column builders that
//! parse cells, and the bookkeeping of a batch (rows returned so far, an
//! error held back until the good rows before it are returned).

use super::{ReadError, SourceBatch};
use crate::{Batch, Column, ColumnData, DataType};
use std::path::Path;

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

/// Where a text reader is in its input.
#[derive(Default)]
pub(super) struct ReadState {
    pub(super) rows_read: u64,
    pub(super) done: bool,
    /// An error met after some good rows of a batch: those rows are returned
    /// first, the error on the next call, so nothing before it is lost.
    pub(super) pending: Option<ReadError>,
}

impl ReadState {
    /// Before a batch: the error held back, or whether there is more to read.
    pub(super) fn begin(&mut self) -> Result<bool, ReadError> {
        if let Some(e) = self.pending.take() {
            self.done = true;
            return Err(e);
        }
        Ok(!self.done)
    }

    /// A read error after `good` rows of the batch: held back if there are
    /// any, else the end of the input.
    pub(super) fn read_failed(&mut self, e: ReadError, good: usize) -> Result<(), ReadError> {
        if good > 0 {
            self.pending = Some(e);
            Ok(())
        } else {
            self.done = true;
            Err(e)
        }
    }
}

/// A text reader: rows of its own kind (a CSV record, a JSON object) that
/// it turns into columns.
pub(super) trait TextRows {
    type Row;
    /// The columns of `rows`; on a bad value, its row's index and the error.
    fn build(&self, rows: &[Self::Row], lines: &[u64]) -> Result<Vec<Column>, (usize, ReadError)>;
    fn state(&mut self) -> &mut ReadState;
    fn file(&self) -> &Path;
}

/// The batch of `rows` read at `lines` (`None` when there are none). A bad
/// value in the first row is the error; after good rows, those rows are the
/// batch and the error waits for the next call.
pub(super) fn finish_batch<R: TextRows>(
    reader: &mut R,
    mut rows: Vec<R::Row>,
    mut lines: Vec<u64>,
) -> Result<Option<SourceBatch>, ReadError> {
    if rows.is_empty() {
        return Ok(None);
    }
    let columns = match reader.build(&rows, &lines) {
        Ok(columns) => columns,
        Err((0, e)) => {
            reader.state().done = true;
            return Err(e);
        }
        Err((good, e)) => {
            // A bad cell comes before any read error later in the batch.
            reader.state().pending = Some(e);
            rows.truncate(good);
            lines.truncate(good);
            reader.build(&rows, &lines).map_err(|(_, e)| e)?
        }
    };
    let batch = Batch::new(rows.len(), columns).map_err(|e| ReadError::Syntax {
        file: reader.file().to_path_buf(),
        line: lines.first().copied().unwrap_or(0),
        message: e.to_string(),
    })?;
    let state = reader.state();
    let first_row = state.rows_read;
    state.rows_read += rows.len() as u64;
    Ok(Some(SourceBatch {
        batch,
        first_row,
        lines,
    }))
}
