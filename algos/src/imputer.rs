//! Imputer: fills nulls (and NaN) with a value fitted per column from the
//! reference (mean, median, most frequent) or a constant from the config.

use crate::util::{check_names, into_f64, position, require_reference};
use crate::{AlgoError, Result};
use keel_data::{Batch, Column, ColumnData, DataError, DataType};
use serde::Deserialize;
use std::collections::BTreeMap;

/// How the fill value of a column is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Mean of the reference values (numeric columns).
    Mean,
    /// Median of the reference values; the mean of the two middle values for
    /// an even count (numeric columns).
    Median,
    /// The config's `fill_value` (any column type; no reference needed).
    Constant,
    /// The most frequent reference value, the smallest one on a tie (any column type).
    MostFrequent,
}

impl Strategy {
    fn as_str(self) -> &'static str {
        match self {
            Strategy::Mean => "mean",
            Strategy::Median => "median",
            Strategy::Constant => "constant",
            Strategy::MostFrequent => "most_frequent",
        }
    }
}

/// A fill value; its type must suit the column it fills.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Fill {
    /// Fills bool columns.
    Bool(bool),
    /// Fills numeric columns (f64, f32, s64); the output is f64.
    Number(f64),
    /// Fills string columns.
    Text(String),
}

impl core::fmt::Display for Fill {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Fill::Bool(b) => write!(f, "{b}"),
            Fill::Number(x) => write!(f, "{x}"),
            Fill::Text(s) => write!(f, "`{s}`"),
        }
    }
}

/// Configuration of the imputer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImputerConfig {
    /// How fill values are chosen.
    pub strategy: Strategy,
    /// Columns to fill.
    pub columns: Vec<String>,
    /// The fill value of strategy `constant` (and only of it).
    #[serde(default)]
    pub fill_value: Option<Fill>,
}

/// A fitted imputer.
#[derive(Debug, Clone, PartialEq)]
pub struct Imputer {
    fills: Vec<(String, Fill)>,
}

impl Imputer {
    /// Builds the imputer, fitting fill values from `reference` unless the
    /// strategy is `constant`.
    pub fn new(config: ImputerConfig, reference: Option<&Batch>) -> Result<Imputer> {
        let ImputerConfig {
            strategy,
            columns,
            fill_value,
        } = config;
        check_names("columns", &columns)?;
        let fills = match (strategy, fill_value) {
            (Strategy::Constant, Some(fill)) => {
                if matches!(fill, Fill::Number(x) if !x.is_finite()) {
                    return Err(AlgoError::config("fill_value", "must be a finite number"));
                }
                columns.into_iter().map(|c| (c, fill.clone())).collect()
            }
            (Strategy::Constant, None) => {
                return Err(AlgoError::config(
                    "fill_value",
                    "is required by strategy `constant`",
                ));
            }
            (other, Some(_)) => {
                return Err(AlgoError::config(
                    "fill_value",
                    format!(
                        "is only used by strategy `constant`, not `{}`",
                        other.as_str()
                    ),
                ));
            }
            (strategy, None) => {
                let why = format!(
                    "strategy `{}` fits fill values from the reference",
                    strategy.as_str()
                );
                let reference = require_reference(reference, &why)?;
                columns
                    .into_iter()
                    .map(|c| {
                        let fill = fit_column(strategy, reference, &c)?;
                        Ok((c, fill))
                    })
                    .collect::<Result<_>>()?
            }
        };
        Ok(Imputer { fills })
    }

    /// The fill value of each column.
    pub fn fills(&self) -> &[(String, Fill)] {
        &self.fills
    }

    /// Fills the nulls of each configured column (and NaN in numeric ones);
    /// numeric columns come out as `f64`, and none of the columns has nulls.
    pub fn apply(&self, batch: Batch) -> Result<Batch> {
        let rows = batch.rows();
        let mut columns = batch.into_columns();
        for (name, fill) in &self.fills {
            let at = position(&columns, name)?;
            let col = &mut columns[at];
            let data = core::mem::replace(&mut col.data, ColumnData::F64(Vec::new()));
            let validity = col.validity.take();
            let valid = |i: usize| {
                validity
                    .as_ref()
                    .is_none_or(|v| v.get(i).copied().unwrap_or(false))
            };
            col.data = match (fill, data) {
                (Fill::Number(f), data) if data.data_type().is_numeric() => {
                    let mut values = into_f64(name, data)?;
                    for (i, x) in values.iter_mut().enumerate() {
                        if x.is_nan() || !valid(i) {
                            *x = *f;
                        }
                    }
                    ColumnData::F64(values)
                }
                (Fill::Text(f), ColumnData::String(mut values)) => {
                    for (i, s) in values.iter_mut().enumerate() {
                        if !valid(i) {
                            s.clone_from(f);
                        }
                    }
                    ColumnData::String(values)
                }
                (Fill::Bool(f), ColumnData::Bool(mut values)) => {
                    for (i, b) in values.iter_mut().enumerate() {
                        if !valid(i) {
                            *b = *f;
                        }
                    }
                    ColumnData::Bool(values)
                }
                (fill, data) => {
                    return Err(AlgoError::Input {
                        column: name.clone(),
                        row: None,
                        message: format!(
                            "is {}, which the fill value {fill} cannot fill",
                            data.data_type()
                        ),
                    });
                }
            };
        }
        Ok(Batch::new(rows, columns)?)
    }
}

