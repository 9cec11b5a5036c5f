//! Moves data between `keel_data` batches and the generated WIT records,
//! without copying column values.

use crate::bindings::types as wit;
use keel_data::{Batch, Column, ColumnData, DataError};

pub(crate) fn batch_to_wit(b: Batch) -> wit::Batch {
    let rows = u32::try_from(b.rows()).unwrap_or(u32::MAX);
    let columns = b
        .into_columns()
        .into_iter()
        .map(|c| wit::Column {
            name: c.name,
            data: match c.data {
                ColumnData::F64(v) => wit::ColumnData::F64(v),
                ColumnData::F32(v) => wit::ColumnData::F32(v),
                ColumnData::S64(v) => wit::ColumnData::S64(v),
                ColumnData::Bool(v) => wit::ColumnData::Bool(v),
                ColumnData::String(v) => wit::ColumnData::String(v),
            },
            validity: c.validity,
        })
        .collect();
    wit::Batch { rows, columns }
}

/// Checks what a plugin returned: every column must have `rows` values.
pub(crate) fn batch_from_wit(b: wit::Batch) -> Result<Batch, DataError> {
    let columns = b
        .columns
        .into_iter()
        .map(|c| Column {
            name: c.name,
            data: match c.data {
                wit::ColumnData::F64(v) => ColumnData::F64(v),
                wit::ColumnData::F32(v) => ColumnData::F32(v),
                wit::ColumnData::S64(v) => ColumnData::S64(v),
                wit::ColumnData::Bool(v) => ColumnData::Bool(v),
                wit::ColumnData::String(v) => ColumnData::String(v),
            },
            validity: c.validity,
        })
        .collect();
    Batch::new(b.rows as usize, columns)
}
