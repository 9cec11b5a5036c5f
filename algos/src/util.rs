//! Small helpers shared by the algorithms: config checks, column lookup and
//! type conversion, and a text view of categorical columns.

use crate::{AlgoError, Result};
use keel_data::{Batch, Column, ColumnData, DataError, DataType};
use std::borrow::Cow;
use std::collections::BTreeSet;

/// The reference, or a reference error saying why it was needed.
pub(crate) fn require_reference<'a>(reference: Option<&'a Batch>, why: &str) -> Result<&'a Batch> {
    reference.ok_or_else(|| AlgoError::Reference {
        column: None,
        message: format!("none given, but {why}"),
    })
}

/// Checks a config list of column names: not empty, no empty name, no repeat.
pub(crate) fn check_names(key: &str, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Err(AlgoError::config(key, "is empty; name at least one column"));
    }
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(AlgoError::config(
                key,
                format!("entry {i} is an empty column name"),
            ));
        }
        if names[..i].contains(name) {
            return Err(AlgoError::config(
                key,
                format!("names column `{name}` twice"),
            ));
        }
    }
    Ok(())
}

/// Position of the column called `name`.
pub(crate) fn position(columns: &[Column], name: &str) -> core::result::Result<usize, DataError> {
    columns
        .iter()
        .position(|c| c.name == name)
        .ok_or_else(|| DataError::MissingColumn {
            column: name.into(),
        })
}

/// Takes a numeric column's values as `f64`, moving them when they already are.
pub(crate) fn into_f64(name: &str, data: ColumnData) -> core::result::Result<Vec<f64>, DataError> {
    match data {
        ColumnData::F64(v) => Ok(v),
        ColumnData::F32(v) => Ok(v.into_iter().map(f64::from).collect()),
        ColumnData::S64(v) => Ok(v.into_iter().map(|x| x as f64).collect()),
        other => Err(DataError::NotNumeric {
            column: name.into(),
            found: other.data_type(),
        }),
    }
}

/// Writes the placeholder 0 into null slots so that outputs do not depend on
/// whatever the producer left there.
pub(crate) fn zero_nulls(values: &mut [f64], validity: Option<&[bool]>) {
    if let Some(valid) = validity {
        for (x, ok) in values.iter_mut().zip(valid) {
            if !ok {
                *x = 0.0;
            }
        }
    }
}

/// A categorical column read as text: strings as they are, booleans as
/// `false`/`true`, integers in decimal. Floats are not categories.
pub(crate) enum Keys<'a> {
    Str(&'a [String]),
    Bool(&'a [bool]),
    Int(&'a [i64]),
}

impl<'a> Keys<'a> {
    pub(crate) fn new(column: &'a Column) -> core::result::Result<Keys<'a>, DataError> {
        match &column.data {
            ColumnData::String(v) => Ok(Keys::Str(v)),
            ColumnData::Bool(v) => Ok(Keys::Bool(v)),
            ColumnData::S64(v) => Ok(Keys::Int(v)),
            other => Err(DataError::TypeMismatch {
                column: column.name.clone(),
                expected: DataType::String,
                found: other.data_type(),
            }),
        }
    }

    /// The text of row `i` (only integers allocate).
    pub(crate) fn get(&self, i: usize) -> Cow<'a, str> {
        match self {
            Keys::Str(v) => v
                .get(i)
                .map_or(Cow::Borrowed(""), |s| Cow::Borrowed(s.as_str())),
            Keys::Bool(v) => Cow::Borrowed(bool_text(v.get(i).copied().unwrap_or(false))),
            Keys::Int(v) => Cow::Owned(v.get(i).copied().unwrap_or(0).to_string()),
        }
    }

    /// Distinct non-null values in the column type's natural order.
    pub(crate) fn distinct_sorted(&self, column: &Column) -> Vec<String> {
        let valid = |i: &usize| column.is_valid(*i);
        match self {
            Keys::Str(v) => {
                let set: BTreeSet<&str> =
                    (0..v.len()).filter(valid).map(|i| v[i].as_str()).collect();
                set.into_iter().map(str::to_owned).collect()
            }
            Keys::Bool(v) => {
                let set: BTreeSet<bool> = (0..v.len()).filter(valid).map(|i| v[i]).collect();
                set.into_iter().map(|b| bool_text(b).to_owned()).collect()
            }
            Keys::Int(v) => {
                let set: BTreeSet<i64> = (0..v.len()).filter(valid).map(|i| v[i]).collect();
                set.into_iter().map(|x| x.to_string()).collect()
            }
        }
    }
}

pub(crate) fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// "`a`, `b`, `c`", cut after ten values so messages stay one line.
pub(crate) fn quote_list(list: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = list
        .iter()
        .take(SHOWN)
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > SHOWN {
        text.push_str(&format!(" and {} more", list.len() - SHOWN));
    }
    text
}
