//! Streaming readers and writers for CSV, JSON Lines and Parquet, producing
//! batches of a fixed size and errors that name file, line (Parquet: row) and
//! column. Without the `parquet` feature a .parquet file is refused with an
//! error that says so.

#[cfg(feature = "parquet")]
mod parquet;
#[cfg(not(feature = "parquet"))]
#[path = "parquet_off.rs"]
mod parquet;

use crate::{Batch, Column, ColumnData, DataType};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Cell texts read as null in CSV input.
pub const NULL_TOKENS: &[&str] = &["", "NA", "N/A", "null", "NULL"];

/// A file format Keel reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
    Parquet,
}

impl Format {
    /// The format a file name implies: `.csv`, `.jsonl` / `.ndjson`, `.parquet` / `.pq`.
    pub fn from_path(path: &Path) -> Result<Format, ReadError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => Ok(Format::Csv),
            Some(e) if e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson") => {
                Ok(Format::JsonLines)
            }
            Some(e) if e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq") => {
                Ok(Format::Parquet)
            }
            _ => Err(ReadError::UnknownFormat {
                file: path.to_path_buf(),
            }),
        }
    }
}

/// One named, typed field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub data_type: DataType,
}

/// The columns a source yields, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schema {
    pub fields: Vec<Field>,
}

impl Schema {
    /// The schema of a batch.
    pub fn of(batch: &Batch) -> Schema {
        Schema {
            fields: batch
                .columns()
                .iter()
                .map(|c| Field {
                    name: c.name.clone(),
                    data_type: c.data_type(),
                })
                .collect(),
        }
    }

    /// The type of the field called `name`.
    pub fn get(&self, name: &str) -> Option<DataType> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.data_type)
    }
}

/// Why input could not be read (or output written). Every variant names the
/// file and, where it applies, the line (1-based, as an editor shows it) or,
/// for Parquet, which has no lines, the 1-based row, and the column.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: cannot read: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: unknown format: name the file .csv, .jsonl, .ndjson, .parquet or .pq", file.display())]
    UnknownFormat { file: PathBuf },
    #[error("{}: the input is empty (no header line)", file.display())]
    Empty { file: PathBuf },
    #[error("{}:{line}: {message}", file.display())]
    Syntax {
        file: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}:{line}: column `{column}`: {message}", file.display())]
    Value {
        file: PathBuf,
        line: u64,
        column: String,
        message: String,
    },
    #[error("{}: column `{column}` is missing (the pipeline's reference data has it)", file.display())]
    MissingColumn { file: PathBuf, column: String },
    /// A bad value in a Parquet file, which has rows but no lines.
    #[error("{}: row {row}: column `{column}`: {message}", file.display())]
    RowValue {
        file: PathBuf,
        row: u64,
        column: String,
        message: String,
    },
    /// A whole column cannot be read as Keel needs it (its type, say).
    #[error("{}: column `{column}`: {message}", file.display())]
    Column {
        file: PathBuf,
        column: String,
        message: String,
    },
    /// The file is not Parquet, is damaged, or could not be encoded as Parquet.
    #[error("{}: {message}", file.display())]
    Parquet { file: PathBuf, message: String },
}

impl ReadError {
    /// The line the error is on, when it is about one line; for Parquet, the
    /// 1-based row (the number [`SourceBatch::lines`] holds for it).
    pub fn line(&self) -> Option<u64> {
        match self {
            ReadError::Syntax { line, .. } | ReadError::Value { line, .. } => Some(*line),
            ReadError::RowValue { row, .. } => Some(*row),
            _ => None,
        }
    }
}

/// A batch read from a file together with where its rows came from.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    pub batch: Batch,
    /// Zero-based index of the batch's first row among all data rows of the file.
    pub first_row: u64,
    /// The 1-based line of each row in the file. Parquet has no lines, so
    /// there it is the 1-based row number (`first_row + 1`, `first_row + 2`, …).
    pub lines: Vec<u64>,
}

/// A stream of batches from a file.
pub trait BatchSource: Send {
    /// The schema of the batches (fixed once the first batch is read).
    fn schema(&self) -> &Schema;
    /// The next batch, `None` at the end.
    fn next_batch(&mut self) -> Result<Option<SourceBatch>, ReadError>;
    /// Bytes consumed so far, for progress reporting.
    fn bytes_read(&self) -> u64;
    /// The file being read.
    fn path(&self) -> &Path;
}

