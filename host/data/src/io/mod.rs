//! Streaming readers and writers for CSV, JSON Lines and Parquet, producing
//! batches of a fixed size and errors that name file, line (Parquet: row) and
//! column. Without the `parquet` feature a .parquet file is refused with an
//! error that says so.
//!
//! One file per format: `csv.rs`, `jsonl.rs`, `parquet.rs`; `text.rs` holds
//! what the two text formats share (cell builders and the one batch source
//! over their rows). This file: formats, schemas, errors, `open` and the
//! writer's dispatch.

mod csv;
mod jsonl;
#[cfg(feature = "parquet")]
mod parquet;
#[cfg(not(feature = "parquet"))]
#[path = "parquet_off.rs"]
mod parquet;
mod text;

pub use jsonl::{json_schema, json_type, widen};

use crate::{Batch, Column, ColumnData, DataType};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
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

    /// The format of `path` when this build can read and write it: a
    /// `.parquet` file in a build without the `parquet` feature is refused
    /// before anything is read or created.
    pub fn supported(path: &Path) -> Result<Format, ReadError> {
        let format = Format::from_path(path)?;
        #[cfg(not(feature = "parquet"))]
        if format == Format::Parquet {
            return Err(parquet::disabled(path));
        }
        Ok(format)
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
    /// A format this build leaves out (Parquet without the `parquet` feature).
    #[error("{}: {message}", file.display())]
    Unsupported { file: PathBuf, message: String },
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
        Format::Csv => Ok(Box::new(csv::open(
            path,
            Box::new(file),
            schema,
            batch_size,
        )?)),
        Format::JsonLines => Ok(Box::new(jsonl::open(
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
        Format::Csv => Ok(Box::new(csv::open(name, reader, schema, batch_size)?)),
        Format::JsonLines => Ok(Box::new(jsonl::open(name, reader, schema, batch_size))),
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
        // Refused before the file is created, so no empty output is left behind.
        let format = Format::supported(path)?;
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
                    let line = csv::header_line(&names);
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
        let mut line = String::with_capacity(256);
        let mut map = serde_json::Map::new();
        for row in 0..batch.rows() {
            line.clear();
            match self.format {
                Format::Csv => csv::push_row(&mut line, batch, row),
                // Parquet went to its own sink above.
                Format::JsonLines | Format::Parquet => {
                    jsonl::push_row(&mut line, &mut map, batch, row)
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