fn fit_column(strategy: Strategy, reference: &Batch, name: &str) -> Result<Fill> {
    let col = reference.require(name).map_err(AlgoError::in_reference)?;
    let fill = match (strategy, col.data_type()) {
        (Strategy::MostFrequent, DataType::String) => most_frequent_text(col)?.map(Fill::Text),
        (Strategy::MostFrequent, DataType::Bool) => most_frequent_bool(col)?.map(Fill::Bool),
        _ => {
            let mut values = numbers(col)?;
            match strategy {
                Strategy::Mean => mean(&values).map(Fill::Number),
                Strategy::Median => median(&mut values).map(Fill::Number),
                _ => most_frequent_number(&mut values).map(Fill::Number),
            }
        }
    };
    match fill {
        Some(Fill::Number(x)) if !x.is_finite() => Err(AlgoError::reference(
            name,
            format!("the {} of column `{name}` is {x}", strategy.as_str()),
        )),
        Some(fill) => Ok(fill),
        None => Err(AlgoError::reference(
            name,
            format!("column `{name}` has no values to fit a fill value from"),
        )),
    }
}

/// The valid, non-NaN values of a numeric reference column.
fn numbers(col: &Column) -> Result<Vec<f64>> {
    let values = col.numeric().map_err(AlgoError::in_reference)?;
    Ok(values
        .iter()
        .enumerate()
        .filter(|(i, x)| col.is_valid(*i) && !x.is_nan())
        .map(|(_, x)| *x)
        .collect())
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => values.get(n / 2).copied(),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn most_frequent_number(values: &mut [f64]) -> Option<f64> {
    values.sort_unstable_by(f64::total_cmp);
    // Runs of equal values in ascending order; `>` keeps the first (smallest) on a tie.
    let mut best: Option<(f64, usize)> = None;
    let mut i = 0;
    while let Some(&x) = values.get(i) {
        let run = values[i..].iter().take_while(|y| **y == x).count();
        if best.is_none_or(|(_, n)| run > n) {
            best = Some((x, run));
        }
        i += run;
    }
    best.map(|(x, _)| x)
}

fn most_frequent_text(col: &Column) -> Result<Option<String>> {
    let values = col.strings().map_err(AlgoError::in_reference)?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in values.iter().enumerate() {
        if col.is_valid(i) {
            *counts.entry(s).or_default() += 1;
        }
    }
    let mut best: Option<(&str, usize)> = None;
    for (s, n) in counts {
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((s, n));
        }
    }
    Ok(best.map(|(s, _)| s.to_owned()))
}

