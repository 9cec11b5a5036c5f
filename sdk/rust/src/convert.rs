//! Moves data between the generated WIT records and `keel_data` types without
//! copying column values.

use crate::bindings::transform::keel::plugin::types as wit;
use crate::{Batch, Column, ColumnData, Error};

pub(crate) fn batch_from_wit(b: wit::Batch) -> Result<Batch, Error> {
    let columns = b.columns.into_iter().map(column_from_wit).collect();
    Ok(Batch::new(b.rows as usize, columns)?)
}

fn column_from_wit(c: wit::Column) -> Column {
    let data = match c.data {
        wit::ColumnData::F64(v) => ColumnData::F64(v),
        wit::ColumnData::F32(v) => ColumnData::F32(v),
        wit::ColumnData::S64(v) => ColumnData::S64(v),
        wit::ColumnData::Bool(v) => ColumnData::Bool(v),
        wit::ColumnData::String(v) => ColumnData::String(v),
    };
    Column {
        name: c.name,
        data,
        validity: c.validity,
    }
}

pub(crate) fn batch_to_wit(b: Batch) -> wit::Batch {
    let rows = u32::try_from(b.rows()).unwrap_or(u32::MAX);
    wit::Batch {
        rows,
        columns: b.into_columns().into_iter().map(column_to_wit).collect(),
    }
}

fn column_to_wit(c: Column) -> wit::Column {
    let data = match c.data {
        ColumnData::F64(v) => wit::ColumnData::F64(v),
        ColumnData::F32(v) => wit::ColumnData::F32(v),
        ColumnData::S64(v) => wit::ColumnData::S64(v),
        ColumnData::Bool(v) => wit::ColumnData::Bool(v),
        ColumnData::String(v) => wit::ColumnData::String(v),
    };
    wit::Column {
        name: c.name,
        data,
        validity: c.validity,
    }
}

pub(crate) fn error_to_wit(e: Error) -> wit::Error {
    wit::Error {
        code: e.code,
        message: e.message,
        column: e.column,
    }
}
