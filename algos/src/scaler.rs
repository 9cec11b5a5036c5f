//! Standard scaler: `z = (x - mean) / std` per column, with mean and
//! population standard deviation fitted from the reference or given in the config.

use crate::util::{check_names, into_f64, position, require_reference, zero_nulls};
use crate::{AlgoError, Result};
use keel_data::{Batch, ColumnData};
use serde::Deserialize;

/// Configuration of the standard scaler.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalerConfig {
    /// Columns to scale; each is replaced by an `f64` column of the same name.
    pub columns: Vec<String>,
    /// Means, one per column; fitted from the reference when absent.
    #[serde(default)]
    pub mean: Option<Vec<f64>>,
    /// Standard deviations, one per column, each > 0; fitted from the
    /// reference when absent.
    #[serde(default)]
    pub std: Option<Vec<f64>>,
}

/// A fitted standard scaler.
#[derive(Debug, Clone, PartialEq)]
pub struct StandardScaler {
    columns: Vec<String>,
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl StandardScaler {
    /// Builds the scaler, fitting whatever of `mean` / `std` the config omits
    /// from `reference`.
    pub fn new(config: ScalerConfig, reference: Option<&Batch>) -> Result<StandardScaler> {
        let ScalerConfig { columns, mean, std } = config;
        check_names("columns", &columns)?;
        check_given("mean", mean.as_deref(), &columns, "a finite number", |x| {
            x.is_finite()
        })?;
        check_given(
            "std",
            std.as_deref(),
            &columns,
            "a finite number > 0",
            |x| x.is_finite() && x > 0.0,
        )?;
        let (mean, std) = match (mean, std) {
            (Some(m), Some(s)) => (m, s),
            (m, s) => {
                let reference = require_reference(
                    reference,
                    "the scaler fits `mean` and `std` from the reference when the config omits them",
                )?;
                let fitted = columns
                    .iter()
                    .map(|c| fit_column(reference, c))
                    .collect::<Result<Vec<_>>>()?;
                (
                    m.unwrap_or_else(|| fitted.iter().map(|f| f.0).collect()),
                    s.unwrap_or_else(|| fitted.iter().map(|f| f.1).collect()),
                )
            }
        };
        Ok(StandardScaler { columns, mean, std })
    }

    /// Fits a scaler for `columns` from `reference`.
    pub fn fit(columns: Vec<String>, reference: &Batch) -> Result<StandardScaler> {
        StandardScaler::new(
            ScalerConfig {
                columns,
                mean: None,
                std: None,
            },
            Some(reference),
        )
    }

    /// The scaled columns.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The mean of each column.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The standard deviation each column is divided by.
    pub fn std(&self) -> &[f64] {
        &self.std
    }

    /// Replaces each configured column by its standardised `f64` values;
    /// nulls stay null and other columns pass through untouched.
    pub fn apply(&self, batch: Batch) -> Result<Batch> {
        let rows = batch.rows();
        let mut columns = batch.into_columns();
        for ((name, &mean), &std) in self.columns.iter().zip(&self.mean).zip(&self.std) {
            let at = position(&columns, name)?;
            let col = &mut columns[at];
            let data = core::mem::replace(&mut col.data, ColumnData::F64(Vec::new()));
            // Moving the vector and scaling in place keeps this one pass over
            // memory with no allocation for f64 columns (the benchmarked case).
            let mut values = into_f64(name, data)?;
            // Division rather than multiplication by 1/std, to round exactly
            // as scikit-learn does.
            for x in values.iter_mut() {
                *x = (*x - mean) / std;
            }
            zero_nulls(&mut values, col.validity.as_deref());
            col.data = ColumnData::F64(values);
        }
        Ok(Batch::new(rows, columns)?)
    }
}

/// Checks parameters given in the config: one per column, each `ok`.
fn check_given(
    key: &str,
    values: Option<&[f64]>,
    columns: &[String],
    wanted: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<()> {
    let Some(values) = values else { return Ok(()) };
    if values.len() != columns.len() {
        return Err(AlgoError::config(
            key,
            format!("has {} values for {} columns", values.len(), columns.len()),
        ));
    }
    for (x, column) in values.iter().zip(columns) {
        if !ok(*x) {
            return Err(AlgoError::config(
                key,
                format!("the value for `{column}` is {x}, not {wanted}"),
            ));
        }
    }
    Ok(())
}

/// Mean and population standard deviation (ddof = 0) of the valid, non-NaN
/// values of one reference column; a standard deviation of 0 becomes 1.
fn fit_column(reference: &Batch, name: &str) -> Result<(f64, f64)> {
    let col = reference.require(name).map_err(AlgoError::in_reference)?;
    let values = col.numeric().map_err(AlgoError::in_reference)?;
    let mut n = 0usize;
    let mut sum = 0.0;
    for (i, x) in values.iter().enumerate() {
        if !col.is_valid(i) || x.is_nan() {
            continue;
        }
        if x.is_infinite() {
            return Err(AlgoError::reference(
                name,
                format!("column `{name}` holds {x} at row {i}; cannot fit a mean"),
            ));
        }
        n += 1;
        sum += x;
    }
    if n == 0 {
        return Err(AlgoError::reference(
            name,
            format!("column `{name}` has no values to fit mean and std from"),
        ));
    }
    let mean = sum / n as f64;
    // Two passes: the textbook one-pass formula loses digits when the mean is
    // large compared with the spread.
    let mut squares = 0.0;
    for (i, x) in values.iter().enumerate() {
        if col.is_valid(i) && !x.is_nan() {
            squares += (x - mean) * (x - mean);
        }
    }
    let std = (squares / n as f64).sqrt();
    Ok((mean, if std == 0.0 { 1.0 } else { std }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use keel_data::Column;

    fn config(json: &str) -> ScalerConfig {
        serde_json::from_str(json).unwrap()
    }

    fn reference() -> Batch {
        Batch::from_columns(vec![
            // mean 5, population variance ((−3)²+(−1)²+1²+3²)/4 = 5
            Column::from_opt_f64("x", &[Some(2.0), Some(4.0), None, Some(6.0), Some(8.0)]),
            Column::new("k", ColumnData::S64(vec![3, 3, 3, 3, 3])),
            Column::new("s", ColumnData::String(vec!["a".into(); 5])),
        ])
        .unwrap()
    }

    #[test]
    fn fits_population_std_ignoring_nulls_and_maps_zero_std_to_one() {
        let s =
            StandardScaler::new(config(r#"{"columns":["x","k"]}"#), Some(&reference())).unwrap();
        assert_eq!(s.mean(), &[5.0, 3.0]);
        assert_eq!(s.std(), &[5f64.sqrt(), 1.0]);
    }

    #[test]
    fn applies_keeping_nulls_and_other_columns() {
        let s = StandardScaler::fit(vec!["x".into(), "k".into()], &reference()).unwrap();
        let out = s.apply(reference()).unwrap();
        let x = out.require("x").unwrap();
        let r5 = 5f64.sqrt();
        assert_eq!(
            x.data,
            ColumnData::F64(vec![-3.0 / r5, -1.0 / r5, 0.0, 1.0 / r5, 3.0 / r5])
        );
        assert_eq!(x.validity, Some(vec![true, true, false, true, true]));
        assert_eq!(
            out.require("k").unwrap().data,
            ColumnData::F64(vec![0.0; 5])
        );
        assert_eq!(out.columns()[2], reference().columns()[2]);
        assert_eq!(
            out.columns()
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["x", "k", "s"]
        );
    }

    #[test]
    fn given_parameters_need_no_reference() {
        let s = StandardScaler::new(
            config(r#"{"columns":["x"],"mean":[1.0],"std":[2.0]}"#),
            None,
        )
        .unwrap();
        let b =
            Batch::from_columns(vec![Column::new("x", ColumnData::F32(vec![5.0, -1.0]))]).unwrap();
        assert_eq!(
            s.apply(b).unwrap().require("x").unwrap().data,
            ColumnData::F64(vec![2.0, -1.0])
        );
        // Only std given: the mean is fitted.
        let s = StandardScaler::new(
            config(r#"{"columns":["x"],"std":[2.0]}"#),
            Some(&reference()),
        )
        .unwrap();
        assert_eq!((s.mean(), s.std()), (&[5.0][..], &[2.0][..]));
    }

    #[test]
    fn empty_batch_passes() {
        let s = StandardScaler::fit(vec!["x".into()], &reference()).unwrap();
        let empty = Batch::from_columns(vec![Column::new("x", ColumnData::F64(vec![]))]).unwrap();
        let out = s.apply(empty).unwrap();
        assert_eq!(
            (out.rows(), &out.columns()[0].data),
            (0, &ColumnData::F64(vec![]))
        );
    }

    #[test]
    fn errors_name_key_and_column() {
        let e = StandardScaler::new(config(r#"{"columns":["x"]}"#), None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Reference);
        let e = StandardScaler::new(
            config(r#"{"columns":["x","y"],"mean":[1.0],"std":[1,1]}"#),
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config `mean`: has 1 values for 2 columns"
        );
        let e = StandardScaler::new(config(r#"{"columns":["x"],"mean":[1.0],"std":[0]}"#), None)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config `std`: the value for `x` is 0, not a finite number > 0"
        );
        let e = StandardScaler::new(config(r#"{"columns":["x","x"]}"#), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config `columns`: names column `x` twice"
        );
        let e = StandardScaler::fit(vec!["s".into()], &reference()).unwrap_err();
        assert_eq!((e.kind(), e.column()), (ErrorKind::Reference, Some("s")));
        let all_null = Batch::from_columns(vec![Column::from_opt_f64("x", &[None])]).unwrap();
        let e = StandardScaler::fit(vec!["x".into()], &all_null).unwrap_err();
        assert_eq!(
            e.to_string(),
            "reference: column `x` has no values to fit mean and std from"
        );
        assert!(serde_json::from_str::<ScalerConfig>(r#"{"columns":["x"],"means":[1]}"#).is_err());

        let s = StandardScaler::fit(vec!["x".into()], &reference()).unwrap();
        let e =
            s.apply(Batch::from_columns(vec![Column::new("y", ColumnData::F64(vec![]))]).unwrap());
        assert_eq!(e.unwrap_err().to_string(), "column `x` is missing");
        let strings =
            Batch::from_columns(vec![Column::new("x", ColumnData::String(vec![]))]).unwrap();
        let e = s.apply(strings).unwrap_err();
        assert_eq!((e.kind(), e.column()), (ErrorKind::Input, Some("x")));
    }
}
