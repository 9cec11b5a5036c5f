//! Keel's columnar batch: the one in-memory shape of data on both sides of the
//! sandbox. Guests (through `keel-sdk`) and the host (through `keel-runtime`)
//! convert the WIT `batch` record into these types by moving vectors, never by
//! copying values, so algorithms written against this crate run unchanged
//! natively and inside WebAssembly.
//!
//! The core has no dependencies so it stays small inside guests; readers and
//! writers for CSV and JSON Lines live behind the `io` feature.

extern crate alloc;

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

#[cfg(feature = "io")]
pub mod io;

/// The type of a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    F64,
    F32,
    S64,
    Bool,
    String,
}

impl DataType {
    /// The name used in pipeline specs, schemas and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::F64 => "f64",
            DataType::F32 => "f32",
            DataType::S64 => "s64",
            DataType::Bool => "bool",
            DataType::String => "string",
        }
    }

    /// Parses a type name as written in specs (`f64`, `float`, `int`, …).
    pub fn parse(s: &str) -> Option<DataType> {
        Some(match s {
            "f64" | "float" | "float64" | "double" => DataType::F64,
            "f32" | "float32" => DataType::F32,
            "s64" | "i64" | "int" | "int64" | "integer" => DataType::S64,
            "bool" | "boolean" => DataType::Bool,
            "string" | "str" | "category" | "text" => DataType::String,
            _ => return None,
        })
    }

    /// Whether values of this type can be read as numbers.
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::F64 | DataType::F32 | DataType::S64)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    F64(Vec<f64>),
    F32(Vec<f32>),
    S64(Vec<i64>),
    Bool(Vec<bool>),
    String(Vec<String>),
}

impl ColumnData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::F64(v) => v.len(),
            ColumnData::F32(v) => v.len(),
            ColumnData::S64(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
            ColumnData::String(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The type of the values.
    pub fn data_type(&self) -> DataType {
        match self {
            ColumnData::F64(_) => DataType::F64,
            ColumnData::F32(_) => DataType::F32,
            ColumnData::S64(_) => DataType::S64,
            ColumnData::Bool(_) => DataType::Bool,
            ColumnData::String(_) => DataType::String,
        }
    }

    /// An empty list of the given type with room for `capacity` values.
    pub fn with_capacity(data_type: DataType, capacity: usize) -> ColumnData {
        match data_type {
            DataType::F64 => ColumnData::F64(Vec::with_capacity(capacity)),
            DataType::F32 => ColumnData::F32(Vec::with_capacity(capacity)),
            DataType::S64 => ColumnData::S64(Vec::with_capacity(capacity)),
            DataType::Bool => ColumnData::Bool(Vec::with_capacity(capacity)),
            DataType::String => ColumnData::String(Vec::with_capacity(capacity)),
        }
    }

    fn select(&self, keep: &[bool]) -> ColumnData {
        fn pick<T: Clone>(v: &[T], keep: &[bool]) -> Vec<T> {
            v.iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| x.clone())
                .collect()
        }
        match self {
            ColumnData::F64(v) => ColumnData::F64(pick(v, keep)),
            ColumnData::F32(v) => ColumnData::F32(pick(v, keep)),
            ColumnData::S64(v) => ColumnData::S64(pick(v, keep)),
            ColumnData::Bool(v) => ColumnData::Bool(pick(v, keep)),
            ColumnData::String(v) => ColumnData::String(pick(v, keep)),
        }
    }

    fn slice(&self, start: usize, end: usize) -> ColumnData {
        match self {
            ColumnData::F64(v) => ColumnData::F64(v[start..end].to_vec()),
            ColumnData::F32(v) => ColumnData::F32(v[start..end].to_vec()),
            ColumnData::S64(v) => ColumnData::S64(v[start..end].to_vec()),
            ColumnData::Bool(v) => ColumnData::Bool(v[start..end].to_vec()),
            ColumnData::String(v) => ColumnData::String(v[start..end].to_vec()),
        }
    }

    fn append(&mut self, other: ColumnData) -> Result<(), DataError> {
        match (self, other) {
            (ColumnData::F64(a), ColumnData::F64(b)) => a.extend(b),
            (ColumnData::F32(a), ColumnData::F32(b)) => a.extend(b),
            (ColumnData::S64(a), ColumnData::S64(b)) => a.extend(b),
            (ColumnData::Bool(a), ColumnData::Bool(b)) => a.extend(b),
            (ColumnData::String(a), ColumnData::String(b)) => a.extend(b),
            (a, b) => {
                return Err(DataError::TypeMismatch {
                    column: String::new(),
                    expected: a.data_type(),
                    found: b.data_type(),
                });
            }
        }
        Ok(())
    }
}