/// Opens `path` (format from its extension) as a stream of batches of
/// `batch_size` rows. With `schema`, every column it names must be present and
/// its values must parse as its type; other columns are typed from the first batch
/// (Parquet: from the file's own Arrow types).
pub fn open(
    path: &Path,
    schema: Option<&Schema>,
    batch_size: usize,
) -> Result<Box<dyn BatchSource>, ReadError> {
    let batch_size = batch_size.max(1);
    let file = File::open(path).map_err(|source| ReadError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    match Format::from_path(path)? {
        Format::Csv => Ok(Box::new(CsvSource::new(
            path,
            Box::new(file),
            schema,
            batch_size,
        )?)),
        Format::JsonLines => Ok(Box::new(JsonlSource::new(
            path,
            Box::new(file),
            schema,
            batch_size,
        ))),
        Format::Parquet => Ok(Box::new(parquet::ParquetSource::new(
            path, file, schema, batch_size,
        )?)),
    }
}

/// Like [`open`], over bytes from any reader (not Parquet, which needs to
/// seek); `name` is what errors call the input. For tests, fuzzing, and input
/// that does not come from a file.
pub fn open_reader(
    name: &Path,
    format: Format,
    reader: Box<dyn Read + Send>,
    schema: Option<&Schema>,
    batch_size: usize,
) -> Result<Box<dyn BatchSource>, ReadError> {
    let batch_size = batch_size.max(1);
    match format {
        Format::Csv => Ok(Box::new(CsvSource::new(name, reader, schema, batch_size)?)),
        Format::JsonLines => Ok(Box::new(JsonlSource::new(name, reader, schema, batch_size))),
        Format::Parquet => Err(ReadError::Parquet {
            file: name.to_path_buf(),
            message: "Parquet input must be a file (it is read by seeking)".into(),
        }),
    }
}

/// Reads a whole file into one batch, inferring types from all of it.
pub fn read_all(path: &Path, schema: Option<&Schema>) -> Result<Batch, ReadError> {
    // One batch of "all rows" makes inference see the whole file.
    let mut source = open(path, schema, usize::MAX)?;
    let mut out = Batch::default();
    while let Some(b) = source.next_batch()? {
        out.append(b.batch).map_err(|e| ReadError::Syntax {
            file: path.to_path_buf(),
            line: 0,
            message: e.to_string(),
        })?;
    }
    if out.columns().is_empty() {
        // Keep the header's columns for an input with no data rows.
        let cols = source
            .schema()
            .fields
            .iter()
            .map(|f| Column::new(f.name.clone(), ColumnData::with_capacity(f.data_type, 0)))
            .collect();
        out = Batch::new(0, cols).map_err(|e| ReadError::Syntax {
            file: path.to_path_buf(),
            line: 1,
            message: e.to_string(),
        })?;
    }
    Ok(out)
}

/// Accumulates cells of one column as they are parsed.
struct Builder {
    data: ColumnData,
    validity: Vec<bool>,
    any_null: bool,
}

impl Builder {
    fn new(t: DataType, cap: usize) -> Builder {
        Builder {
            data: ColumnData::with_capacity(t, cap.min(1 << 16)),
            validity: Vec::with_capacity(cap.min(1 << 16)),
            any_null: false,
        }
    }

    fn push_null(&mut self) {
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
    fn push_text(&mut self, s: &str) -> Result<(), String> {
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

    fn finish(self, name: String) -> Column {
        Column {
            name,
            data: self.data,
            validity: self.any_null.then_some(self.validity),
        }
    }
}

fn expected(t: &str, s: &str) -> String {
    let shown: String = s.chars().take(40).collect();
    format!("expected {t}, found `{shown}`")
}

fn parse_f64(s: &str) -> Option<f64> {
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

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

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

struct CsvSource {
    path: PathBuf,
    reader: csv::Reader<Box<dyn Read + Send>>,
    header: Vec<String>,
    /// Type per header position; `None` until the first batch fixes it.
    types: Option<Vec<DataType>>,
    given: Option<Schema>,
    schema: Schema,
    batch_size: usize,
    rows_read: u64,
    done: bool,
    /// An error met after some good rows of a batch: those rows are returned
    /// first, the error on the next call, so nothing before it is lost.
    pending: Option<ReadError>,
}

impl CsvSource {
    fn new(
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
            rows_read: 0,
            done: false,
            pending: None,
        })
    }

    /// The columns of `records`; on a bad cell, its row's index and the error.
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
        if let Some(e) = self.pending.take() {
            self.done = true;
            return Err(e);
        }
        if self.done {
            return Ok(None);
        }
        let mut records = Vec::new();
        let mut lines = Vec::new();
        let mut record = csv::StringRecord::new();
        while records.len() < self.batch_size {
            let more = match self.reader.read_record(&mut record) {
                Ok(more) => more,
                Err(e) if !records.is_empty() => {
                    self.pending = Some(csv_error(&self.path, e));
                    break;
                }
                Err(e) => {
                    self.done = true;
                    return Err(csv_error(&self.path, e));
                }
            };
            if !more {
                self.done = true;
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
        if records.is_empty() {
            return Ok(None);
        }
        let columns = match self.build(&records, &lines) {
            Ok(columns) => columns,
            Err((0, e)) => {
                self.done = true;
                return Err(e);
            }
            Err((good, e)) => {
                // A bad cell comes before any read error later in the batch.
                self.pending = Some(e);
                records.truncate(good);
                lines.truncate(good);
                self.build(&records, &lines).map_err(|(_, e)| e)?
            }
        };
        let batch = Batch::new(records.len(), columns).map_err(|e| ReadError::Syntax {
            file: self.path.clone(),
            line: lines.first().copied().unwrap_or(0),
            message: e.to_string(),
        })?;
        let first_row = self.rows_read;
        self.rows_read += records.len() as u64;
        Ok(Some(SourceBatch {
            batch,
            first_row,
            lines,
        }))
    }
}

struct JsonlSource {
    path: PathBuf,
    reader: BufReader<Box<dyn Read + Send>>,
    given: Option<Schema>,
    schema: Schema,
    fixed: bool,
    batch_size: usize,
    line: u64,
    bytes: u64,
    rows_read: u64,
    done: bool,
    /// As in the CSV reader: an error after good rows waits for the next call.
    pending: Option<ReadError>,
}

impl JsonlSource {
    fn new(
        path: &Path,
        file: Box<dyn Read + Send>,
        schema: Option<&Schema>,
        batch_size: usize,
    ) -> JsonlSource {
        JsonlSource {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 16, file),
            given: schema.cloned(),
            schema: Schema::default(),
            fixed: false,
            batch_size,
            line: 0,
            bytes: 0,
            rows_read: 0,
            done: false,
            pending: None,
        }
    }

    /// Reads the next non-blank line as a JSON object; `None` at the end.
    fn next_object(
        &mut self,
        buf: &mut Vec<u8>,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ReadError> {
        loop {
            buf.clear();
            let n = self
                .reader
                .read_until(b'\n', buf)
                .map_err(|source| ReadError::Io {
                    file: self.path.clone(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes += n as u64;
            self.line += 1;
            let text = std::str::from_utf8(buf).map_err(|e| ReadError::Syntax {
                file: self.path.clone(),
                line: self.line,
                message: format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1),
            })?;
            if text.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| ReadError::Syntax {
                    file: self.path.clone(),
                    line: self.line,
                    message: format!("invalid JSON at column {}: {e}", e.column()),
                })?;
            let serde_json::Value::Object(map) = value else {
                return Err(ReadError::Syntax {
                    file: self.path.clone(),
                    line: self.line,
                    message: "expected a JSON object per line".into(),
                });
            };
            return Ok(Some(map));
        }
    }

    /// The columns of `objects`; on a bad value, its row's index and the error.
    fn build(
        &self,
        objects: &[serde_json::Map<String, serde_json::Value>],
        lines: &[u64],
    ) -> Result<Vec<Column>, (usize, ReadError)> {
        let mut builders: Vec<Builder> = self
            .schema
            .fields
            .iter()
            .map(|f| Builder::new(f.data_type, objects.len()))
            .collect();
        for (j, (obj, line)) in objects.iter().zip(lines).enumerate() {
            if let Some(k) = obj.keys().find(|k| self.schema.get(k).is_none()) {
                return Err((
                    j,
                    self.value_error(
                        *line,
                        k,
                        "key not seen in the first batch (declare it in the first lines)".into(),
                    ),
                ));
            }
            for (f, b) in self.schema.fields.iter().zip(builders.iter_mut()) {
                let v = obj.get(&f.name).unwrap_or(&serde_json::Value::Null);
                push_json(b, v).map_err(|m| (j, self.value_error(*line, &f.name, m)))?;
            }
        }
        Ok(builders
            .into_iter()
            .zip(&self.schema.fields)
            .map(|(b, f)| b.finish(f.name.clone()))
            .collect())
    }

    fn value_error(&self, line: u64, column: &str, message: String) -> ReadError {
        ReadError::Value {
            file: self.path.clone(),
            line,
            column: column.to_string(),
            message,
        }
    }
}

fn json_type(v: &serde_json::Value) -> Option<DataType> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(_) => Some(DataType::Bool),
        serde_json::Value::Number(n) if n.is_i64() => Some(DataType::S64),
        serde_json::Value::Number(_) => Some(DataType::F64),
        _ => Some(DataType::String),
    }
}

fn widen(a: Option<DataType>, b: Option<DataType>) -> Option<DataType> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(x), Some(y)) if x == y => Some(x),
        (Some(DataType::S64), Some(DataType::F64)) | (Some(DataType::F64), Some(DataType::S64)) => {
            Some(DataType::F64)
        }
        _ => Some(DataType::String),
    }
}

