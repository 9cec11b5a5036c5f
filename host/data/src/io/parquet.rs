//! Parquet input and output through the Arrow reader and writer of the
//! `parquet` crate, converting Arrow arrays to Keel columns with bulk copies.
//!
//! Arrow types map to Keel types as follows: Float64 → f64, Float32 → f32,
//! Int8/16/32/64 and UInt8/16/32 → s64, UInt64 → s64 when the value fits,
//! Boolean → bool, Utf8 / LargeUtf8 / Utf8View → string, a dictionary maps as
//! its values do, and a column of the Null type (all values missing) takes the
//! type the pipeline expects, or string. Keel has no time types, so Timestamp
//! becomes s64 counting the timestamp's own unit since the Unix epoch (UTC;
//! any time zone is dropped), Date32 s64 days and Date64 s64 milliseconds since
//! the epoch. Every other type (decimals, binary, lists, structs, …) is refused
//! when the file is opened, naming the column and the type.
//!
//! Parquet has no lines, so [`SourceBatch::lines`] holds 1-based row numbers
//! and errors about a value say "row N".

use super::{BatchSource, Field, ReadError, Schema, SourceBatch};
use crate::{Batch, Column, ColumnData, DataType};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, BooleanArray, Float32Array, Float64Array,
    GenericStringArray, Int64Array, OffsetSizeTrait, RecordBatch, StringArray,
};
use arrow_buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType as ArrowType, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The Keel type an Arrow type reads as by itself; `None` when Keel cannot
/// read it. The Null type is reported as string, the type CSV gives a column
/// with no values.
fn keel_type(t: &ArrowType) -> Option<DataType> {
    Some(match t {
        ArrowType::Float64 => DataType::F64,
        ArrowType::Float32 => DataType::F32,
        ArrowType::Int8
        | ArrowType::Int16
        | ArrowType::Int32
        | ArrowType::Int64
        | ArrowType::UInt8
        | ArrowType::UInt16
        | ArrowType::UInt32
        | ArrowType::UInt64
        | ArrowType::Timestamp(_, _)
        | ArrowType::Date32
        | ArrowType::Date64 => DataType::S64,
        ArrowType::Boolean => DataType::Bool,
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View | ArrowType::Null => {
            DataType::String
        }
        ArrowType::Dictionary(_, values) => return keel_type(values),
        _ => return None,
    })
}

/// Whether a column read as `from` can be converted to `to` as the CSV reader
/// would: numbers between numeric types (to s64 only when integral, checked
/// per value), anything to string, and a column with no values to anything.
fn convertible(arrow: &ArrowType, from: DataType, to: DataType) -> bool {
    from == to || to == DataType::String || *arrow == ArrowType::Null || {
        from.is_numeric() && to.is_numeric()
    }
}

/// A stream of batches from a Parquet file, read row group by row group.
pub(super) struct ParquetSource {
    path: PathBuf,
    reader: Option<ParquetRecordBatchReader>,
    schema: Schema,
    file_len: u64,
    total_rows: u64,
    rows_read: u64,
}

