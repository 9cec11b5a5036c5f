//! CSV input and output: a header line, then one record per line; cells in
//! [`NULL_TOKENS`] are null, other cells parse as the column's type, which
//! the first batch fixes (inferred from its cells unless a schema gives it).

use super::text::{TextFormat, TextSource, builders, columns, parse_bool, parse_f64};
use super::{Field, NULL_TOKENS, ReadError, Schema};
use crate::{Batch, Column, DataType};
use std::io::Read;
use std::path::Path;

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

/// CSV rows: the records after the header.
pub(super) struct CsvRows {
    reader: csv::Reader<Box<dyn Read + Send>>,
    header: Vec<String>,
}

/// Opens CSV input: reads and checks the header (no column twice, every
/// column of `schema` present).
pub(super) fn open(
    path: &Path,
    file: Box<dyn Read + Send>,
    schema: Option<&Schema>,
    batch_size: usize,
) -> Result<TextSource<CsvRows>, ReadError> {
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
    let rows = CsvRows { reader, header };
    Ok(TextSource::new(path, rows, schema, batch_size))
}

impl TextFormat for CsvRows {
    type Row = csv::StringRecord;

    fn read_row(&mut self, path: &Path) -> Result<Option<(Self::Row, u64)>, ReadError> {
        let mut record = csv::StringRecord::new();
        if !self
            .reader
            .read_record(&mut record)
            .map_err(|e| csv_error(path, e))?
        {
            return Ok(None);
        }
        let line = record.position().map_or(0, |p| p.line());
        Ok(Some((record, line)))
    }

    fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The header's columns, typed by `given` or inferred from the first
    /// batch's cells.
    fn fix_schema(
        &mut self,
        given: Option<&Schema>,
        records: &[csv::StringRecord],
        _path: &Path,
    ) -> Result<Schema, ReadError> {
        let fields = self
            .header
            .iter()
            .enumerate()
            .map(|(i, name)| Field {
                name: name.clone(),
                data_type: given
                    .and_then(|s| s.get(name))
                    .unwrap_or_else(|| infer_text_type(records.iter().map(|r| field(r, i)))),
            })
            .collect();
        Ok(Schema { fields })
    }

    fn build(
        &self,
        schema: &Schema,
        records: &[csv::StringRecord],
        lines: &[u64],
        path: &Path,
    ) -> Result<Vec<Column>, (usize, ReadError)> {
        let mut builders = builders(schema, records.len());
        for (j, (r, line)) in records.iter().zip(lines).enumerate() {
            for (i, b) in builders.iter_mut().enumerate() {
                let cell = field(r, i);
                if NULL_TOKENS.contains(&cell) {
                    b.push_null();
                } else if let Err(message) = b.push_text(cell) {
                    return Err((
                        j,
                        ReadError::Value {
                            file: path.to_path_buf(),
                            line: *line,
                            column: self.header[i].clone(),
                            message,
                        },
                    ));
                }
            }
        }
        Ok(columns(builders, schema))
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