impl BatchSource for JsonlSource {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
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
        let mut objects = Vec::new();
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        while objects.len() < self.batch_size {
            match self.next_object(&mut buf) {
                Ok(Some(map)) => {
                    objects.push(map);
                    lines.push(self.line);
                }
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(e) if !objects.is_empty() => {
                    self.pending = Some(e);
                    break;
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
        if !self.fixed {
            // Column order: the given schema's, then new keys in order of first appearance.
            let mut fields: Vec<(String, Option<DataType>)> = self
                .given
                .iter()
                .flat_map(|s| s.fields.iter().map(|f| (f.name.clone(), Some(f.data_type))))
                .collect();
            let given_len = fields.len();
            for obj in &objects {
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
                    file: self.path.clone(),
                });
            }
            if let Some(s) = &self.given
                && let Some(missing) = s
                    .fields
                    .iter()
                    .find(|f| !objects.iter().any(|o| o.contains_key(&f.name)))
                && !objects.is_empty()
            {
                return Err(ReadError::MissingColumn {
                    file: self.path.clone(),
                    column: missing.name.clone(),
                });
            }
            self.schema = Schema {
                fields: fields
                    .into_iter()
                    .map(|(name, t)| Field {
                        name,
                        data_type: t.unwrap_or(DataType::String),
                    })
                    .collect(),
            };
            self.fixed = true;
        }
        if objects.is_empty() {
            return Ok(None);
        }
        let columns = match self.build(&objects, &lines) {
            Ok(columns) => columns,
            Err((0, e)) => {
                self.done = true;
                return Err(e);
            }
            Err((good, e)) => {
                self.pending = Some(e);
                objects.truncate(good);
                lines.truncate(good);
                self.build(&objects, &lines).map_err(|(_, e)| e)?
            }
        };
        let batch = Batch::new(objects.len(), columns).map_err(|e| ReadError::Syntax {
            file: self.path.clone(),
            line: lines.first().copied().unwrap_or(0),
            message: e.to_string(),
        })?;
        let first_row = self.rows_read;
        self.rows_read += objects.len() as u64;
        Ok(Some(SourceBatch {
            batch,
            first_row,
            lines,
        }))
    }
}

