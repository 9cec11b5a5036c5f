//! Categorical encoders: one-hot (one `f64` 0/1 column per category) and
//! ordinal (one `s64` code per category), with categories given in the
//! config or fitted from the reference.

use crate::util::{Keys, check_names, position, require_reference};
use crate::{AlgoError, Result};
use keel_data::{Batch, Column, ColumnData};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// The categories of one column and their positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Categories {
    column: String,
    values: Vec<String>,
    index: HashMap<String, usize>,
}

impl Categories {
    /// The column encoded.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// The categories, in code order.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    fn lookup(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }
}

/// Resolves the categories of every configured column: the config's lists
/// where given, the reference's sorted distinct values otherwise.
fn resolve(
    columns: &[String],
    mut given: BTreeMap<String, Vec<String>>,
    reference: Option<&Batch>,
    encoder: &str,
) -> Result<Vec<Categories>> {
    check_names("columns", columns)?;
    if let Some(extra) = given.keys().find(|k| !columns.contains(k)) {
        return Err(AlgoError::config(
            "categories",
            format!("lists column `{extra}`, which is not in `columns`"),
        ));
    }
    columns
        .iter()
        .map(|name| {
            let values = match given.remove(name) {
                Some(values) => {
                    check_categories(name, &values)?;
                    values
                }
                None => fit(name, reference, encoder)?,
            };
            let index = values
                .iter()
                .enumerate()
                .map(|(i, v)| (v.clone(), i))
                .collect();
            Ok(Categories {
                column: name.clone(),
                values,
                index,
            })
        })
        .collect()
}

fn check_categories(name: &str, values: &[String]) -> Result<()> {
    if values.is_empty() {
        return Err(AlgoError::config(
            "categories",
            format!("the list for `{name}` is empty"),
        ));
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(AlgoError::config(
                "categories",
                format!("the list for `{name}` holds `{v}` twice"),
            ));
        }
    }
    Ok(())
}

fn fit(name: &str, reference: Option<&Batch>, encoder: &str) -> Result<Vec<String>> {
    let why = format!(
        "the {encoder} fits the categories of `{name}` from the reference when the config does not list them"
    );
    let reference = require_reference(reference, &why)?;
    let col = reference.require(name).map_err(AlgoError::in_reference)?;
    let keys = Keys::new(col).map_err(AlgoError::in_reference)?;
    let values = keys.distinct_sorted(col);
    if values.is_empty() {
        return Err(AlgoError::reference(
            name,
            format!("column `{name}` has no values to fit categories from"),
        ));
    }
    Ok(values)
}

/// Configuration of the one-hot encoder.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneHotConfig {
    /// Categorical columns (string, bool or s64) to encode.
    pub columns: Vec<String>,
    /// Categories per column, in output order; columns not listed are fitted
    /// from the reference.
    #[serde(default)]
    pub categories: BTreeMap<String, Vec<String>>,
    /// Whether the encoded columns are removed from the output (default true).
    #[serde(default = "yes")]
    pub drop_original: bool,
    /// Separator between column name and category in output names (default `_`).
    #[serde(default = "underscore")]
    pub prefix_sep: String,
}

fn yes() -> bool {
    true
}

fn underscore() -> String {
    "_".into()
}

/// A fitted one-hot encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct OneHotEncoder {
    columns: Vec<Categories>,
    drop_original: bool,
    prefix_sep: String,
}

impl OneHotEncoder {
    /// Builds the encoder, fitting unlisted categories from `reference`.
    pub fn new(config: OneHotConfig, reference: Option<&Batch>) -> Result<OneHotEncoder> {
        let columns = resolve(
            &config.columns,
            config.categories,
            reference,
            "one-hot encoder",
        )?;
        Ok(OneHotEncoder {
            columns,
            drop_original: config.drop_original,
            prefix_sep: config.prefix_sep,
        })
    }

    /// The categories of each encoded column.
    pub fn categories(&self) -> &[Categories] {
        &self.columns
    }

