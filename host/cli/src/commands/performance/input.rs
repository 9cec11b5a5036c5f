//! `keel performance`'s input: the files read whole (keeping each row's line
//! for errors), labels left-joined onto the predictions by id, and cells
//! compared by value whatever their column type (`1`, `1.0` and `"1"` are
//! the same label), so that ids and labels join across CSV, JSON Lines and
//! Parquet files that typed them differently.

use super::Error;
use keel_data::io::ReadError;
use keel_data::{Batch, Column, ColumnData};
use rustc_hash::FxHashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A whole file and the line (Parquet: the row) each of its rows came from.
pub struct Table {
    pub path: PathBuf,
    pub batch: Batch,
    lines: Vec<u64>,
}

impl Table {
    /// Reads `path` whole; its column types are inferred from every row.
    pub fn read(path: &Path) -> Result<Table, ReadError> {
        // One batch of "all rows" makes inference see the whole file.
        let mut source = keel_data::io::open(path, None, usize::MAX)?;
        let mut batch: Option<Batch> = None;
        let mut lines = Vec::new();
        while let Some(b) = source.next_batch()? {
            lines.extend_from_slice(&b.lines);
            match &mut batch {
                None => batch = Some(b.batch),
                Some(all) => all.append(b.batch).map_err(|e| ReadError::Syntax {
                    file: path.to_path_buf(),
                    line: b.lines.first().copied().unwrap_or(0),
                    message: e.to_string(),
                })?,
            }
        }
        let batch = match batch {
            Some(b) => b,
            None => keel_data::io::read_all(path, None)?,
        };
        Ok(Table {
            path: path.to_path_buf(),
            batch,
            lines,
        })
    }

    /// A batch that came from no file (the store's joined predictions), named `path`.
    pub fn from_batch(path: PathBuf, batch: Batch) -> Table {
        Table {
            path,
            batch,
            lines: Vec::new(),
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.batch.rows()
    }

    /// The column `name` that `flag` named, or an error naming the file.
    pub fn column(&self, name: &str, flag: &str) -> Result<&Column, Error> {
        self.batch.column(name).ok_or_else(|| {
            let names: Vec<&str> = self
                .batch
                .columns()
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            Error::Data(anyhow::anyhow!(
                "{}: no column `{name}` ({flag}); its columns are {}",
                self.path.display(),
                names.join(", ")
            ))
        })
    }

    /// `file:line` of row `row`, as errors name it.
    pub fn at(&self, row: usize) -> String {
        match self.lines.get(row) {
            Some(line) => format!("{}:{line}", self.path.display()),
            None => format!("{}: row {}", self.path.display(), row + 1),
        }
    }

    /// An error about row `row` of `column`.
    pub fn bad(&self, row: usize, column: &str, message: impl fmt::Display) -> Error {
        Error::Data(anyhow::anyhow!(
            "{}: column `{column}`: {message}",
            self.at(row)
        ))
    }
}

/// A cell compared by value: integral numbers are integers whatever their
/// column type, so the label `1.0` of a float column is the label `1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key<'a> {
    Bool(bool),
    Int(i64),
    /// A non-integral number, by its bits.
    Num(u64),
    Str(&'a str),
}

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Bool(b) => write!(f, "{b}"),
            Key::Int(i) => write!(f, "{i}"),
            Key::Num(bits) => write!(f, "{}", f64::from_bits(*bits)),
            Key::Str(s) => f.write_str(s),
        }
    }
}

impl Key<'_> {
    /// Whether this is the value `text` (as `--positive-label` spells it).
    pub fn is(&self, text: &str) -> bool {
        match self {
            Key::Bool(b) => text.parse::<bool>().ok() == Some(*b),
            Key::Int(i) => text.parse::<i64>().ok() == Some(*i),
            Key::Num(bits) => text.parse::<f64>().ok() == Some(f64::from_bits(*bits)),
            Key::Str(s) => *s == text,
        }
    }
}

fn number(x: f64) -> Key<'static> {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Key::Int(x as i64)
    } else {
        Key::Num(x.to_bits())
    }
}

/// The value of row `i` of `c`, `None` when null.
pub fn key(c: &Column, i: usize) -> Option<Key<'_>> {
    if !c.is_valid(i) {
        return None;
    }
    Some(match &c.data {
        ColumnData::Bool(v) => Key::Bool(v[i]),
        ColumnData::S64(v) => Key::Int(v[i]),
        ColumnData::F64(v) => number(v[i]),
        ColumnData::F32(v) => number(f64::from(v[i])),
        ColumnData::String(v) => Key::Str(&v[i]),
    })
}