fn push_json(b: &mut Builder, v: &serde_json::Value) -> Result<(), String> {
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

/// Writes batches to a CSV, JSON Lines or Parquet file; the first batch fixes
/// the header (Parquet: the schema).
pub struct BatchWriter {
    out: Sink,
    format: Format,
    header: Option<Vec<String>>,
    path: PathBuf,
}

enum Sink {
    Text(BufWriter<Box<dyn Write + Send>>),
    Parquet(Box<parquet::ParquetSink>),
}

impl BatchWriter {
    /// Creates (truncates) `path`, format from its extension.
    pub fn create(path: &Path) -> Result<BatchWriter, ReadError> {
        let format = Format::from_path(path)?;
        // Refused before the file is created, so no empty output is left behind.
        #[cfg(not(feature = "parquet"))]
        if format == Format::Parquet {
            return Err(parquet::disabled(path));
        }
        let file = File::create(path).map_err(|source| ReadError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Ok(BatchWriter::new(Box::new(file), format, path))
    }

    /// Writes to any sink (e.g. stdout) in `format`; `name` is used in errors.
    /// Parquet needs no `Seek`: its footer is written last, by [`finish`](Self::finish).
    pub fn new(sink: Box<dyn Write + Send>, format: Format, name: &Path) -> BatchWriter {
        let out = match format {
            Format::Parquet => Sink::Parquet(Box::new(parquet::ParquetSink::new(sink))),
            Format::Csv | Format::JsonLines => Sink::Text(BufWriter::with_capacity(1 << 16, sink)),
        };
        BatchWriter {
            out,
            format,
            header: None,
            path: name.to_path_buf(),
        }
    }

    /// Appends the rows of `batch`.
    pub fn write(&mut self, batch: &Batch) -> Result<(), ReadError> {
        let names: Vec<String> = batch.columns().iter().map(|c| c.name.clone()).collect();
        match &self.header {
            None => {
                if let (Format::Csv, Sink::Text(out)) = (self.format, &mut self.out) {
                    let line = names
                        .iter()
                        .map(|n| csv_cell(n))
                        .collect::<Vec<_>>()
                        .join(",");
                    writeln!(out, "{line}").map_err(|source| ReadError::Io {
                        file: self.path.clone(),
                        source,
                    })?;
                }
                self.header = Some(names);
            }
            Some(h) if *h != names => {
                return Err(ReadError::Syntax {
                    file: self.path.clone(),
                    line: 0,
                    message: format!(
                        "output columns changed between batches: {h:?} then {names:?}"
                    ),
                });
            }
            Some(_) => {}
        }
        let out = match &mut self.out {
            Sink::Parquet(p) => return p.write(batch, &self.path),
            Sink::Text(out) => out,
        };
        use std::fmt::Write as _;
        let mut line = String::with_capacity(256);
        let mut map = serde_json::Map::new();
        for row in 0..batch.rows() {
            line.clear();
            match self.format {
                Format::Csv => {
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
                                push_csv_str(&mut line, s);
                                Ok(())
                            }
                        };
                    }
                }
                // Parquet went to its own sink above.
                Format::JsonLines | Format::Parquet => {
                    map.clear();
                    for c in batch.columns() {
                        map.insert(c.name.clone(), json_value(c.value(row)));
                    }
                    let _ = write!(
                        line,
                        "{}",
                        serde_json::Value::Object(std::mem::take(&mut map))
                    );
                }
            }
            line.push('\n');
            out.write_all(line.as_bytes())
                .map_err(|source| ReadError::Io {
                    file: self.path.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Flushes buffered output; for Parquet, writes the last row group and
    /// the footer, without which the file cannot be read.
    pub fn finish(self) -> Result<(), ReadError> {
        match self.out {
            Sink::Text(mut out) => out.flush().map_err(|source| ReadError::Io {
                file: self.path,
                source,
            }),
            Sink::Parquet(p) => p.finish(&self.path),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    fn write(dir: &tempfile::TempDir, name: &str, text: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn csv_infers_types_nulls_and_batches() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "a.csv",
            b"x,n,s,b\n1.5,1,a,true\n,2,\"b,c\",false\n3,,NA,true\n",
        );
        let mut src = open(&p, None, 2).unwrap();
        let first = src.next_batch().unwrap().unwrap();
        assert_eq!(first.batch.rows(), 2);
        assert_eq!(first.lines, vec![2, 3]);
        let s = src.schema().clone();
        assert_eq!(s.get("x"), Some(DataType::F64));
        assert_eq!(s.get("n"), Some(DataType::S64));
        assert_eq!(s.get("s"), Some(DataType::String));
        assert_eq!(s.get("b"), Some(DataType::Bool));
        assert_eq!(first.batch.column("x").unwrap().value(1), Value::Null);
        assert_eq!(first.batch.column("s").unwrap().value(1), Value::Str("b,c"));
        let second = src.next_batch().unwrap().unwrap();
        assert_eq!(second.first_row, 2);
        assert_eq!(second.batch.column("n").unwrap().value(0), Value::Null);
        assert!(src.next_batch().unwrap().is_none());
    }

    #[test]
    fn csv_line_numbers_hold_with_crlf_and_quoted_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "crlf.csv", b"x,s\r\n1,a\r\n2,\"b\nc\"\r\n3,d\r\n");
        let mut src = open(&p, None, 2).unwrap();
        assert_eq!(src.next_batch().unwrap().unwrap().lines, vec![2, 3]);
        assert_eq!(src.next_batch().unwrap().unwrap().lines, vec![5]);
        let all = read_all(&p, None).unwrap();
        assert_eq!(all.column("s").unwrap().value(1), Value::Str("b\nc"));
        assert_eq!(all.column("s").unwrap().value(2), Value::Str("d"));
        assert_eq!(all.column("x").unwrap().data_type(), DataType::S64);
    }

    #[test]
    fn csv_errors_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "bad.csv", b"x,y\n1,2\n3\n");
        let err = read_all(&p, None).unwrap_err().to_string();
        assert!(
            err.ends_with("bad.csv:3: row has 1 fields but the header has 2"),
            "{err}"
        );

        let p = write(&dir, "typed.csv", b"x,y\n1,2\n3,abc\n");
        let schema = Schema {
            fields: vec![
                Field {
                    name: "x".into(),
                    data_type: DataType::F64,
                },
                Field {
                    name: "y".into(),
                    data_type: DataType::F64,
                },
            ],
        };
        let err = read_all(&p, Some(&schema)).unwrap_err().to_string();
        assert!(
            err.ends_with("typed.csv:3: column `y`: expected f64, found `abc`"),
            "{err}"
        );

        let p = write(&dir, "missing.csv", b"x\n1\n");
        let err = read_all(&p, Some(&schema)).unwrap_err().to_string();
        assert!(err.contains("column `y` is missing"), "{err}");

        let p = write(&dir, "utf8.csv", b"x,y\n1,\xff\xfe\n");
        let err = read_all(&p, None).unwrap_err().to_string();
        assert!(
            err.contains("utf8.csv:2: field 2 is not valid UTF-8"),
            "{err}"
        );

        let p = write(&dir, "big.csv", b"n\n1\n99999999999999999999\n");
        let s = Schema {
            fields: vec![Field {
                name: "n".into(),
                data_type: DataType::S64,
            }],
        };
        let err = read_all(&p, Some(&s)).unwrap_err().to_string();
        assert!(
            err.contains("big.csv:3: column `n`: `99999999999999999999` is out of range"),
            "{err}"
        );

        let p = write(&dir, "empty.csv", b"");
        assert!(matches!(read_all(&p, None), Err(ReadError::Empty { .. })));
    }

    #[test]
    fn jsonl_reads_and_reports_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "a.jsonl",
            b"{\"x\":1,\"s\":\"a\"}\n{\"x\":2.5}\n\n{\"x\":null,\"s\":\"\xc3\xa9\"}\n",
        );
        let b = read_all(&p, None).unwrap();
        assert_eq!(b.rows(), 3);
        assert_eq!(b.column("x").unwrap().data_type(), DataType::F64);
        assert_eq!(b.column("s").unwrap().value(2), Value::Str("é"));
        assert_eq!(b.column("s").unwrap().value(1), Value::Null);

        let p = write(&dir, "bad.jsonl", b"{\"x\":1}\n{\"x\":\n");
        let err = read_all(&p, None).unwrap_err().to_string();
        assert!(err.contains("bad.jsonl:2: invalid JSON"), "{err}");
        let p = write(&dir, "typed.jsonl", b"{\"x\":1}\n{\"x\":\"one\"}\n");
        let schema = Schema {
            fields: vec![Field {
                name: "x".into(),
                data_type: DataType::F64,
            }],
        };
        let err = read_all(&p, Some(&schema)).unwrap_err().to_string();
        assert!(
            err.ends_with("typed.jsonl:2: column `x`: expected f64, found `\"one\"`"),
            "{err}"
        );
    }

    #[test]
    fn writer_round_trips_csv_and_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let src = write(&dir, "in.csv", b"x,s,n\n1.25,\"a,b\",3\n,c,\n");
        let batch = read_all(&src, None).unwrap();
        for name in ["out.csv", "out.jsonl"] {
            let p = dir.path().join(name);
            let mut w = BatchWriter::create(&p).unwrap();
            w.write(&batch).unwrap();
            w.finish().unwrap();
            let back = read_all(&p, Some(&Schema::of(&batch))).unwrap();
            assert_eq!(back, batch, "{name}");
        }
    }
}
