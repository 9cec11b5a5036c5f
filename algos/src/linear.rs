//! Linear models scored in pure Rust: linear regression (`intercept + Σ c·x`)
//! and logistic regression (its sigmoid, plus an optional thresholded label).

use crate::util::check_names;
use crate::{AlgoError, Result};
use keel_data::{Batch, Column, ColumnData};
use serde::Deserialize;

/// Configuration of linear regression.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearConfig {
    /// Numeric feature columns, in coefficient order.
    pub features: Vec<String>,
    /// One coefficient per feature.
    pub coefficients: Vec<f64>,
    /// The intercept.
    pub intercept: f64,
    /// Name of the appended `f64` prediction column.
    pub output: String,
}

/// Configuration of logistic regression.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogisticConfig {
    /// Numeric feature columns, in coefficient order.
    pub features: Vec<String>,
    /// One coefficient per feature.
    pub coefficients: Vec<f64>,
    /// The intercept.
    pub intercept: f64,
    /// Name of the appended `f64` probability column.
    pub output: String,
    /// Name of an appended `bool` column `probability >= threshold`, if wanted.
    #[serde(default)]
    pub label_output: Option<String>,
    /// Decision threshold in [0, 1] (default 0.5).
    #[serde(default = "half")]
    pub threshold: f64,
}

fn half() -> f64 {
    0.5
}

/// The shared part: `intercept + Σ coefficient · feature` per row.
#[derive(Debug, Clone, PartialEq)]
struct Linear {
    features: Vec<String>,
    coefficients: Vec<f64>,
    intercept: f64,
    output: String,
}

impl Linear {
    fn new(
        features: Vec<String>,
        coefficients: Vec<f64>,
        intercept: f64,
        output: String,
    ) -> Result<Linear> {
        check_names("features", &features)?;
        if coefficients.len() != features.len() {
            return Err(AlgoError::config(
                "coefficients",
                format!(
                    "{} coefficients for {} features; give one per feature",
                    coefficients.len(),
                    features.len()
                ),
            ));
        }
        if let Some(i) = coefficients.iter().position(|c| !c.is_finite()) {
            return Err(AlgoError::config(
                "coefficients",
                format!("coefficient {i} (of `{}`) is not finite", features[i]),
            ));
        }
        if !intercept.is_finite() {
            return Err(AlgoError::config("intercept", "is not finite"));
        }
        if output.is_empty() {
            return Err(AlgoError::config("output", "is an empty column name"));
        }
        Ok(Linear {
            features,
            coefficients,
            intercept,
            output,
        })
    }

    /// The linear predictor and its validity (null where any feature is null).
    fn predict(&self, batch: &Batch) -> Result<(Vec<f64>, Option<Vec<bool>>)> {
        let rows = batch.rows();
        if batch.column(&self.output).is_some() {
            return Err(existing(&self.output));
        }
        let mut z = vec![0.0; rows];
        let mut validity: Option<Vec<bool>> = None;
        // Column by column rather than row by row: each pass is a straight
        // multiply-add over two slices that the compiler vectorises.
        for (name, &c) in self.features.iter().zip(&self.coefficients) {
            let col = batch.require(name)?;
            let x = col.numeric()?;
            for (zi, xi) in z.iter_mut().zip(x.iter()) {
                *zi += c * xi;
            }
            if let Some(v) = &col.validity {
                let all = validity.get_or_insert_with(|| vec![true; rows]);
                for (a, b) in all.iter_mut().zip(v) {
                    *a &= *b;
                }
            }
        }
        // Added last, as scikit-learn's `X @ coef + intercept` does.
        for zi in z.iter_mut() {
            *zi += self.intercept;
        }
        Ok((z, validity))
    }
}

fn existing(name: &str) -> AlgoError {
    AlgoError::Input {
        column: name.into(),
        row: None,
        message: "already exists in the input; the model would overwrite it".into(),
    }
}