/// One column's cells as seen from the predictions' rows: the column itself
/// (`rows` `None`), or a column of the labels file with, for each
/// prediction, the labels-file row joined to it.
#[derive(Clone, Copy)]
pub struct Cells<'a> {
    pub table: &'a Table,
    pub column: &'a Column,
    pub rows: Option<&'a [Option<u32>]>,
}

impl<'a> Cells<'a> {
    /// A column of `table`, row for row.
    pub fn of(table: &'a Table, column: &'a Column) -> Cells<'a> {
        Cells {
            table,
            column,
            rows: None,
        }
    }

    /// Number of prediction rows.
    pub fn len(&self) -> usize {
        self.rows.map_or(self.column.len(), <[_]>::len)
    }

    /// The row of `self.table` behind prediction row `i`, if any.
    pub fn source_row(&self, i: usize) -> Option<usize> {
        match self.rows {
            None => Some(i),
            Some(rows) => rows[i].map(|j| j as usize),
        }
    }

    /// The cell of prediction row `i`, `None` when it has none.
    pub fn get(&self, i: usize) -> Option<Key<'a>> {
        self.source_row(i).and_then(|j| key(self.column, j))
    }

    /// An error about the cell behind prediction row `i`.
    pub fn bad(&self, i: usize, message: impl fmt::Display) -> Error {
        let row = self.source_row(i).unwrap_or(i);
        self.table.bad(row, &self.column.name, message)
    }

    /// Distinct non-null values in order of first sight, each with the first
    /// prediction row holding it; stops after `cap` values.
    pub fn distinct(&self, cap: usize) -> Vec<(Key<'a>, usize)> {
        let mut seen: Vec<(Key<'a>, usize)> = Vec::new();
        for i in 0..self.len() {
            if let Some(k) = self.get(i)
                && !seen.iter().any(|(s, _)| *s == k)
            {
                seen.push((k, i));
                if seen.len() >= cap {
                    break;
                }
            }
        }
        seen
    }
}

/// The labels left-joined onto the predictions.
pub struct Join {
    /// For each prediction, the labels-file row whose label it gets.
    pub rows: Vec<Option<u32>>,
    /// Label ids that match no prediction.
    pub unmatched: usize,
    /// Labelled rows of the labels file whose id an earlier row had (the
    /// last one counts).
    pub duplicates: usize,
}

/// Joins `labels` (id `label_id`, label `label`) onto the predictions of
/// `analysis` by `id`. A labels row with an empty label is no label; an
/// empty id on either side is an error naming its line.
pub fn join(
    analysis: &Table,
    id: &Column,
    labels: &Table,
    label_id: &Column,
    label: &Column,
) -> Result<Join, Error> {
    let mut by_id: FxHashMap<Key, u32> = FxHashMap::default();
    by_id.reserve(labels.rows());
    let mut duplicates = 0;
    for j in 0..labels.rows() {
        if !label.is_valid(j) {
            continue;
        }
        let k = key(label_id, j).ok_or_else(|| labels.bad(j, &label_id.name, "empty id"))?;
        let j = u32::try_from(j).map_err(|_| {
            Error::Data(anyhow::anyhow!("{}: too many rows", labels.path.display()))
        })?;
        if by_id.insert(k, j).is_some() {
            duplicates += 1;
        }
    }
    // Lookups are random reads of a large map: split over the cores.
    let n = analysis.rows();
    let parts = std::thread::available_parallelism().map_or(1, |p| p.get().min(4));
    let by_id = &by_id;
    let found: Vec<Result<Vec<Option<u32>>, Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..parts)
            .map(|t| {
                s.spawn(move || {
                    (t * n / parts..(t + 1) * n / parts)
                        .map(|i| {
                            let k =
                                key(id, i).ok_or_else(|| analysis.bad(i, &id.name, "empty id"))?;
                            Ok(by_id.get(&k).copied())
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Other(anyhow::anyhow!("a join thread panicked")))
                })
            })
            .collect()
    });
    let mut rows = Vec::with_capacity(n);
    for part in found {
        rows.extend(part?);
    }
    let mut matched = vec![false; labels.rows()];
    for j in rows.iter().flatten() {
        matched[*j as usize] = true;
    }
    let unmatched = by_id.values().filter(|j| !matched[**j as usize]).count();
    Ok(Join {
        rows,
        unmatched,
        duplicates,
    })
}