    /// Names of the output columns, in output order.
    pub fn output_names(&self) -> Vec<String> {
        self.columns
            .iter()
            .flat_map(|c| {
                c.values
                    .iter()
                    .map(move |v| format!("{}{}{v}", c.column, self.prefix_sep))
            })
            .collect()
    }

    /// Appends one 0/1 `f64` column per category after the other columns
    /// (column by column, categories in order); a null or unseen value is all
    /// zeros. The originals are dropped unless `drop_original` is false.
    pub fn apply(&self, batch: Batch) -> Result<Batch> {
        let rows = batch.rows();
        let mut columns = batch.into_columns();
        let mut added = Vec::new();
        for cats in &self.columns {
            let col = &columns[position(&columns, &cats.column)?];
            let keys = Keys::new(col)?;
            let mut outputs = vec![vec![0.0; rows]; cats.values.len()];
            for i in 0..rows {
                if col.is_valid(i)
                    && let Some(k) = cats.lookup(&keys.get(i))
                    && let Some(out) = outputs.get_mut(k)
                {
                    out[i] = 1.0;
                }
            }
            for (value, data) in cats.values.iter().zip(outputs) {
                let name = format!("{}{}{value}", cats.column, self.prefix_sep);
                added.push(Column::new(name, ColumnData::F64(data)));
            }
        }
        if self.drop_original {
            columns.retain(|c| !self.columns.iter().any(|e| e.column == c.name));
        }
        columns.extend(added);
        // Batch::new rejects an output name that collides with an input column.
        Ok(Batch::new(rows, columns)?)
    }
}

/// Configuration of the ordinal encoder.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdinalConfig {
    /// Categorical columns (string, bool or s64) to encode.
    pub columns: Vec<String>,
    /// Categories per column; the code of a category is its position.
    /// Columns not listed are fitted from the reference.
    #[serde(default)]
    pub categories: BTreeMap<String, Vec<String>>,
    /// Code of a value that is not a known category (default -1); must not
    /// be the code of a category.
    #[serde(default = "minus_one")]
    pub unknown_value: i64,
}

fn minus_one() -> i64 {
    -1
}

/// A fitted ordinal encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdinalEncoder {
    columns: Vec<Categories>,
    unknown_value: i64,
}

impl OrdinalEncoder {
    /// Builds the encoder, fitting unlisted categories from `reference`.
    pub fn new(config: OrdinalConfig, reference: Option<&Batch>) -> Result<OrdinalEncoder> {
        let columns = resolve(
            &config.columns,
            config.categories,
            reference,
            "ordinal encoder",
        )?;
        let unknown = config.unknown_value;
        // A code that is also a category's would make the two indistinguishable.
        let clash = usize::try_from(unknown)
            .ok()
            .and_then(|code| columns.iter().find_map(|c| Some((c, c.values.get(code)?))));
        if let Some((c, category)) = clash {
            return Err(AlgoError::config(
                "unknown_value",
                format!(
                    "{unknown} is also the code of category `{category}` of `{}`",
                    c.column
                ),
            ));
        }
        Ok(OrdinalEncoder {
            columns,
            unknown_value: unknown,
        })
    }

    /// The categories of each encoded column.
    pub fn categories(&self) -> &[Categories] {
        &self.columns
    }