impl ParquetSource {
    /// Reads the footer and checks every column's type against Keel's and
    /// against `given`; no row is read yet.
    pub(super) fn new(
        path: &Path,
        file: File,
        given: Option<&Schema>,
        batch_size: usize,
    ) -> Result<ParquetSource, ReadError> {
        let file_len = file
            .metadata()
            .map_err(|source| ReadError::Io {
                file: path.to_path_buf(),
                source,
            })?
            .len();
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| ReadError::Parquet {
                file: path.to_path_buf(),
                message: format!("not a readable Parquet file: {e}"),
            })?;
        let total_rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        let mut fields = Vec::new();
        for f in builder.schema().fields() {
            let column = |message: String| ReadError::Column {
                file: path.to_path_buf(),
                column: f.name().clone(),
                message,
            };
            if fields.iter().any(|g: &Field| g.name == *f.name()) {
                return Err(column("appears twice in the file".into()));
            }
            let natural = keel_type(f.data_type()).ok_or_else(|| {
                column(format!(
                    "Arrow type {} is not supported (Keel reads floats, integers, booleans, \
                     strings, dates and timestamps)",
                    f.data_type()
                ))
            })?;
            let data_type = match given.and_then(|s| s.get(f.name())) {
                Some(want) if !convertible(f.data_type(), natural, want) => {
                    return Err(column(format!(
                        "expected {want}, found {natural} (Arrow type {})",
                        f.data_type()
                    )));
                }
                Some(want) => want,
                None => natural,
            };
            fields.push(Field {
                name: f.name().clone(),
                data_type,
            });
        }
        if let Some(missing) = given.and_then(|s| {
            s.fields
                .iter()
                .find(|g| !fields.iter().any(|f| f.name == g.name))
        }) {
            return Err(ReadError::MissingColumn {
                file: path.to_path_buf(),
                column: missing.name.clone(),
            });
        }
        // A reader over no rows would be asked for batches of zero rows.
        let reader =
            if total_rows == 0 {
                None
            } else {
                Some(builder.with_batch_size(batch_size).build().map_err(|e| {
                    ReadError::Parquet {
                        file: path.to_path_buf(),
                        message: format!("cannot read: {e}"),
                    }
                })?)
            };
        Ok(ParquetSource {
            path: path.to_path_buf(),
            reader,
            schema: Schema { fields },
            file_len,
            total_rows,
            rows_read: 0,
        })
    }

    fn convert(&self, rb: &RecordBatch) -> Result<Batch, ReadError> {
        let columns = rb
            .columns()
            .iter()
            .zip(&self.schema.fields)
            .map(|(a, f)| {
                to_column(a.as_ref(), f.data_type, self.rows_read)
                    .map_err(|e| match e {
                        CellError::Row(row, message) => ReadError::RowValue {
                            file: self.path.clone(),
                            row,
                            column: f.name.clone(),
                            message,
                        },
                        CellError::Column(message) => ReadError::Column {
                            file: self.path.clone(),
                            column: f.name.clone(),
                            message,
                        },
                    })
                    .map(|(data, validity)| Column {
                        name: f.name.clone(),
                        data,
                        validity,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Batch::new(rb.num_rows(), columns).map_err(|e| ReadError::Parquet {
            file: self.path.clone(),
            message: e.to_string(),
        })
    }
}

impl BatchSource for ParquetSource {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The share of rows read times the file size: monotonic, and the file
    /// size exactly once every row is read.
    fn bytes_read(&self) -> u64 {
        if self.total_rows == 0 {
            return self.file_len;
        }
        let share =
            u128::from(self.rows_read) * u128::from(self.file_len) / u128::from(self.total_rows);
        u64::try_from(share).unwrap_or(self.file_len)
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn next_batch(&mut self) -> Result<Option<SourceBatch>, ReadError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        let rb = match reader.next() {
            None => {
                self.reader = None;
                return Ok(None);
            }
            Some(Ok(rb)) => rb,
            Some(Err(e)) => {
                self.reader = None;
                return Err(ReadError::Parquet {
                    file: self.path.clone(),
                    message: format!("cannot decode the rows after row {}: {e}", self.rows_read),
                });
            }
        };
        let batch = self.convert(&rb)?;
        let first_row = self.rows_read;
        let n = batch.rows() as u64;
        self.rows_read += n;
        Ok(Some(SourceBatch {
            batch,
            first_row,
            lines: (first_row + 1..=first_row + n).collect(),
        }))
    }
}

/// A value or a whole column that cannot become what the schema asks for.
enum CellError {
    /// The 1-based row and what is wrong with its value.
    Row(u64, String),
    Column(String),
}

/// The validity mask of an array, `None` when every value is present.
fn validity(a: &dyn Array) -> Option<Vec<bool>> {
    a.logical_nulls()
        .filter(|n| n.null_count() > 0)
        .map(|n| n.iter().collect())
}

/// Converts one Arrow array to Keel values of type `want`; `first_row` is
/// the zero-based file row of the array's first value, for errors.
fn to_column(
    a: &dyn Array,
    want: DataType,
    first_row: u64,
) -> Result<(ColumnData, Option<Vec<bool>>), CellError> {
    let validity = validity(a);
    let data = natural(a, want, validity.as_deref(), first_row)?;
    let data = cast(data, want, validity.as_deref(), first_row)?;
    Ok((data, validity))
}

fn ints<T>(a: &dyn Array) -> Vec<i64>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    a.as_primitive::<T>()
        .values()
        .iter()
        .map(|x| (*x).into())
        .collect()
}

/// The values of `a` in the Keel type its Arrow type maps to. Null slots
/// hold 0, false or "" (what the text readers put there), not whatever the
/// Arrow buffer happens to hold, so equal data gives equal batches.
fn natural(
    a: &dyn Array,
    want: DataType,
    validity: Option<&[bool]>,
    first_row: u64,
) -> Result<ColumnData, CellError> {
    let len = a.len();
    let mut data = match a.data_type() {
        ArrowType::Float64 => ColumnData::F64(a.as_primitive::<Float64Type>().values().to_vec()),
        ArrowType::Float32 => ColumnData::F32(a.as_primitive::<Float32Type>().values().to_vec()),
        ArrowType::Int64 => ColumnData::S64(a.as_primitive::<Int64Type>().values().to_vec()),
        ArrowType::Int32 => ColumnData::S64(ints::<Int32Type>(a)),
        ArrowType::Int16 => ColumnData::S64(ints::<Int16Type>(a)),
        ArrowType::Int8 => ColumnData::S64(ints::<Int8Type>(a)),
        ArrowType::UInt32 => ColumnData::S64(ints::<UInt32Type>(a)),
        ArrowType::UInt16 => ColumnData::S64(ints::<UInt16Type>(a)),
        ArrowType::UInt8 => ColumnData::S64(ints::<UInt8Type>(a)),
        ArrowType::UInt64 => {
            let values = a.as_primitive::<UInt64Type>().values();
            let mut out = Vec::with_capacity(len);
            for (i, x) in values.iter().enumerate() {
                match i64::try_from(*x) {
                    Ok(v) => out.push(v),
                    Err(_) if validity.is_some_and(|v| !v[i]) => out.push(0),
                    Err(_) => {
                        return Err(CellError::Row(
                            first_row + i as u64 + 1,
                            format!("`{x}` is out of range for s64"),
                        ));
                    }
                }
            }
            ColumnData::S64(out)
        }
        ArrowType::Timestamp(unit, _) => ColumnData::S64(
            match unit {
                TimeUnit::Second => a.as_primitive::<TimestampSecondType>().values(),
                TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().values(),
                TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().values(),
                TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().values(),
            }
            .to_vec(),
        ),
        ArrowType::Date32 => ColumnData::S64(ints::<Date32Type>(a)),
        ArrowType::Date64 => ColumnData::S64(a.as_primitive::<Date64Type>().values().to_vec()),
        ArrowType::Boolean => ColumnData::Bool(a.as_boolean().values().iter().collect()),
        ArrowType::Utf8 => ColumnData::String(strings(a.as_string::<i32>(), validity)),
        ArrowType::LargeUtf8 => ColumnData::String(strings(a.as_string::<i64>(), validity)),
        ArrowType::Utf8View => {
            let s = a.as_string_view();
            ColumnData::String(
                (0..len)
                    .map(|i| match validity {
                        Some(v) if !v[i] => String::new(),
                        _ => s.value(i).to_owned(),
                    })
                    .collect(),
            )
        }
        // The values are converted once, then gathered by key.
        ArrowType::Dictionary(_, _) => {
            let dict = a
                .as_any_dictionary_opt()
                .ok_or_else(|| CellError::Column("malformed dictionary array".into()))?;
            let values = dict.values();
            if values.is_empty() {
                // No values to point at: every row is null.
                ColumnData::with_capacity(want, 0)
            } else {
                let keys = dict.normalized_keys();
                let (inner, _) = to_column(values.as_ref(), want, 0)
                    .map_err(|e| in_dictionary(e, a, &keys, first_row))?;
                return Ok(gather(&inner, &keys, validity));
            }
        }
        ArrowType::Null => ColumnData::with_capacity(want, 0),
        other => {
            return Err(CellError::Column(format!(
                "Arrow type {other} is not supported"
            )));
        }
    };
    if data.len() < len {
        // The Null type (and an empty dictionary): every row is null.
        data = defaults(want, len);
    } else if let Some(v) = validity {
        clear_nulls(&mut data, v);
    }
    Ok(data)
}

/// Points an error about a dictionary value at the first row that uses it.
fn in_dictionary(e: CellError, a: &dyn Array, keys: &[usize], first_row: u64) -> CellError {
    match e {
        CellError::Row(value_row, message) => {
            let value = (value_row - 1) as usize;
            let row = (0..a.len()).find(|i| a.is_valid(*i) && keys[*i] == value);
            match row {
                Some(i) => CellError::Row(first_row + i as u64 + 1, message),
                // Only null rows would use it; nothing is wrong then, but the
                // whole dictionary was converted, so say where the value sits.
                None => CellError::Column(format!("dictionary value {value}: {message}")),
            }
        }
        other => other,
    }
}

fn strings<O: OffsetSizeTrait>(
    s: &GenericStringArray<O>,
    validity: Option<&[bool]>,
) -> Vec<String> {
    let mut out = Vec::with_capacity(s.len());
    match validity {
        None => out.extend((0..s.len()).map(|i| s.value(i).to_owned())),
        Some(v) => out.extend((0..s.len()).map(|i| {
            if v[i] {
                s.value(i).to_owned()
            } else {
                String::new()
            }
        })),
    }
    out
}

fn gather(values: &ColumnData, keys: &[usize], validity: Option<&[bool]>) -> ColumnData {
    fn pick<T: Clone + Default>(v: &[T], keys: &[usize], validity: Option<&[bool]>) -> Vec<T> {
        match validity {
            None => keys.iter().map(|k| v[*k].clone()).collect(),
            Some(ok) => keys
                .iter()
                .zip(ok)
                .map(|(k, ok)| if *ok { v[*k].clone() } else { T::default() })
                .collect(),
        }
    }
    match values {
        ColumnData::F64(v) => ColumnData::F64(pick(v, keys, validity)),
        ColumnData::F32(v) => ColumnData::F32(pick(v, keys, validity)),
        ColumnData::S64(v) => ColumnData::S64(pick(v, keys, validity)),
        ColumnData::Bool(v) => ColumnData::Bool(pick(v, keys, validity)),
        ColumnData::String(v) => ColumnData::String(pick(v, keys, validity)),
    }
}

fn defaults(t: DataType, len: usize) -> ColumnData {
    match t {
        DataType::F64 => ColumnData::F64(vec![0.0; len]),
        DataType::F32 => ColumnData::F32(vec![0.0; len]),
        DataType::S64 => ColumnData::S64(vec![0; len]),
        DataType::Bool => ColumnData::Bool(vec![false; len]),
        DataType::String => ColumnData::String(vec![String::new(); len]),
    }
}

fn clear_nulls(data: &mut ColumnData, validity: &[bool]) {
    fn clear<T: Default>(v: &mut [T], validity: &[bool]) {
        for (x, ok) in v.iter_mut().zip(validity) {
            if !ok {
                *x = T::default();
            }
        }
    }
    match data {
        ColumnData::F64(v) => clear(v, validity),
        ColumnData::F32(v) => clear(v, validity),
        ColumnData::S64(v) => clear(v, validity),
        ColumnData::Bool(v) => clear(v, validity),
        // Built with "" in null slots already.
        ColumnData::String(_) => {}
    }
}

/// Converts values to the type the schema asks for (checked to be possible
/// when the file was opened).
fn cast(
    data: ColumnData,
    want: DataType,
    validity: Option<&[bool]>,
    first_row: u64,
) -> Result<ColumnData, CellError> {
    let valid = |i: usize| validity.is_none_or(|v| v[i]);
    Ok(match (data, want) {
        (d, w) if d.data_type() == w => d,
        (ColumnData::F32(v), DataType::F64) => {
            ColumnData::F64(v.into_iter().map(f64::from).collect())
        }
        (ColumnData::S64(v), DataType::F64) => {
            ColumnData::F64(v.into_iter().map(|x| x as f64).collect())
        }
        (ColumnData::F64(v), DataType::F32) => {
            ColumnData::F32(v.into_iter().map(|x| x as f32).collect())
        }
        (ColumnData::S64(v), DataType::F32) => {
            ColumnData::F32(v.into_iter().map(|x| x as f32).collect())
        }
        (ColumnData::F64(v), DataType::S64) => ColumnData::S64(integral(v, &valid, first_row)?),
        (ColumnData::F32(v), DataType::S64) => ColumnData::S64(integral(
            v.into_iter().map(f64::from).collect(),
            &valid,
            first_row,
        )?),
        (ColumnData::F64(v), DataType::String) => ColumnData::String(texts(&v, valid)),
        (ColumnData::F32(v), DataType::String) => ColumnData::String(texts(&v, valid)),
        (ColumnData::S64(v), DataType::String) => ColumnData::String(texts(&v, valid)),
        (ColumnData::Bool(v), DataType::String) => ColumnData::String(texts(&v, valid)),
        (d, w) => {
            return Err(CellError::Column(format!(
                "expected {w}, found {}",
                d.data_type()
            )));
        }
    })
}

/// Values as text, as the CSV writer prints them; "" for nulls.
fn texts<T: std::fmt::Display>(v: &[T], valid: impl Fn(usize) -> bool) -> Vec<String> {
    v.iter()
        .enumerate()
        .map(|(i, x)| {
            if valid(i) {
                x.to_string()
            } else {
                String::new()
            }
        })
        .collect()
}

/// Floats as s64, refusing any that has a fraction or is out of range.
fn integral(
    v: Vec<f64>,
    valid: &dyn Fn(usize) -> bool,
    first_row: u64,
) -> Result<Vec<i64>, CellError> {
    // 2^63 is exactly representable; every float below it fits in an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    v.into_iter()
        .enumerate()
        .map(|(i, x)| {
            if !valid(i) {
                Ok(0)
            } else if x.fract() == 0.0 && (-LIMIT..LIMIT).contains(&x) {
                Ok(x as i64)
            } else {
                Err(CellError::Row(
                    first_row + i as u64 + 1,
                    format!("expected s64, found the non-integer {x}"),
                ))
            }
        })
        .collect()
}

/// Writes batches as Parquet (snappy-compressed), the first batch fixing the
/// schema. Row groups are buffered by the Arrow writer and written as they
/// fill; nothing is readable until [`finish`](Self::finish) writes the footer.
pub(super) struct ParquetSink {
    /// The output, until the first batch's schema opens the writer.
    sink: Option<Box<dyn Write + Send>>,
    writer: Option<(ArrowWriter<Box<dyn Write + Send>>, arrow_schema::SchemaRef)>,
}

impl ParquetSink {
    pub(super) fn new(sink: Box<dyn Write + Send>) -> ParquetSink {
        ParquetSink {
            sink: Some(sink),
            writer: None,
        }
    }

    fn open(&mut self, schema: arrow_schema::SchemaRef, path: &Path) -> Result<(), ReadError> {
        let Some(sink) = self.sink.take() else {
            return Err(closed(path));
        };
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer = ArrowWriter::try_new(sink, schema.clone(), Some(props))
            .map_err(|e| write_error(path, e))?;
        self.writer = Some((writer, schema));
        Ok(())
    }

    pub(super) fn write(&mut self, batch: &Batch, path: &Path) -> Result<(), ReadError> {
        // Arrow's string arrays have 32-bit offsets: a batch with more text
        // than that is written in parts.
        let text: usize = batch
            .columns()
            .iter()
            .filter_map(|c| match &c.data {
                ColumnData::String(v) => Some(v.iter().map(String::len).sum::<usize>()),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        if text > i32::MAX as usize && batch.rows() > 1 {
            let mid = batch.rows() / 2;
            self.write(&batch.slice(0, mid), path)?;
            return self.write(&batch.slice(mid, batch.rows()), path);
        }
        if self.writer.is_none() {
            self.open(arrow_schema_of(batch), path)?;
        }
        let Some((writer, schema)) = self.writer.as_mut() else {
            return Err(closed(path));
        };
        let columns = batch
            .columns()
            .iter()
            .map(to_arrow)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ReadError::Parquet {
                file: path.to_path_buf(),
                message: format!("cannot encode the output: {e}"),
            })?;
        let rb = RecordBatch::try_new(schema.clone(), columns).map_err(|e| ReadError::Parquet {
            file: path.to_path_buf(),
            message: format!("cannot encode the output: {e}"),
        })?;
        writer.write(&rb).map_err(|e| write_error(path, e))
    }

    /// Writes the last row group and the footer and flushes the output. With
    /// no batch written, the file has no columns and no rows (still valid
    /// Parquet).
    pub(super) fn finish(mut self, path: &Path) -> Result<(), ReadError> {
        if self.writer.is_none() {
            self.open(Arc::new(arrow_schema::Schema::empty()), path)?;
        }
        let Some((writer, _)) = self.writer.take() else {
            return Err(closed(path));
        };
        let mut out = writer.into_inner().map_err(|e| write_error(path, e))?;
        out.flush().map_err(|source| ReadError::Io {
            file: path.to_path_buf(),
            source,
        })
    }
}

fn closed(path: &Path) -> ReadError {
    ReadError::Parquet {
        file: path.to_path_buf(),
        message: "the Parquet writer failed earlier and is closed".into(),
    }
}

fn write_error(path: &Path, e: parquet::errors::ParquetError) -> ReadError {
    match e {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<std::io::Error>() {
                Ok(source) => ReadError::Io {
                    file: path.to_path_buf(),
                    source: *source,
                },
                Err(inner) => ReadError::Parquet {
                    file: path.to_path_buf(),
                    message: format!("cannot write Parquet: {inner}"),
                },
            }
        }
        e => ReadError::Parquet {
            file: path.to_path_buf(),
            message: format!("cannot write Parquet: {e}"),
        },
    }
}

fn arrow_type(t: DataType) -> ArrowType {
    match t {
        DataType::F64 => ArrowType::Float64,
        DataType::F32 => ArrowType::Float32,
        DataType::S64 => ArrowType::Int64,
        DataType::Bool => ArrowType::Boolean,
        DataType::String => ArrowType::Utf8,
    }
}

fn arrow_schema_of(batch: &Batch) -> arrow_schema::SchemaRef {
    Arc::new(arrow_schema::Schema::new(
        batch
            .columns()
            .iter()
            .map(|c| arrow_schema::Field::new(c.name.clone(), arrow_type(c.data_type()), true))
            .collect::<Vec<_>>(),
    ))
}

fn to_arrow(c: &Column) -> Result<ArrayRef, arrow_schema::ArrowError> {
    let nulls = c.validity.as_deref().map(NullBuffer::from);
    Ok(match &c.data {
        ColumnData::F64(v) => {
            Arc::new(Float64Array::try_new(ScalarBuffer::from(v.clone()), nulls)?)
        }
        ColumnData::F32(v) => {
            Arc::new(Float32Array::try_new(ScalarBuffer::from(v.clone()), nulls)?)
        }
        ColumnData::S64(v) => Arc::new(Int64Array::try_new(ScalarBuffer::from(v.clone()), nulls)?),
        ColumnData::Bool(v) => {
            Arc::new(BooleanArray::new(BooleanBuffer::from(v.as_slice()), nulls))
        }
        ColumnData::String(v) => {
            let mut offsets = Vec::with_capacity(v.len() + 1);
            let mut bytes = Vec::with_capacity(v.iter().map(String::len).sum());
            offsets.push(0i32);
            for s in v {
                bytes.extend_from_slice(s.as_bytes());
                offsets.push(i32::try_from(bytes.len()).map_err(|_| {
                    arrow_schema::ArrowError::ComputeError(format!(
                        "column `{}` holds more than 2 GiB of text in one row",
                        c.name
                    ))
                })?);
            }
            let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
            Arc::new(StringArray::try_new(offsets, bytes.into(), nulls)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{BatchWriter, Format, open, read_all};
    use arrow_array::builder::{Decimal128Builder, ListBuilder, StringDictionaryBuilder};
    use arrow_array::types::Int32Type;
    use arrow_array::{
        Date32Array, Float32Array, Int8Array, Int16Array, Int32Array, LargeStringArray, NullArray,
        StringViewArray, TimestampMillisecondArray, UInt8Array, UInt16Array, UInt32Array,
        UInt64Array,
    };

    const ROWS: usize = 25;

    /// Writes `batches` with row groups of `group_rows` rows.
    fn write_parquet(path: &Path, batches: &[RecordBatch], group_rows: usize) {
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(group_rows))
            .build();
        let file = File::create(path).unwrap();
        let mut w = ArrowWriter::try_new(file, batches[0].schema(), Some(props)).unwrap();
        for b in batches {
            w.write(b).unwrap();
        }
        w.close().unwrap();
    }

    /// A record batch whose columns may all hold nulls.
    fn record_batch(cols: Vec<(&str, ArrayRef)>) -> Result<RecordBatch, arrow_schema::ArrowError> {
        RecordBatch::try_from_iter_with_nullable(cols.into_iter().map(|(n, a)| (n, a, true)))
    }

    fn opt<T>(i: usize, every: usize, v: T) -> Option<T> {
        (!i.is_multiple_of(every)).then_some(v)
    }

    const CATS: [&str; 3] = ["Adelie", "Gentoo", "Chinstrap"];

    /// One of every Arrow type Keel reads, with nulls in several.
    fn every_type() -> RecordBatch {
        let n = 0..ROWS;
        let mut dict = StringDictionaryBuilder::<Int32Type>::new();
        for i in n.clone() {
            if i % 4 == 0 {
                dict.append_null();
            } else {
                dict.append_value(CATS[i % 3]);
            }
        }
        let cols: Vec<(&str, ArrayRef)> = vec![
            (
                "f64",
                Arc::new(Float64Array::from_iter(
                    n.clone().map(|i| opt(i, 3, i as f64 * 0.5 - 3.0)),
                )),
            ),
            (
                "f32",
                Arc::new(Float32Array::from_iter_values(
                    n.clone().map(|i| i as f32 / 4.0),
                )),
            ),
            (
                "i8",
                Arc::new(Int8Array::from_iter_values(n.clone().map(|i| -(i as i8)))),
            ),
            (
                "i16",
                Arc::new(Int16Array::from_iter_values(
                    n.clone().map(|i| i as i16 * -300),
                )),
            ),
            (
                "i32",
                Arc::new(Int32Array::from_iter_values(
                    n.clone().map(|i| i as i32 * 70_000),
                )),
            ),
            (
                "i64",
                Arc::new(Int64Array::from_iter(
                    n.clone().map(|i| opt(i, 5, i as i64 * 10_000_000_000)),
                )),
            ),
            (
                "u8",
                Arc::new(UInt8Array::from_iter_values(
                    n.clone().map(|i| 250 - i as u8),
                )),
            ),
            (
                "u16",
                Arc::new(UInt16Array::from_iter_values(
                    n.clone().map(|i| 65_000 + i as u16),
                )),
            ),
            (
                "u32",
                Arc::new(UInt32Array::from_iter_values(
                    n.clone().map(|i| 4_000_000_000 + i as u32),
                )),
            ),
            (
                "u64",
                Arc::new(UInt64Array::from_iter_values(
                    n.clone().map(|i| (i64::MAX - i as i64) as u64),
                )),
            ),
            (
                "bool",
                Arc::new(BooleanArray::from_iter(
                    n.clone().map(|i| opt(i, 6, i % 2 == 0)),
                )),
            ),
            (
                "utf8",
                Arc::new(StringArray::from_iter(
                    n.clone()
                        .map(|i| (i % 7 != 3).then(|| format!("s{i}, \"é\""))),
                )),
            ),
            (
                "large",
                Arc::new(LargeStringArray::from_iter_values(
                    n.clone().map(|i| format!("L{i}")),
                )),
            ),
            (
                "view",
                Arc::new(StringViewArray::from_iter(n.clone().map(|i| {
                    opt(i, 8, format!("a view string longer than twelve {i}"))
                }))),
            ),
            ("dict", Arc::new(dict.finish())),
            (
                "ts",
                Arc::new(
                    TimestampMillisecondArray::from_iter_values(
                        n.clone().map(|i| 1_700_000_000_000 + i as i64),
                    )
                    .with_timezone("UTC"),
                ),
            ),
            (
                "date",
                Arc::new(Date32Array::from_iter_values(
                    n.clone().map(|i| 19_000 + i as i32),
                )),
            ),
            ("nothing", Arc::new(NullArray::new(ROWS))),
        ];
        record_batch(cols).unwrap()
    }

    /// What `every_type` reads as in Keel.
    fn every_type_expected() -> Batch {
        let n = 0..ROWS;
        let ints = |f: &dyn Fn(usize) -> i64| ColumnData::S64(n.clone().map(f).collect());
        let s64_opt = |name: &str, v: Vec<Option<i64>>| {
            Column::with_validity(
                name,
                ColumnData::S64(v.iter().map(|x| x.unwrap_or(0)).collect()),
                v.iter().map(Option::is_some).collect(),
            )
        };
        let bools: Vec<Option<bool>> = n.clone().map(|i| opt(i, 6, i % 2 == 0)).collect();
        let view: Vec<Option<String>> = n
            .clone()
            .map(|i| opt(i, 8, ()).map(|_| format!("a view string longer than twelve {i}")))
            .collect();
        let utf8: Vec<Option<String>> = n
            .clone()
            .map(|i| (i % 7 != 3).then(|| format!("s{i}, \"é\"")))
            .collect();
        let dict: Vec<Option<&str>> = n.clone().map(|i| opt(i, 4, CATS[i % 3])).collect();
        fn refs(v: &[Option<String>]) -> Vec<Option<&str>> {
            v.iter().map(|s| s.as_deref()).collect()
        }
        Batch::from_columns(vec![
            Column::from_opt_f64(
                "f64",
                &n.clone()
                    .map(|i| opt(i, 3, i as f64 * 0.5 - 3.0))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "f32",
                ColumnData::F32(n.clone().map(|i| i as f32 / 4.0).collect()),
            ),
            Column::new("i8", ints(&|i| -(i as i64))),
            Column::new("i16", ints(&|i| i as i64 * -300)),
            Column::new("i32", ints(&|i| i as i64 * 70_000)),
            s64_opt(
                "i64",
                n.clone()
                    .map(|i| opt(i, 5, i as i64 * 10_000_000_000))
                    .collect(),
            ),
            Column::new("u8", ints(&|i| 250 - i as i64)),
            Column::new("u16", ints(&|i| 65_000 + i as i64)),
            Column::new("u32", ints(&|i| 4_000_000_000 + i as i64)),
            Column::new("u64", ints(&|i| i64::MAX - i as i64)),
            Column::with_validity(
                "bool",
                ColumnData::Bool(bools.iter().map(|b| b.unwrap_or(false)).collect()),
                bools.iter().map(Option::is_some).collect(),
            ),
            Column::from_opt_str("utf8", &refs(&utf8)),
            Column::new(
                "large",
                ColumnData::String(n.clone().map(|i| format!("L{i}")).collect()),
            ),
            Column::from_opt_str("view", &refs(&view)),
            Column::from_opt_str("dict", &dict),
            Column::new("ts", ints(&|i| 1_700_000_000_000 + i as i64)),
            Column::new("date", ints(&|i| 19_000 + i as i64)),
            Column::from_opt_str("nothing", &[None; ROWS]),
        ])
        .unwrap()
    }

    fn field(name: &str, data_type: DataType) -> Field {
        Field {
            name: name.into(),
            data_type,
        }
    }

    #[test]
    fn reads_every_type_across_row_groups_at_any_batch_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("all.parquet");
        let rb = every_type();
        // Written in two record batches so that dictionary pages differ too.
        write_parquet(&p, &[rb.slice(0, 11), rb.slice(11, ROWS - 11)], 7);
        let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&p).unwrap()).unwrap();
        assert_eq!(
            meta.metadata().num_row_groups(),
            4,
            "groups of 7, 7, 7, 4 rows"
        );
        let expected = every_type_expected();
        let file_len = std::fs::metadata(&p).unwrap().len();

        for batch_size in [1, 4, 7, 10, ROWS, 1000] {
            let mut src = open(&p, None, batch_size).unwrap();
            assert_eq!(
                src.schema(),
                &Schema::of(&expected),
                "batch size {batch_size}"
            );
            assert_eq!(src.bytes_read(), 0);
            let mut all = Batch::default();
            let mut progress = 0;
            while let Some(sb) = src.next_batch().unwrap() {
                let n = sb.batch.rows() as u64;
                assert_eq!(n, (batch_size as u64).min(ROWS as u64 - sb.first_row));
                assert_eq!(sb.first_row, all.rows() as u64);
                let rows: Vec<u64> = (sb.first_row + 1..=sb.first_row + n).collect();
                assert_eq!(sb.lines, rows);
                assert!(src.bytes_read() > progress);
                progress = src.bytes_read();
                all.append(sb.batch).unwrap();
            }
            assert_eq!(progress, file_len);
            assert_eq!(all, expected, "batch size {batch_size}");
        }
        assert_eq!(read_all(&p, None).unwrap(), expected);
    }

    #[test]
    fn a_schema_converts_numbers_and_names_what_cannot_convert() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("typed.pq");
        let rb = record_batch(vec![
            (
                "n",
                Arc::new(Int32Array::from(vec![Some(1), None, Some(-3)])) as ArrayRef,
            ),
            ("x", Arc::new(Float64Array::from(vec![2.0, -4.0, 1.5]))),
            (
                "b",
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            ),
            ("s", Arc::new(StringArray::from(vec!["a", "b", "c"]))),
            ("nothing", Arc::new(NullArray::new(3))),
        ])
        .unwrap();
        write_parquet(&p, &[rb], 2);
        let schema = Schema {
            fields: vec![
                field("n", DataType::F64),
                field("b", DataType::String),
                field("x", DataType::F32),
                field("nothing", DataType::F64),
            ],
        };
        let b = read_all(&p, Some(&schema)).unwrap();
        let expected = Batch::from_columns(vec![
            Column::from_opt_f64("n", &[Some(1.0), None, Some(-3.0)]),
            Column::new("x", ColumnData::F32(vec![2.0, -4.0, 1.5])),
            Column::from_opt_str("b", &[Some("true"), None, Some("false")]),
            Column::new(
                "s",
                ColumnData::String(vec!["a".into(), "b".into(), "c".into()]),
            ),
            Column::from_opt_f64("nothing", &[None, None, None]),
        ])
        .unwrap();
        assert_eq!(b, expected);

        // Floats as s64: the integral rows convert, the first that is not is named.
        let schema = Schema {
            fields: vec![field("x", DataType::S64)],
        };
        let mut src = open(&p, Some(&schema), 2).unwrap();
        let first = src.next_batch().unwrap().unwrap();
        assert_eq!(
            first.batch.column("x").unwrap().data,
            ColumnData::S64(vec![2, -4])
        );
        let err = src.next_batch().unwrap_err();
        assert_eq!(err.line(), Some(3));
        let err = err.to_string();
        assert!(
            err.ends_with("typed.pq: row 3: column `x`: expected s64, found the non-integer 1.5"),
            "{err}"
        );

        let schema = Schema {
            fields: vec![field("s", DataType::F64)],
        };
        let err = open(&p, Some(&schema), 10).err().unwrap().to_string();
        assert!(
            err.ends_with("typed.pq: column `s`: expected f64, found string (Arrow type Utf8)"),
            "{err}"
        );
        let schema = Schema {
            fields: vec![field("b", DataType::S64)],
        };
        let err = open(&p, Some(&schema), 10).err().unwrap().to_string();
        assert!(
            err.ends_with("column `b`: expected s64, found bool (Arrow type Boolean)"),
            "{err}"
        );
        let schema = Schema {
            fields: vec![field("gone", DataType::F64)],
        };
        let err = open(&p, Some(&schema), 10).err().unwrap();
        assert!(matches!(&err, ReadError::MissingColumn { column, .. } if column == "gone"));
    }

    #[test]
    fn u64_beyond_s64_is_refused_at_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.parquet");
        let rb = record_batch(vec![(
            "u",
            Arc::new(UInt64Array::from(vec![
                Some(1),
                None,
                Some(u64::MAX),
                Some(2),
            ])) as ArrayRef,
        )])
        .unwrap();
        write_parquet(&p, &[rb], 2);
        let mut src = open(&p, None, 2).unwrap();
        let first = src.next_batch().unwrap().unwrap();
        assert_eq!(
            first.batch.column("u").unwrap().value(0),
            crate::Value::S64(1)
        );
        let err = src.next_batch().unwrap_err().to_string();
        assert!(
            err.ends_with(
                "big.parquet: row 3: column `u`: `18446744073709551615` is out of range for s64"
            ),
            "{err}"
        );
    }

    #[test]
    fn unsupported_types_are_refused_naming_column_and_type() {
        let dir = tempfile::tempdir().unwrap();
        let mut dec = Decimal128Builder::new()
            .with_precision_and_scale(10, 2)
            .unwrap();
        dec.append_value(12345);
        let mut list = ListBuilder::new(arrow_array::builder::Int64Builder::new());
        list.values().append_value(1);
        list.append(true);
        for (name, array, shown) in [
            (
                "price",
                Arc::new(dec.finish()) as ArrayRef,
                "Decimal128(10, 2)",
            ),
            ("tags", Arc::new(list.finish()), "List("),
        ] {
            let p = dir.path().join(format!("{name}.parquet"));
            let rb = record_batch(vec![
                ("ok", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef),
                (name, array),
            ])
            .unwrap();
            write_parquet(&p, &[rb], 10);
            let err = open(&p, None, 10).err().unwrap().to_string();
            let want = format!("{name}.parquet: column `{name}`: Arrow type {shown}");
            assert!(err.contains(&want), "{err}");
            assert!(err.contains("is not supported"), "{err}");
        }
    }

    pub(super) fn write_for_fuzz(p: &Path) {
        write_parquet(p, &[every_type()], 7);
    }

    #[test]
    fn damaged_files_give_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.parquet");
        write_parquet(&good, &[every_type()], 7);
        let bytes = std::fs::read(&good).unwrap();

        // Cut short: the footer is gone.
        let p = dir.path().join("cut.parquet");
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let err = open(&p, None, 10).err().unwrap();
        assert!(matches!(err, ReadError::Parquet { .. }), "{err:?}");
        let err = err.to_string();
        assert!(
            err.contains("cut.parquet: not a readable Parquet file"),
            "{err}"
        );

        // Not Parquet at all.
        let p = dir.path().join("text.parquet");
        std::fs::write(&p, b"x,y\n1,2\n").unwrap();
        let err = open(&p, None, 10).err().unwrap().to_string();
        assert!(
            err.contains("text.parquet: not a readable Parquet file"),
            "{err}"
        );

        // Footer intact, pages garbled: the error comes while reading rows.
        let p = dir.path().join("garbled.parquet");
        let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&good).unwrap()).unwrap();
        let (start, len) = meta.metadata().row_group(0).column(0).byte_range();
        let mut garbled = bytes.clone();
        for b in &mut garbled[start as usize..(start + len) as usize] {
            *b = !*b;
        }
        std::fs::write(&p, &garbled).unwrap();
        let err = read_all(&p, None).unwrap_err();
        assert!(matches!(err, ReadError::Parquet { .. }), "{err:?}");
        let err = err.to_string();
        assert!(
            err.contains("garbled.parquet: cannot decode the rows after row 0"),
            "{err}"
        );
    }

    /// A sink that is not a file (as stdout or the CLI's hashing writer).
    struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writer_round_trips_every_keel_type() {
        let dir = tempfile::tempdir().unwrap();
        let batch = Batch::from_columns(vec![
            Column::from_opt_f64("x", &[Some(1.25), None, Some(-0.0), Some(f64::INFINITY)]),
            Column::new("f", ColumnData::F32(vec![0.1, 2.0, 3.5, -1.0])),
            Column::with_validity(
                "n",
                ColumnData::S64(vec![i64::MIN, 0, i64::MAX, 0]),
                vec![true, true, true, false],
            ),
            Column::with_validity(
                "b",
                ColumnData::Bool(vec![true, false, false, true]),
                vec![true, false, true, true],
            ),
            Column::from_opt_str("s", &[Some("a,b"), Some(""), None, Some("ünïcode")]),
        ])
        .unwrap();
        let p = dir.path().join("out.parquet");
        let mut w = BatchWriter::create(&p).unwrap();
        w.write(&batch.slice(0, 3)).unwrap();
        w.write(&batch.slice(3, 4)).unwrap();
        w.finish().unwrap();
        assert_eq!(read_all(&p, None).unwrap(), batch);

        // The same bytes through a sink that cannot seek.
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut w = BatchWriter::new(Box::new(Shared(buf.clone())), Format::Parquet, &p);
        w.write(&batch.slice(0, 3)).unwrap();
        w.write(&batch.slice(3, 4)).unwrap();
        w.finish().unwrap();
        assert_eq!(*buf.lock().unwrap(), std::fs::read(&p).unwrap());

        // A changed header is refused, as for CSV.
        let mut w = BatchWriter::create(&dir.path().join("changed.parquet")).unwrap();
        w.write(&batch).unwrap();
        let err = w.write(&batch.slice(0, 1).filter(&[true])).map(|_| ());
        assert!(err.is_ok());
        let mut other = batch.clone();
        other.remove("s");
        assert!(w.write(&other).is_err());

        // No batch at all: still a valid file, with no columns.
        let p = dir.path().join("empty.parquet");
        BatchWriter::create(&p).unwrap().finish().unwrap();
        let empty = read_all(&p, None).unwrap();
        assert_eq!((empty.rows(), empty.columns().len()), (0, 0));
    }

    #[test]
    fn parquet_is_named_by_its_extension() {
        for name in ["a.parquet", "b.PQ", "c.Parquet"] {
            assert_eq!(Format::from_path(Path::new(name)).unwrap(), Format::Parquet);
        }
        let err = Format::from_path(Path::new("d.arrow"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(".parquet or .pq"), "{err}");
    }

    #[test]
    fn an_empty_file_keeps_its_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("none.parquet");
        let rb = record_batch(vec![
            (
                "x",
                Arc::new(Float64Array::from(Vec::<f64>::new())) as ArrayRef,
            ),
            ("s", Arc::new(StringArray::from(Vec::<&str>::new()))),
        ])
        .unwrap();
        write_parquet(&p, &[rb], 10);
        let mut src = open(&p, None, 10).unwrap();
        assert!(src.next_batch().unwrap().is_none());
        assert_eq!(src.bytes_read(), std::fs::metadata(&p).unwrap().len());
        let b = read_all(&p, None).unwrap();
        assert_eq!(b.rows(), 0);
        assert_eq!(
            Schema::of(&b),
            Schema {
                fields: vec![field("x", DataType::F64), field("s", DataType::String)]
            }
        );
    }
}
#[cfg(test)]
mod scratch_fuzz {
    #[test]
    fn scratch_fuzz() {
        use crate::io::read_all;
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.parquet");
        super::tests::write_for_fuzz(&good);
        let bytes = std::fs::read(&good).unwrap();
        let mut panics = 0;
        let mut errs = std::collections::BTreeSet::new();
        let mut seed = 12345u64;
        for trial in 0..3000 {
            let mut g = bytes.clone();
            for _ in 0..(1 + trial % 4) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let i = (seed >> 33) as usize % g.len();
                g[i] = (seed >> 13) as u8;
            }
            let p = dir.path().join("f.parquet");
            std::fs::write(&p, &g).unwrap();
            let r = std::panic::catch_unwind(|| read_all(&p, None).map(|_| ()));
            match r {
                Err(_) => panics += 1,
                Ok(Err(e)) => {
                    let s = e.to_string();
                    errs.insert(s.split(": ").skip(1).take(2).collect::<Vec<_>>().join(": "));
                }
                Ok(Ok(())) => {}
            }
        }
        for e in errs.iter().take(40) {
            println!("{e}");
        }
        println!("panics: {panics}");
    }
}