fn output_column(name: &str, mut values: Vec<f64>, validity: Option<Vec<bool>>) -> Column {
    crate::util::zero_nulls(&mut values, validity.as_deref());
    Column::with_validity(name, ColumnData::F64(values), validity.unwrap_or_default())
}

/// A linear regression model.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearRegression(Linear);

impl LinearRegression {
    /// Checks the config and builds the model.
    pub fn new(config: LinearConfig) -> Result<LinearRegression> {
        let LinearConfig {
            features,
            coefficients,
            intercept,
            output,
        } = config;
        Ok(LinearRegression(Linear::new(
            features,
            coefficients,
            intercept,
            output,
        )?))
    }

    /// Appends the prediction column; null where any feature is null.
    pub fn apply(&self, batch: Batch) -> Result<Batch> {
        let (z, validity) = self.0.predict(&batch)?;
        let mut batch = batch;
        batch.set(output_column(&self.0.output, z, validity))?;
        Ok(batch)
    }
}

/// A logistic regression model.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegression {
    linear: Linear,
    label_output: Option<String>,
    threshold: f64,
}

impl LogisticRegression {
    /// Checks the config and builds the model.
    pub fn new(config: LogisticConfig) -> Result<LogisticRegression> {
        let LogisticConfig {
            features,
            coefficients,
            intercept,
            output,
            label_output,
            threshold,
        } = config;
        let linear = Linear::new(features, coefficients, intercept, output)?;
        if !(0.0..=1.0).contains(&threshold) {
            return Err(AlgoError::config(
                "threshold",
                format!("{threshold} is not a probability in [0, 1]"),
            ));
        }
        match label_output.as_deref() {
            Some("") => return Err(AlgoError::config("label_output", "is an empty column name")),
            Some(l) if l == linear.output => {
                return Err(AlgoError::config(
                    "label_output",
                    format!("`{l}` is also the name of `output`"),
                ));
            }
            _ => {}
        }
        Ok(LogisticRegression {
            linear,
            label_output,
            threshold,
        })
    }

    /// Appends the probability column and, when configured, the label column;
    /// both are null where any feature is null.
    pub fn apply(&self, batch: Batch) -> Result<Batch> {
        if let Some(label) = &self.label_output
            && batch.column(label).is_some()
        {
            return Err(existing(label));
        }
        let (mut p, validity) = self.linear.predict(&batch)?;
        for x in p.iter_mut() {
            *x = sigmoid(*x);
        }
        let labels = self.label_output.as_ref().map(|name| {
            let values = match &validity {
                None => p.iter().map(|x| *x >= self.threshold).collect(),
                Some(v) => p
                    .iter()
                    .zip(v)
                    .map(|(x, ok)| *ok && *x >= self.threshold)
                    .collect(),
            };
            Column::with_validity(
                name.as_str(),
                ColumnData::Bool(values),
                validity.clone().unwrap_or_default(),
            )
        });
        let mut batch = batch;
        batch.set(output_column(&self.linear.output, p, validity))?;
        if let Some(labels) = labels {
            batch.set(labels)?;
        }
        Ok(batch)
    }
}

