//! The evaluation rows of coalitions, built column by column from the
//! explained row and the background rows, for columns of any type: a cell
//! is copied with its validity, so nulls in the background are values like
//! any other.

use super::rng::Rng;
use crate::{AlgoError, Result};
use keel_data::{Batch, Column, ColumnData, DataError};

/// For each coalition × background row (coalition-major), a copy of row
/// `row` of `rows` whose feature columns outside the coalition come from
/// the background row. `features[j]` is the column mask index `j` refers
/// to; columns that are not features keep the explained row's value. The
/// background must have every feature column, of the same type.
pub fn coalition_batch(
    rows: &Batch,
    row: usize,
    background: &Batch,
    features: &[String],
    masks: &[Vec<bool>],
) -> Result<Batch> {
    if row >= rows.rows() {
        return Err(AlgoError::Input {
            column: String::new(),
            row: Some(row),
            message: format!("there are only {} rows", rows.rows()),
        });
    }
    let b = background.rows();
    let total = masks.len() * b;
    let mut columns = Vec::with_capacity(rows.columns().len());
    for col in rows.columns() {
        let column = match features.iter().position(|f| *f == col.name) {
            Some(j) => {
                let bg = background
                    .column(&col.name)
                    .ok_or_else(|| AlgoError::Reference {
                        column: Some(col.name.clone()),
                        message: format!("the background has no column `{}`", col.name),
                    })?;
                let keep: Vec<bool> = masks
                    .iter()
                    .map(|m| m.get(j).copied().unwrap_or(false))
                    .collect();
                mix(col, row, bg, &keep)?
            }
            None => repeat(col, row, total),
        };
        columns.push(column);
    }
    for f in features {
        if rows.column(f).is_none() {
            return Err(DataError::MissingColumn { column: f.clone() }.into());
        }
    }
    Ok(Batch::new(total, columns)?)
}

/// `n` rows of `batch` drawn without replacement by a generator seeded
/// with `seed`, kept in their order; the whole batch when it has no more
/// than `n` rows. The default background of an explanation: a fixed-seed
/// sample of the pipeline's reference.
pub fn sample_rows(batch: &Batch, n: usize, seed: u64) -> Batch {
    let rows = batch.rows();
    if rows <= n {
        return batch.clone();
    }
    let mut rng = Rng(seed);
    let mut order: Vec<usize> = (0..rows).collect();
    let mut keep = vec![false; rows];
    for i in 0..n {
        let j = i + rng.below(rows - i);
        order.swap(i, j);
        keep[order[i]] = true;
    }
    batch.filter(&keep)
}

/// `keep[c]` ? the row's value × background rows : the background column, per coalition.
fn mix(col: &Column, row: usize, bg: &Column, keep: &[bool]) -> Result<Column> {
    fn build<T: Clone>(x: &T, bg: &[T], keep: &[bool]) -> Vec<T> {
        let mut out = Vec::with_capacity(keep.len() * bg.len());
        for k in keep {
            if *k {
                out.extend(std::iter::repeat_n(x.clone(), bg.len()));
            } else {
                out.extend_from_slice(bg);
            }
        }
        out
    }
    let data = match (&col.data, &bg.data) {
        (ColumnData::F64(r), ColumnData::F64(g)) => ColumnData::F64(build(&r[row], g, keep)),
        (ColumnData::F32(r), ColumnData::F32(g)) => ColumnData::F32(build(&r[row], g, keep)),
        (ColumnData::S64(r), ColumnData::S64(g)) => ColumnData::S64(build(&r[row], g, keep)),
        (ColumnData::Bool(r), ColumnData::Bool(g)) => ColumnData::Bool(build(&r[row], g, keep)),
        (ColumnData::String(r), ColumnData::String(g)) => {
            ColumnData::String(build(&r[row], g, keep))
        }
        (r, g) => {
            return Err(AlgoError::Reference {
                column: Some(col.name.clone()),
                message: format!(
                    "column `{}` is {} in the background but {} in the rows explained",
                    col.name,
                    g.data_type(),
                    r.data_type()
                ),
            });
        }
    };
    let validity = if col.validity.is_none() && bg.validity.is_none() {
        None
    } else {
        let all = vec![true; bg.len()];
        let g = bg.validity.as_deref().unwrap_or(&all);
        Some(build(&col.is_valid(row), g, keep))
    };
    Ok(Column {
        name: col.name.clone(),
        data,
        validity,
    })
}

/// The row's value, `n` times.
fn repeat(col: &Column, row: usize, n: usize) -> Column {
    fn rep<T: Clone>(v: &[T], row: usize, n: usize) -> Vec<T> {
        vec![v[row].clone(); n]
    }
    let data = match &col.data {
        ColumnData::F64(v) => ColumnData::F64(rep(v, row, n)),
        ColumnData::F32(v) => ColumnData::F32(rep(v, row, n)),
        ColumnData::S64(v) => ColumnData::S64(rep(v, row, n)),
        ColumnData::Bool(v) => ColumnData::Bool(rep(v, row, n)),
        ColumnData::String(v) => ColumnData::String(rep(v, row, n)),
    };
    Column {
        name: col.name.clone(),
        data,
        validity: col.validity.as_ref().map(|_| vec![col.is_valid(row); n]),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use keel_data::Value;

    #[test]
    fn samples_are_seeded_distinct_and_in_order() {
        let batch = Batch::from_columns(vec![Column::new("i", ColumnData::S64((0..50).collect()))])
            .unwrap();
        let a = sample_rows(&batch, 10, 0);
        assert_eq!(a, sample_rows(&batch, 10, 0));
        assert_ne!(a, sample_rows(&batch, 10, 1));
        let ColumnData::S64(v) = &a.columns()[0].data else {
            panic!()
        };
        assert_eq!(v.len(), 10);
        assert!(v.windows(2).all(|w| w[0] < w[1]), "{v:?}");
        assert_eq!(sample_rows(&batch, 50, 3), batch);
    }

    #[test]
    fn cells_come_from_the_row_or_the_background_with_their_nulls() {
        let rows = Batch::from_columns(vec![
            Column::from_opt_str("island", &[Some("Dream")]),
            Column::from_opt_f64("mass", &[Some(4000.0)]),
            Column::new("flag", ColumnData::Bool(vec![true])),
        ])
        .unwrap();
        let bg = Batch::from_columns(vec![
            Column::from_opt_str("island", &[Some("Biscoe"), None]),
            Column::from_opt_f64("mass", &[Some(3000.0), Some(3500.0)]),
        ])
        .unwrap();
        let features = ["island".to_string(), "mass".to_string()];
        let masks = [vec![false, true], vec![true, false]];
        let b = coalition_batch(&rows, 0, &bg, &features, &masks).unwrap();
        assert_eq!(b.rows(), 4);
        let island = b.column("island").unwrap();
        assert_eq!(island.value(0), Value::Str("Biscoe"));
        assert_eq!(island.value(1), Value::Null);
        assert_eq!(island.value(2), Value::Str("Dream"));
        let mass = b.column("mass").unwrap();
        assert_eq!(mass.value(1), Value::F64(4000.0));
        assert_eq!(mass.value(3), Value::F64(3500.0));
        assert_eq!(b.column("flag").unwrap().value(3), Value::Bool(true));
        // A background of another type is an error naming the column.
        let bad = Batch::from_columns(vec![Column::from_opt_f64("island", &[Some(1.0)])]).unwrap();
        let e = coalition_batch(&rows, 0, &bad, &features[..1], &masks).unwrap_err();
        assert!(e.to_string().contains("`island`"), "{e}");
    }
}