/// One named column with an optional validity mask (`false` = null).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub data: ColumnData,
    pub validity: Option<Vec<bool>>,
}

impl Column {
    /// A column with every row valid.
    pub fn new(name: impl Into<String>, data: ColumnData) -> Column {
        Column {
            name: name.into(),
            data,
            validity: None,
        }
    }

    /// A column with a validity mask; an all-true mask is dropped.
    pub fn with_validity(name: impl Into<String>, data: ColumnData, validity: Vec<bool>) -> Column {
        let validity = if validity.iter().all(|v| *v) {
            None
        } else {
            Some(validity)
        };
        Column {
            name: name.into(),
            data,
            validity,
        }
    }

    /// A float column where `None` is null.
    pub fn from_opt_f64(name: impl Into<String>, values: &[Option<f64>]) -> Column {
        let data = values.iter().map(|v| v.unwrap_or(0.0)).collect();
        let validity = values.iter().map(Option::is_some).collect();
        Column::with_validity(name, ColumnData::F64(data), validity)
    }

    /// A string column where `None` is null.
    pub fn from_opt_str(name: impl Into<String>, values: &[Option<&str>]) -> Column {
        let data = values.iter().map(|v| v.unwrap_or("").to_owned()).collect();
        let validity = values.iter().map(Option::is_some).collect();
        Column::with_validity(name, ColumnData::String(data), validity)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The type of the values.
    pub fn data_type(&self) -> DataType {
        self.data.data_type()
    }

    /// Whether row `i` holds a value (is not null).
    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        self.validity
            .as_ref()
            .is_none_or(|v| v.get(i).copied().unwrap_or(false))
    }

    /// Number of null rows.
    pub fn null_count(&self) -> usize {
        self.validity
            .as_ref()
            .map_or(0, |v| v.iter().filter(|x| !**x).count())
    }

    /// The values as `f64`, converting `f32` and `s64`; `None` for bool and string columns.
    /// Borrowed (no copy) when the column already holds `f64`.
    pub fn as_f64(&self) -> Option<Cow<'_, [f64]>> {
        match &self.data {
            ColumnData::F64(v) => Some(Cow::Borrowed(v)),
            ColumnData::F32(v) => Some(Cow::Owned(v.iter().map(|x| f64::from(*x)).collect())),
            ColumnData::S64(v) => Some(Cow::Owned(v.iter().map(|x| *x as f64).collect())),
            ColumnData::Bool(_) | ColumnData::String(_) => None,
        }
    }

    /// The values as numbers, or an error naming the column.
    pub fn numeric(&self) -> Result<Cow<'_, [f64]>, DataError> {
        self.as_f64().ok_or_else(|| DataError::NotNumeric {
            column: self.name.clone(),
            found: self.data_type(),
        })
    }

    /// The values as strings, or an error naming the column.
    pub fn strings(&self) -> Result<&[String], DataError> {
        match &self.data {
            ColumnData::String(v) => Ok(v),
            other => Err(DataError::TypeMismatch {
                column: self.name.clone(),
                expected: DataType::String,
                found: other.data_type(),
            }),
        }
    }

    /// Value of row `i` for display and writing; `Value::Null` when null.
    pub fn value(&self, i: usize) -> Value<'_> {
        if !self.is_valid(i) {
            return Value::Null;
        }
        match &self.data {
            ColumnData::F64(v) => v.get(i).map_or(Value::Null, |x| Value::F64(*x)),
            ColumnData::F32(v) => v.get(i).map_or(Value::Null, |x| Value::F64(f64::from(*x))),
            ColumnData::S64(v) => v.get(i).map_or(Value::Null, |x| Value::S64(*x)),
            ColumnData::Bool(v) => v.get(i).map_or(Value::Null, |x| Value::Bool(*x)),
            ColumnData::String(v) => v.get(i).map_or(Value::Null, |x| Value::Str(x)),
        }
    }
}