fn most_frequent_bool(col: &Column) -> Result<Option<bool>> {
    let ColumnData::Bool(values) = &col.data else {
        return Err(AlgoError::in_reference(DataError::TypeMismatch {
            column: col.name.clone(),
            expected: DataType::Bool,
            found: col.data_type(),
        }));
    };
    let (mut falses, mut trues) = (0usize, 0usize);
    for (i, b) in values.iter().enumerate() {
        if col.is_valid(i) {
            if *b {
                trues += 1;
            } else {
                falses += 1;
            }
        }
    }
    Ok(match (falses, trues) {
        (0, 0) => None,
        (f, t) => Some(t > f),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn cfg(json: &str) -> ImputerConfig {
        serde_json::from_str(json).unwrap()
    }

    fn reference() -> Batch {
        Batch::from_columns(vec![
            Column::from_opt_f64(
                "x",
                &[
                    Some(4.0),
                    None,
                    Some(1.0),
                    Some(f64::NAN),
                    Some(2.0),
                    Some(10.0),
                ],
            ),
            Column::with_validity(
                "n",
                ColumnData::S64(vec![3, 5, 0, 5, 3, 1]),
                vec![true, true, false, true, true, true],
            ),
            Column::from_opt_str(
                "s",
                &[Some("b"), Some("a"), None, Some("b"), Some("a"), Some("c")],
            ),
            Column::new(
                "b",
                ColumnData::Bool(vec![true, false, true, false, true, true]),
            ),
        ])
        .unwrap()
    }

    fn input() -> Batch {
        Batch::from_columns(vec![
            Column::from_opt_f64("x", &[None, Some(7.0), Some(f64::NAN)]),
            Column::with_validity("n", ColumnData::S64(vec![0, 2, 3]), vec![false, true, true]),
            Column::from_opt_str("s", &[None, Some("z"), None]),
            Column::with_validity(
                "b",
                ColumnData::Bool(vec![false, false, true]),
                vec![true, false, true],
            ),
        ])
        .unwrap()
    }

    fn fill_of(strategy: &str, column: &str) -> Fill {
        let json = format!(r#"{{"strategy":"{strategy}","columns":["{column}"]}}"#);
        let imp = Imputer::new(cfg(&json), Some(&reference())).unwrap();
        imp.fills()[0].1.clone()
    }

    #[test]
    fn fits_ignoring_nulls_and_nan() {
        // x: 4, 1, 2, 10 → mean 17/4, median (2+4)/2
        assert_eq!(fill_of("mean", "x"), Fill::Number(4.25));
        assert_eq!(fill_of("median", "x"), Fill::Number(3.0));
        // n: 3, 5, 5, 3, 1 → median 3; most frequent tie 3 vs 5 → 3
        assert_eq!(fill_of("median", "n"), Fill::Number(3.0));
        assert_eq!(fill_of("mean", "n"), Fill::Number(17.0 / 5.0));
        assert_eq!(fill_of("most_frequent", "n"), Fill::Number(3.0));
        // s: b, a, b, a, c → tie a/b → a
        assert_eq!(fill_of("most_frequent", "s"), Fill::Text("a".into()));
        assert_eq!(fill_of("most_frequent", "b"), Fill::Bool(true));
    }

    #[test]
    fn fills_every_type_and_leaves_no_nulls() {
        let imp = Imputer::new(
            cfg(r#"{"strategy":"most_frequent","columns":["x","n","s","b"]}"#),
            Some(&reference()),
        )
        .unwrap();
        let out = imp.apply(input()).unwrap();
        assert!(out.columns().iter().all(|c| c.validity.is_none()));
        // x's most frequent: all four values once → smallest, 1
        assert_eq!(
            out.require("x").unwrap().data,
            ColumnData::F64(vec![1.0, 7.0, 1.0])
        );
        assert_eq!(
            out.require("n").unwrap().data,
            ColumnData::F64(vec![3.0, 2.0, 3.0])
        );
        assert_eq!(
            out.require("s").unwrap().data,
            ColumnData::String(vec!["a".into(), "z".into(), "a".into()])
        );
        assert_eq!(
            out.require("b").unwrap().data,
            ColumnData::Bool(vec![false, true, true])
        );
    }

    #[test]
    fn constant_needs_no_reference() {
        let imp = Imputer::new(
            cfg(r#"{"strategy":"constant","columns":["s"],"fill_value":"?"}"#),
            None,
        )
        .unwrap();
        let out = imp.apply(input()).unwrap();
        assert_eq!(
            out.require("s").unwrap().data,
            ColumnData::String(vec!["?".into(), "z".into(), "?".into()])
        );
        let imp = Imputer::new(
            cfg(r#"{"strategy":"constant","columns":["x"],"fill_value":-1}"#),
            None,
        )
        .unwrap();
        assert_eq!(
            imp.apply(input()).unwrap().require("x").unwrap().data,
            ColumnData::F64(vec![-1.0, 7.0, -1.0])
        );
        let e = imp.apply(input().slice(0, 0)).unwrap();
        assert_eq!(e.rows(), 0);
    }

    #[test]
    fn errors() {
        let e = Imputer::new(cfg(r#"{"strategy":"constant","columns":["x"]}"#), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config `fill_value`: is required by strategy `constant`"
        );
        let e = Imputer::new(
            cfg(r#"{"strategy":"mean","columns":["x"],"fill_value":1}"#),
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config `fill_value`: is only used by strategy `constant`, not `mean`"
        );
        let e = Imputer::new(cfg(r#"{"strategy":"median","columns":["x"]}"#), None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Reference);
        let e = Imputer::new(
            cfg(r#"{"strategy":"median","columns":["s"]}"#),
            Some(&reference()),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "reference: column `s` is string, expected a numeric column"
        );
        let all_null =
            Batch::from_columns(vec![Column::from_opt_f64("x", &[None, Some(f64::NAN)])]).unwrap();
        let e = Imputer::new(
            cfg(r#"{"strategy":"mean","columns":["x"]}"#),
            Some(&all_null),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "reference: column `x` has no values to fit a fill value from"
        );
        assert!(
            serde_json::from_str::<ImputerConfig>(r#"{"strategy":"mode","columns":["x"]}"#)
                .is_err()
        );

        let imp = Imputer::new(
            cfg(r#"{"strategy":"constant","columns":["s"],"fill_value":0}"#),
            None,
        )
        .unwrap();
        let e = imp.apply(input()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "column `s`: is string, which the fill value 0 cannot fill"
        );
        assert_eq!((e.kind(), e.column()), (ErrorKind::Input, Some("s")));
    }
}
