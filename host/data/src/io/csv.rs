//! CSV input and output: a header line, then one record per line; cells in
//! [`NULL_TOKENS`] are null, other cells parse as the column's type, which
//! the first batch fixes (inferred from its cells unless a schema gives it).

use super::text::{Builder, ReadState, TextRows, finish_batch, parse_bool, parse_f64};
use super::{BatchSource, Field, NULL_TOKENS, ReadError, Schema, SourceBatch};
use crate::{Batch, Column, DataType};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Infers the narrowest type that every non-null cell fits.
fn infer_text_type<'a>(cells: impl Iterator<Item = &'a str>) -> DataType {
    let (mut all_bool, mut all_int, mut all_num, mut any) = (true, true, true, false);
    for c in cells {
        if NULL_TOKENS.contains(&c) {
            continue;
        }
        any = true;
        all_bool &= parse_bool(c).is_some();
        all_int &= c.trim().parse::<i64>().is_ok();
        all_num &= parse_f64(c).is_some();
        if !all_bool && !all_num {
            break;
        }
    }
    match () {
        _ if !any => DataType::String,
        _ if all_bool => DataType::Bool,
        _ if all_int => DataType::S64,
        _ if all_num => DataType::F64,
        _ => DataType::String,
    }
}

pub(super) struct CsvSource {
    path: PathBuf,
    reader: csv::Reader<Box<dyn Read + Send>>,
    header: Vec<String>,
    /// Type per header position; `None` until the first batch fixes it.
    types: Option<Vec<DataType>>,
    given: Option<Schema>,
    schema: Schema,
    batch_size: usize,
    state: ReadState,
}

impl CsvSource {
    pub(super) fn new(
        path: &Path,
        file: Box<dyn Read + Send>,
        schema: Option<&Schema>,
        batch_size: usize,
    ) -> Result<CsvSource, ReadError> {
        // Records end at `\n` only: with the default CRLF terminator the csv
        // crate ends a record at `\r` and counts its `\n` as part of the
        // next record, so every line number after a CRLF line is one short.
        // The `\r` left on the last field is stripped in `field`.
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(file);
        let header = reader
            .headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect::<Vec<_>>();
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Err(ReadError::Empty {
                file: path.to_path_buf(),
            });
        }
        for (i, h) in header.iter().enumerate() {
            if header[..i].contains(h) {
                return Err(ReadError::Syntax {
                    file: path.to_path_buf(),
                    line: 1,
                    message: format!("column `{h}` appears twice in the header"),
                });
            }
        }
        if let Some(s) = schema
            && let Some(f) = s.fields.iter().find(|f| !header.contains(&f.name))
        {
            return Err(ReadError::MissingColumn {
                file: path.to_path_buf(),
                column: f.name.clone(),
            });
        }
        Ok(CsvSource {
            path: path.to_path_buf(),
            reader,
            header,
            types: None,
            given: schema.cloned(),
            schema: Schema::default(),
            batch_size,
            state: ReadState::default(),
        })
    }
}

impl TextRows for CsvSource {
    type Row = csv::StringRecord;

    fn build(
        &self,
        records: &[csv::StringRecord],
        lines: &[u64],
    ) -> Result<Vec<Column>, (usize, ReadError)> {
        let types = self.types.as_deref().unwrap_or_default();
        let mut builders: Vec<Builder> = types
            .iter()
            .map(|t| Builder::new(*t, records.len()))
            .collect();
        for (j, (r, line)) in records.iter().zip(lines).enumerate() {
            for (i, b) in builders.iter_mut().enumerate() {
                let cell = field(r, i);
                if NULL_TOKENS.contains(&cell) {
                    b.push_null();
                } else if let Err(message) = b.push_text(cell) {
                    return Err((
                        j,
                        ReadError::Value {
                            file: self.path.clone(),
                            line: *line,
                            column: self.header[i].clone(),
                            message,
                        },
                    ));
                }
            }
        }
        Ok(builders
            .into_iter()
            .zip(&self.header)
            .map(|(b, n)| b.finish(n.clone()))
            .collect())
    }

    fn state(&mut self) -> &mut ReadState {
        &mut self.state
    }

    fn file(&self) -> &Path {
        &self.path
    }
}

/// Field `i` of a record, without the `\r` a CRLF line leaves on its last field.
fn field(r: &csv::StringRecord, i: usize) -> &str {
    let cell = r.get(i).unwrap_or("");
    if i + 1 == r.len() {
        cell.strip_suffix('\r').unwrap_or(cell)
    } else {
        cell
    }
}

fn csv_error(path: &Path, e: csv::Error) -> ReadError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(source) => ReadError::Io {
            file: path.to_path_buf(),
            source,
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => ReadError::Syntax {
            file: path.to_path_buf(),
            line,
            message: format!("row has {len} fields but the header has {expected_len}"),
        },
        csv::ErrorKind::Utf8 { err, .. } => ReadError::Syntax {
            file: path.to_path_buf(),
            line,
            message: format!("field {} is not valid UTF-8", err.field() + 1),
        },
        other => ReadError::Syntax {
            file: path.to_path_buf(),
            line,
            message: format!("{other:?}"),
        },
    }
}

impl BatchSource for CsvSource {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn next_batch(&mut self) -> Result<Option<SourceBatch>, ReadError> {
        if !self.state.begin()? {
            return Ok(None);
        }
        let mut records = Vec::new();
        let mut lines = Vec::new();
        let mut record = csv::StringRecord::new();
        while records.len() < self.batch_size {
            let more = match self.reader.read_record(&mut record) {
                Ok(more) => more,
                Err(e) => {
                    let e = csv_error(&self.path, e);
                    self.state.read_failed(e, records.len())?;
                    break;
                }
            };
            if !more {
                self.state.done = true;
                break;
            }
            lines.push(record.position().map_or(0, |p| p.line()));
            records.push(record.clone());
        }
        if self.types.is_none() {
            let types = self
                .header
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    self.given
                        .as_ref()
                        .and_then(|s| s.get(name))
                        .unwrap_or_else(|| infer_text_type(records.iter().map(|r| field(r, i))))
                })
                .collect::<Vec<_>>();
            self.schema = Schema {
                fields: self
                    .header
                    .iter()
                    .zip(&types)
                    .map(|(n, t)| Field {
                        name: n.clone(),
                        data_type: *t,
                    })
                    .collect(),
            };
            self.types = Some(types);
        }
        finish_batch(self, records, lines)
    }
}

fn csv_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_csv_str(&mut out, s);
    out
}

fn push_csv_str(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// The header line of `names` (without its newline).
pub(super) fn header_line(names: &[String]) -> String {
    names
        .iter()
        .map(|n| csv_cell(n))
        .collect::<Vec<_>>()
        .join(",")
}

/// Appends row `row` of `batch` to `line` (without its newline).
pub(super) fn push_row(line: &mut String, batch: &Batch, row: usize) {
    use std::fmt::Write as _;
    for (i, c) in batch.columns().iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        // Written straight into the line: no String per cell.
        let _ = match c.value(row) {
            crate::Value::Null => Ok(()),
            crate::Value::F64(x) => write!(line, "{x}"),
            crate::Value::S64(x) => write!(line, "{x}"),
            crate::Value::Bool(x) => write!(line, "{x}"),
            crate::Value::Str(s) => {
                push_csv_str(line, s);
                Ok(())
            }
        };
    }
}