/// `1 / (1 + e^-z)`, computed so that neither branch overflows: for very
/// negative `z`, `e^-z` would be infinite, so it uses `e^z / (1 + e^z)`.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn batch() -> Batch {
        Batch::from_columns(vec![
            Column::from_opt_f64("a", &[Some(1.0), Some(2.0), None, Some(0.0)]),
            Column::new("b", ColumnData::S64(vec![1, -1, 3, 0])),
        ])
        .unwrap()
    }

    #[test]
    fn linear_regression_appends_predictions_with_nulls() {
        let cfg: LinearConfig = serde_json::from_str(
            r#"{"features":["a","b"],"coefficients":[2.0,0.5],"intercept":1.0,"output":"y"}"#,
        )
        .unwrap();
        let out = LinearRegression::new(cfg).unwrap().apply(batch()).unwrap();
        let y = out.columns().last().unwrap();
        assert_eq!(y.name, "y");
        assert_eq!(y.data, ColumnData::F64(vec![3.5, 4.5, 0.0, 1.0]));
        assert_eq!(y.validity, Some(vec![true, true, false, true]));
    }

    #[test]
    fn logistic_regression_probabilities_and_labels() {
        let cfg: LogisticConfig = serde_json::from_str(
            r#"{"features":["a","b"],"coefficients":[1.0,0.0],"intercept":-1.0,"output":"p","label_output":"l","threshold":0.5}"#,
        )
        .unwrap();
        let out = LogisticRegression::new(cfg)
            .unwrap()
            .apply(batch())
            .unwrap();
        let e = (-1f64).exp();
        // z = a - 1: 0, 1, null, -1
        assert_eq!(
            out.require("p").unwrap().data,
            ColumnData::F64(vec![0.5, 1.0 / (1.0 + e), 0.0, e / (1.0 + e)])
        );
        let l = out.require("l").unwrap();
        assert_eq!(l.data, ColumnData::Bool(vec![true, true, false, false]));
        assert_eq!(l.validity, Some(vec![true, true, false, true]));
        assert_eq!(out.columns().len(), 4);
    }

    #[test]
    fn sigmoid_is_stable_at_extremes() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert!(sigmoid(-700.0) > 0.0);
        assert!((sigmoid(2.0) + sigmoid(-2.0) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn empty_batch_and_no_label() {
        let cfg: LogisticConfig = serde_json::from_str(
            r#"{"features":["a"],"coefficients":[1],"intercept":0,"output":"p"}"#,
        )
        .unwrap();
        let out = LogisticRegression::new(cfg)
            .unwrap()
            .apply(batch().slice(0, 0))
            .unwrap();
        assert_eq!((out.rows(), out.columns().len()), (0, 3));
        assert_eq!(out.require("p").unwrap().data, ColumnData::F64(vec![]));
    }

    #[test]
    fn errors() {
        let cfg: LinearConfig = serde_json::from_str(
            r#"{"features":["a","b"],"coefficients":[2.0],"intercept":1.0,"output":"y"}"#,
        )
        .unwrap();
        let e = LinearRegression::new(cfg).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config `coefficients`: 1 coefficients for 2 features; give one per feature"
        );
        let cfg: LogisticConfig = serde_json::from_str(
            r#"{"features":["a"],"coefficients":[1],"intercept":0,"output":"p","threshold":1.5}"#,
        )
        .unwrap();
        assert_eq!(
            LogisticRegression::new(cfg).unwrap_err().kind(),
            ErrorKind::Config
        );
        let cfg: LogisticConfig = serde_json::from_str(
            r#"{"features":["a"],"coefficients":[1],"intercept":0,"output":"p","label_output":"p"}"#,
        )
        .unwrap();
        assert!(LogisticRegression::new(cfg).is_err());
        assert!(
            serde_json::from_str::<LinearConfig>(
                r#"{"features":["a"],"coefficients":[1],"output":"y"}"#
            )
            .is_err()
        );

        let cfg: LinearConfig = serde_json::from_str(
            r#"{"features":["c"],"coefficients":[1],"intercept":0,"output":"a"}"#,
        )
        .unwrap();
        let model = LinearRegression::new(cfg).unwrap();
        let e = model.apply(batch()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "column `a`: already exists in the input; the model would overwrite it"
        );
        let cfg: LinearConfig = serde_json::from_str(
            r#"{"features":["c"],"coefficients":[1],"intercept":0,"output":"y"}"#,
        )
        .unwrap();
        let e = LinearRegression::new(cfg)
            .unwrap()
            .apply(batch())
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (ErrorKind::Input, "column `c` is missing")
        );
    }
}