/// One cell, borrowed from a column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    F64(f64),
    S64(i64),
    Bool(bool),
    Str(&'a str),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::F64(x) => write!(f, "{x}"),
            Value::S64(x) => write!(f, "{x}"),
            Value::Bool(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

/// A batch of rows stored as columns of equal length with unique names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    rows: usize,
    columns: Vec<Column>,
}

/// Why a batch or column could not be built or used.
#[derive(Debug, Clone, PartialEq)]
pub enum DataError {
    /// A column's length differs from the batch's row count.
    Ragged {
        column: String,
        expected: usize,
        found: usize,
    },
    /// A validity mask's length differs from its column's.
    RaggedValidity {
        column: String,
        expected: usize,
        found: usize,
    },
    /// Two columns share a name.
    DuplicateColumn { column: String },
    /// A column that is needed is absent.
    MissingColumn { column: String },
    /// A column has another type than required.
    TypeMismatch {
        column: String,
        expected: DataType,
        found: DataType,
    },
    /// A column was expected to be numeric.
    NotNumeric { column: String, found: DataType },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Ragged {
                column,
                expected,
                found,
            } => write!(
                f,
                "column `{column}` has {found} values but the batch has {expected} rows"
            ),
            DataError::RaggedValidity {
                column,
                expected,
                found,
            } => write!(
                f,
                "column `{column}` has a validity mask of {found} entries for {expected} values"
            ),
            DataError::DuplicateColumn { column } => write!(f, "column `{column}` appears twice"),
            DataError::MissingColumn { column } => write!(f, "column `{column}` is missing"),
            DataError::TypeMismatch {
                column,
                expected,
                found,
            } => write!(f, "column `{column}` is {found}, expected {expected}"),
            DataError::NotNumeric { column, found } => {
                write!(f, "column `{column}` is {found}, expected a numeric column")
            }
        }
    }
}

impl std::error::Error for DataError {}

impl Batch {
    /// Builds a batch, checking that every column (and mask) has `rows` entries
    /// and that names are unique.
    pub fn new(rows: usize, columns: Vec<Column>) -> Result<Batch, DataError> {
        for (i, c) in columns.iter().enumerate() {
            if c.len() != rows {
                return Err(DataError::Ragged {
                    column: c.name.clone(),
                    expected: rows,
                    found: c.len(),
                });
            }
            if let Some(v) = &c.validity
                && v.len() != rows
            {
                return Err(DataError::RaggedValidity {
                    column: c.name.clone(),
                    expected: rows,
                    found: v.len(),
                });
            }
            if columns[..i].iter().any(|o| o.name == c.name) {
                return Err(DataError::DuplicateColumn {
                    column: c.name.clone(),
                });
            }
        }
        Ok(Batch { rows, columns })
    }