    /// Replaces each encoded column by its `s64` codes, in place; nulls stay
    /// null and unseen values get `unknown_value`.
    pub fn apply(&self, batch: Batch) -> Result<Batch> {
        let rows = batch.rows();
        let mut columns = batch.into_columns();
        for cats in &self.columns {
            let at = position(&columns, &cats.column)?;
            let col = &columns[at];
            let keys = Keys::new(col)?;
            let codes = (0..rows)
                .map(|i| match col.is_valid(i) {
                    false => 0,
                    true => cats
                        .lookup(&keys.get(i))
                        .and_then(|k| i64::try_from(k).ok())
                        .unwrap_or(self.unknown_value),
                })
                .collect();
            columns[at].data = ColumnData::S64(codes);
        }
        Ok(Batch::new(rows, columns)?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn batch() -> Batch {
        Batch::from_columns(vec![
            Column::from_opt_str(
                "island",
                &[
                    Some("Dream"),
                    Some("Biscoe"),
                    None,
                    Some("Dream"),
                    Some("Atlantis"),
                ],
            ),
            Column::new("x", ColumnData::F64(vec![1.0, 2.0, 3.0, 4.0, 5.0])),
        ])
        .unwrap()
    }

    fn reference() -> Batch {
        Batch::from_columns(vec![
            Column::from_opt_str(
                "island",
                &[
                    Some("Torgersen"),
                    Some("Biscoe"),
                    None,
                    Some("Dream"),
                    Some("Biscoe"),
                ],
            ),
            Column::new("n", ColumnData::S64(vec![10, 9, 10, 2, 9])),
            Column::new("b", ColumnData::Bool(vec![true, true, false, true, true])),
        ])
        .unwrap()
    }

    fn names(b: &Batch) -> Vec<&str> {
        b.columns().iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn one_hot_fits_sorted_categories_and_appends_columns() {
        let cfg: OneHotConfig = serde_json::from_str(r#"{"columns":["island"]}"#).unwrap();
        let enc = OneHotEncoder::new(cfg, Some(&reference())).unwrap();
        assert_eq!(
            enc.categories()[0].values(),
            ["Biscoe", "Dream", "Torgersen"]
        );
        let out = enc.apply(batch()).unwrap();
        assert_eq!(
            names(&out),
            ["x", "island_Biscoe", "island_Dream", "island_Torgersen"]
        );
        let col = |n: &str| out.require(n).unwrap().data.clone();
        // null (row 2) and unseen `Atlantis` (row 4) are all zeros
        assert_eq!(
            col("island_Biscoe"),
            ColumnData::F64(vec![0.0, 1.0, 0.0, 0.0, 0.0])
        );
        assert_eq!(
            col("island_Dream"),
            ColumnData::F64(vec![1.0, 0.0, 0.0, 1.0, 0.0])
        );
        assert_eq!(col("island_Torgersen"), ColumnData::F64(vec![0.0; 5]));
        assert_eq!(
            enc.output_names(),
            ["island_Biscoe", "island_Dream", "island_Torgersen"]
        );
    }

    #[test]
    fn one_hot_with_given_categories_keeps_original_and_separator() {
        let cfg: OneHotConfig = serde_json::from_str(
            r#"{"columns":["island"],"categories":{"island":["Dream","Atlantis"]},"drop_original":false,"prefix_sep":"="}"#,
        )
        .unwrap();
        let enc = OneHotEncoder::new(cfg, None).unwrap();
        let out = enc.apply(batch()).unwrap();
        assert_eq!(
            names(&out),
            ["island", "x", "island=Dream", "island=Atlantis"]
        );
        assert_eq!(
            out.require("island=Atlantis").unwrap().data,
            ColumnData::F64(vec![0.0, 0.0, 0.0, 0.0, 1.0])
        );
    }

    #[test]
    fn fits_integers_numerically_and_bools_false_first() {
        let cfg: OneHotConfig = serde_json::from_str(r#"{"columns":["n","b"]}"#).unwrap();
        let enc = OneHotEncoder::new(cfg, Some(&reference())).unwrap();
        assert_eq!(enc.categories()[0].values(), ["2", "9", "10"]);
        assert_eq!(enc.categories()[1].values(), ["false", "true"]);
        let out = enc.apply(reference()).unwrap();
        assert_eq!(
            out.require("n_10").unwrap().data,
            ColumnData::F64(vec![1.0, 0.0, 1.0, 0.0, 0.0])
        );
        assert_eq!(
            out.require("b_false").unwrap().data,
            ColumnData::F64(vec![0.0, 0.0, 1.0, 0.0, 0.0])
        );
    }

    #[test]
    fn empty_batch_gives_empty_columns() {
        let cfg: OneHotConfig = serde_json::from_str(r#"{"columns":["island"]}"#).unwrap();
        let enc = OneHotEncoder::new(cfg, Some(&reference())).unwrap();
        let out = enc.apply(batch().slice(0, 0)).unwrap();
        assert_eq!(out.rows(), 0);
        assert_eq!(
            names(&out),
            ["x", "island_Biscoe", "island_Dream", "island_Torgersen"]
        );
    }

    #[test]
    fn ordinal_codes_in_category_order() {
        let cfg: OrdinalConfig = serde_json::from_str(r#"{"columns":["island"]}"#).unwrap();
        let enc = OrdinalEncoder::new(cfg, Some(&reference())).unwrap();
        let out = enc.apply(batch()).unwrap();
        assert_eq!(names(&out), ["island", "x"]);
        let col = out.require("island").unwrap();
        assert_eq!(col.data, ColumnData::S64(vec![1, 0, 0, 1, -1]));
        assert_eq!(col.validity, Some(vec![true, true, false, true, true]));

        let cfg: OrdinalConfig = serde_json::from_str(
            r#"{"columns":["island"],"categories":{"island":["Dream","Biscoe"]},"unknown_value":99}"#,
        )
        .unwrap();
        let out = OrdinalEncoder::new(cfg, None)
            .unwrap()
            .apply(batch())
            .unwrap();
        assert_eq!(
            out.require("island").unwrap().data,
            ColumnData::S64(vec![0, 1, 0, 0, 99])
        );
    }

    #[test]
    fn config_and_reference_errors() {
        let cfg: OneHotConfig = serde_json::from_str(r#"{"columns":["island"]}"#).unwrap();
        let e = OneHotEncoder::new(cfg, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Reference);
        let cfg: OneHotConfig =
            serde_json::from_str(r#"{"columns":["island"],"categories":{"isle":["a"]}}"#).unwrap();
        let e = OneHotEncoder::new(cfg, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config `categories`: lists column `isle`, which is not in `columns`"
        );
        let cfg: OneHotConfig =
            serde_json::from_str(r#"{"columns":["island"],"categories":{"island":["a","a"]}}"#)
                .unwrap();
        assert!(OneHotEncoder::new(cfg, None).is_err());
        let cfg: OrdinalConfig = serde_json::from_str(
            r#"{"columns":["island"],"categories":{"island":["a","b"]},"unknown_value":1}"#,
        )
        .unwrap();
        let e = OrdinalEncoder::new(cfg, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config `unknown_value`: 1 is also the code of category `b` of `island`"
        );
        let cfg: OneHotConfig = serde_json::from_str(r#"{"columns":["x"]}"#).unwrap();
        let reference = batch();
        let e = OneHotEncoder::new(cfg, Some(&reference)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "reference: column `x` is f64, expected string"
        );
        assert!(serde_json::from_str::<OneHotConfig>(r#"{"columns":["x"],"drop":true}"#).is_err());
    }

    #[test]
    fn input_errors() {
        let cfg: OneHotConfig =
            serde_json::from_str(r#"{"columns":["x"],"categories":{"x":["1"]}}"#).unwrap();
        let enc = OneHotEncoder::new(cfg, None).unwrap();
        let e = enc.apply(batch()).unwrap_err();
        assert_eq!((e.kind(), e.column()), (ErrorKind::Input, Some("x")));
        // an output name colliding with an input column
        let cfg: OneHotConfig = serde_json::from_str(
            r#"{"columns":["island"],"categories":{"island":["a"]},"drop_original":false,"prefix_sep":""}"#,
        )
        .unwrap();
        let b = Batch::from_columns(vec![
            Column::from_opt_str("island", &[Some("a")]),
            Column::new("islanda", ColumnData::F64(vec![1.0])),
        ])
        .unwrap();
        let e = OneHotEncoder::new(cfg, None).unwrap().apply(b).unwrap_err();
        assert_eq!(e.to_string(), "column `islanda` appears twice");
    }
}