    /// Builds a batch from columns, taking the row count from the first one.
    pub fn from_columns(columns: Vec<Column>) -> Result<Batch, DataError> {
        let rows = columns.first().map_or(0, Column::len);
        Batch::new(rows, columns)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Takes the columns out.
    pub fn into_columns(self) -> Vec<Column> {
        self.columns
    }

    /// The column called `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column called `name`, or an error naming it.
    pub fn require(&self, name: &str) -> Result<&Column, DataError> {
        self.column(name).ok_or_else(|| DataError::MissingColumn {
            column: name.to_string(),
        })
    }

    /// Position of the column called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Adds a column, or replaces the one with the same name in place.
    pub fn set(&mut self, column: Column) -> Result<(), DataError> {
        if column.len() != self.rows && !(self.columns.is_empty() && self.rows == 0) {
            return Err(DataError::Ragged {
                column: column.name,
                expected: self.rows,
                found: self.columns.first().map_or(0, Column::len),
            });
        }
        if self.columns.is_empty() {
            self.rows = column.len();
        }
        match self.position(&column.name) {
            Some(i) => self.columns[i] = column,
            None => self.columns.push(column),
        }
        Ok(())
    }

    /// Removes and returns the column called `name`.
    pub fn remove(&mut self, name: &str) -> Option<Column> {
        let i = self.position(name)?;
        Some(self.columns.remove(i))
    }

    /// The rows whose `keep` entry is `true`.
    pub fn filter(&self, keep: &[bool]) -> Batch {
        let rows = keep.iter().take(self.rows).filter(|k| **k).count();
        let columns = self
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                data: c.data.select(keep),
                validity: c.validity.as_ref().map(|v| {
                    v.iter()
                        .zip(keep)
                        .filter(|(_, k)| **k)
                        .map(|(x, _)| *x)
                        .collect()
                }),
            })
            .collect();
        Batch { rows, columns }
    }

    /// Rows `start..end` (clamped to the batch).
    pub fn slice(&self, start: usize, end: usize) -> Batch {
        let end = end.min(self.rows);
        let start = start.min(end);
        let columns = self
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                data: c.data.slice(start, end),
                validity: c.validity.as_ref().map(|v| v[start..end].to_vec()),
            })
            .collect();
        Batch {
            rows: end - start,
            columns,
        }
    }

    /// Appends the rows of `other`, which must have the same columns in the same order and types.
    pub fn append(&mut self, other: Batch) -> Result<(), DataError> {
        if self.columns.is_empty() && self.rows == 0 {
            *self = other;
            return Ok(());
        }
        if other.columns.len() != self.columns.len() {
            let missing = self
                .columns
                .iter()
                .find(|c| other.column(&c.name).is_none())
                .map_or_else(|| "?".to_string(), |c| c.name.clone());
            return Err(DataError::MissingColumn { column: missing });
        }
        let (self_rows, other_rows) = (self.rows, other.rows);
        for (mine, theirs) in self.columns.iter_mut().zip(other.columns) {
            if mine.name != theirs.name {
                return Err(DataError::MissingColumn {
                    column: mine.name.clone(),
                });
            }
            let name = mine.name.clone();
            mine.data.append(theirs.data).map_err(|e| match e {
                DataError::TypeMismatch {
                    expected, found, ..
                } => DataError::TypeMismatch {
                    column: name,
                    expected,
                    found,
                },
                other => other,
            })?;
            match (&mut mine.validity, theirs.validity) {
                (None, None) => {}
                (Some(a), Some(b)) => a.extend(b),
                (Some(a), None) => a.extend(core::iter::repeat_n(true, other_rows)),
                (mine_v @ None, Some(b)) => {
                    let mut v = Vec::with_capacity(self_rows + other_rows);
                    v.extend(core::iter::repeat_n(true, self_rows));
                    v.extend(b);
                    *mine_v = Some(v);
                }
            }
        }
        self.rows += other.rows;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Batch {
        Batch::from_columns(vec![
            Column::from_opt_f64("x", &[Some(1.0), None, Some(3.0)]),
            Column::new(
                "s",
                ColumnData::String(vec!["a".into(), "b".into(), "c".into()]),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn rejects_ragged_and_duplicate_columns() {
        let err = Batch::new(2, vec![Column::new("x", ColumnData::F64(vec![1.0]))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column `x` has 1 values but the batch has 2 rows"
        );
        let err = Batch::from_columns(vec![
            Column::new("x", ColumnData::F64(vec![1.0])),
            Column::new("x", ColumnData::S64(vec![1])),
        ])
        .unwrap_err();
        assert!(matches!(err, DataError::DuplicateColumn { .. }));
    }

    #[test]
    fn filter_slice_append_keep_validity() {
        let b = sample();
        let f = b.filter(&[true, true, false]);
        assert_eq!(f.rows(), 2);
        assert!(!f.column("x").unwrap().is_valid(1));
        let s = b.slice(1, 10);
        assert_eq!(s.rows(), 2);
        assert_eq!(s.column("s").unwrap().value(1), Value::Str("c"));
        let mut a = b.slice(0, 1);
        a.append(b.slice(1, 3)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn numeric_view_converts_and_names_column_on_error() {
        let b = Batch::from_columns(vec![Column::new("n", ColumnData::S64(vec![1, 2]))]).unwrap();
        assert_eq!(&*b.require("n").unwrap().numeric().unwrap(), &[1.0, 2.0]);
        let err = sample().require("s").unwrap().numeric().unwrap_err();
        assert_eq!(
            err.to_string(),
            "column `s` is string, expected a numeric column"
        );
        assert_eq!(
            sample().require("nope").unwrap_err().to_string(),
            "column `nope` is missing"
        );
    }
}
