//! The drift report as `keel drift --format json` prints it, read with the
//! path of every bad value in the error (`columns[2].histogram.reference: 4
//! counts for 3 bins`), and checked for what the renderer relies on.
//!
//! Unknown fields are ignored so the JSON can grow without breaking reports.

use crate::ReportError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A whole drift report: two data sets and a verdict per column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// The data the model was built on.
    pub reference: Dataset,
    /// The data compared with it.
    pub current: Dataset,
    /// Share of drifted columns at or above which the data set drifts.
    pub drift_share: f64,
    /// Share of columns that drifted.
    pub share_drifted: f64,
    /// Whether the data set as a whole drifted.
    pub dataset_drift: bool,
    /// One entry per compared column, in report order.
    pub columns: Vec<ColumnDrift>,
}

/// Where one side of the comparison came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// File name or other description of the data.
    pub source: String,
    /// Number of rows read.
    pub rows: u64,
}

/// Whether a column holds numbers or categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// Numbers, binned into ranges.
    Numeric,
    /// Strings or booleans, counted per category.
    Categorical,
}

impl ColumnKind {
    /// The word used in the JSON and on the page.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Categorical => "categorical",
        }
    }
}

/// The verdict on one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    /// Column name, shown as text however odd it is.
    pub column: String,
    /// Numeric or categorical.
    pub kind: ColumnKind,
    /// Statistic used: psi, ks, chisquare, z, jensenshannon, wasserstein,
    /// hellinger or linf (others are shown as given).
    pub method: String,
    /// The statistic; `None` when the column could not be evaluated (no values).
    pub statistic: Option<f64>,
    /// The test's p-value; `None` for distances.
    pub p_value: Option<f64>,
    /// The value the statistic (or p-value, for tests) is compared with.
    pub threshold: f64,
    /// Whether the column drifted.
    pub drift: bool,
    /// Share of reference rows with no usable value.
    pub reference_missing_share: f64,
    /// Share of current rows with no usable value.
    pub current_missing_share: f64,
    /// Counts for drawing, when the report has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Histogram>,
}

/// Reference and current counts of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Histogram {
    /// Counts per value range.
    Numeric(NumericHistogram),
    /// Counts per category.
    Categorical(CategoricalHistogram),
}

/// Counts over `n` equal-width bins between `n + 1` edges, plus the values
/// that fell outside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericHistogram {
    /// `n + 1` finite, non-decreasing bin edges.
    pub edges: Vec<f64>,
    /// `n` reference counts.
    pub reference: Vec<u64>,
    /// `n` current counts.
    pub current: Vec<u64>,
    /// Reference values below `edges[0]`.
    #[serde(default)]
    pub reference_below: u64,
    /// Reference values above `edges[n]`.
    #[serde(default)]
    pub reference_above: u64,
    /// Current values below `edges[0]`.
    #[serde(default)]
    pub current_below: u64,
    /// Current values above `edges[n]`.
    #[serde(default)]
    pub current_above: u64,
}

/// Counts per category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalHistogram {
    /// Category names.
    pub categories: Vec<String>,
    /// Reference count per category.
    pub reference: Vec<u64>,
    /// Current count per category.
    pub current: Vec<u64>,
}

impl DriftReport {
    /// Reads a report from JSON text.
    pub fn from_json(text: &str) -> Result<DriftReport, ReportError> {
        let value: Value = serde_json::from_str(text).map_err(ReportError::Json)?;
        DriftReport::from_value(&value)
    }

    /// Reads a report from parsed JSON, naming the path of anything missing
    /// or malformed, and checks it (see [`DriftReport::validate`]).
    pub fn from_value(value: &Value) -> Result<DriftReport, ReportError> {
        let top = object(value, "drift report")?;
        let columns = match top.get("columns") {
            None => return Err(missing("drift report", "columns")),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| column(item, &format!("columns[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(invalid(
                    "columns",
                    format!("expected an array, found {}", type_name(other)),
                ));
            }
        };
        let report = DriftReport {
            reference: field(top, "drift report", "reference", "reference")?,
            current: field(top, "drift report", "current", "current")?,
            drift_share: field(top, "drift report", "drift_share", "drift_share")?,
            share_drifted: field(top, "drift report", "share_drifted", "share_drifted")?,
            dataset_drift: field(top, "drift report", "dataset_drift", "dataset_drift")?,
            columns,
        };
        report.validate()?;
        Ok(report)
    }

    /// Checks what the page relies on: shares in `[0, 1]`, finite numbers,
    /// and histograms whose counts match their bins.
    pub fn validate(&self) -> Result<(), ReportError> {
        share(self.drift_share, "drift_share")?;
        share(self.share_drifted, "share_drifted")?;
        for (i, c) in self.columns.iter().enumerate() {
            let at = |name: &str| format!("columns[{i}].{name}");
            if let Some(s) = c.statistic {
                finite(s, &at("statistic"))?;
            }
            if let Some(p) = c.p_value {
                share(p, &at("p_value"))?;
            }
            finite(c.threshold, &at("threshold"))?;
            share(c.reference_missing_share, &at("reference_missing_share"))?;
            share(c.current_missing_share, &at("current_missing_share"))?;
            match &c.histogram {
                None => {}
                Some(Histogram::Numeric(h)) => numeric(h, &at("histogram"))?,
                Some(Histogram::Categorical(h)) => {
                    let n = h.categories.len();
                    if n == 0 {
                        return Err(invalid(&at("histogram.categories"), "no categories".into()));
                    }
                    counts(&h.reference, n, "categories", &at("histogram.reference"))?;
                    counts(&h.current, n, "categories", &at("histogram.current"))?;
                }
            }
        }
        Ok(())
    }

    /// Columns that drifted.
    pub fn drifted(&self) -> usize {
        self.columns.iter().filter(|c| c.drift).count()
    }
}

fn numeric(h: &NumericHistogram, path: &str) -> Result<(), ReportError> {
    if h.edges.len() < 2 {
        return Err(invalid(
            &format!("{path}.edges"),
            format!("{} edge(s); a histogram needs at least 2", h.edges.len()),
        ));
    }
    for (i, e) in h.edges.iter().enumerate() {
        finite(*e, &format!("{path}.edges[{i}]"))?;
        if i > 0 && *e < h.edges[i - 1] {
            return Err(invalid(
                &format!("{path}.edges[{i}]"),
                format!("{e} is below the edge before it ({})", h.edges[i - 1]),
            ));
        }
    }
    let bins = h.edges.len() - 1;
    counts(&h.reference, bins, "bins", &format!("{path}.reference"))?;
    counts(&h.current, bins, "bins", &format!("{path}.current"))
}

fn counts(counts: &[u64], expected: usize, what: &str, path: &str) -> Result<(), ReportError> {
    if counts.len() == expected {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("{} counts for {expected} {what}", counts.len()),
        ))
    }
}

fn finite(x: f64, path: &str) -> Result<(), ReportError> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(invalid(path, format!("{x} is not a finite number")))
    }
}

fn share(x: f64, path: &str) -> Result<(), ReportError> {
    if (0.0..=1.0).contains(&x) {
        Ok(())
    } else {
        Err(invalid(path, format!("{x} is not a share in [0, 1]")))
    }
}

fn column(value: &Value, path: &str) -> Result<ColumnDrift, ReportError> {
    let obj = object(value, path)?;
    let f = |name: &str| format!("{path}.{name}");
    Ok(ColumnDrift {
        column: field(obj, path, "column", &f("column"))?,
        kind: field(obj, path, "kind", &f("kind"))?,
        method: field(obj, path, "method", &f("method"))?,
        statistic: field(obj, path, "statistic", &f("statistic"))?,
        p_value: optional(obj, "p_value", &f("p_value"))?,
        threshold: field(obj, path, "threshold", &f("threshold"))?,
        drift: field(obj, path, "drift", &f("drift"))?,
        reference_missing_share: field(
            obj,
            path,
            "reference_missing_share",
            &f("reference_missing_share"),
        )?,
        current_missing_share: field(
            obj,
            path,
            "current_missing_share",
            &f("current_missing_share"),
        )?,
        histogram: optional(obj, "histogram", &f("histogram"))?,
    })
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ReportError> {
    value.as_object().ok_or_else(|| {
        invalid(
            path,
            format!("expected an object, found {}", type_name(value)),
        )
    })
}

/// A required field; `null` is accepted only where `T` is an `Option`.
fn field<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    parent: &str,
    name: &str,
    path: &str,
) -> Result<T, ReportError> {
    let value = obj.get(name).ok_or_else(|| missing(parent, name))?;
    T::deserialize(value).map_err(|e| invalid(path, e.to_string()))
}

/// A field that may be absent or `null`.
fn optional<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Option<T>, ReportError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => T::deserialize(value)
            .map(Some)
            .map_err(|e| invalid(path, e.to_string())),
    }
}

fn missing(parent: &str, name: &str) -> ReportError {
    ReportError::Missing {
        parent: parent.to_string(),
        field: name.to_string(),
    }
}

fn invalid(path: &str, message: String) -> ReportError {
    ReportError::Invalid {
        path: path.to_string(),
        message,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample() -> Value {
        json!({
            "reference": {"source": "ref.csv", "rows": 1000},
            "current": {"source": "cur.csv", "rows": 800},
            "drift_share": 0.5,
            "share_drifted": 0.5,
            "dataset_drift": true,
            "columns": [
                {"column": "age", "kind": "numeric", "method": "ks", "statistic": 0.12, "p_value": 0.03,
                 "threshold": 0.05, "drift": true,
                 "reference_missing_share": 0.0, "current_missing_share": 0.0125,
                 "histogram": {"kind": "numeric", "edges": [0.0, 10.0, 20.0, 30.0],
                               "reference": [10, 500, 490], "current": [5, 300, 495],
                               "reference_below": 0, "reference_above": 0, "current_below": 0, "current_above": 7}},
                {"column": "island", "kind": "categorical", "method": "jensenshannon", "statistic": 0.05, "p_value": null,
                 "threshold": 0.1, "drift": false, "reference_missing_share": 0.0, "current_missing_share": 0.0,
                 "histogram": {"kind": "categorical", "categories": ["Biscoe", "Dream", "Torgersen"],
                               "reference": [100, 80, 44], "current": [60, 10, 5]}}
            ]
        })
    }

    fn err(mut report: Value, edit: impl FnOnce(&mut Value)) -> String {
        edit(&mut report);
        match DriftReport::from_value(&report) {
            Ok(_) => panic!("accepted a bad report: {report}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn reads_the_documented_shape_and_ignores_unknown_fields() {
        let mut v = sample();
        v["generated_by"] = json!("keel 9.9");
        v["columns"][0]["new_metric"] = json!(1);
        v["columns"][1]["histogram"]["note"] = json!("x");
        let r = DriftReport::from_value(&v).unwrap();
        assert_eq!(r.columns.len(), 2);
        assert_eq!(r.current.rows, 800);
        assert_eq!(r.columns[1].p_value, None);
        assert_eq!(r.drifted(), 1);
        match &r.columns[0].histogram {
            Some(Histogram::Numeric(h)) => assert_eq!(h.current_above, 7),
            other => panic!("{other:?}"),
        }
        // What it serialises to reads back the same.
        let again = DriftReport::from_json(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn histogram_may_be_absent_or_null_and_statistic_null() {
        let mut v = sample();
        v["columns"][0].as_object_mut().unwrap().remove("histogram");
        v["columns"][1]["histogram"] = Value::Null;
        v["columns"][1]["statistic"] = Value::Null;
        let r = DriftReport::from_value(&v).unwrap();
        assert!(r.columns.iter().all(|c| c.histogram.is_none()));
        assert_eq!(r.columns[1].statistic, None);
    }

    #[test]
    fn count_mismatches_name_the_path() {
        let e = err(sample(), |v| {
            v["columns"][0]["histogram"]["reference"] = json!([1, 2, 3, 4])
        });
        assert_eq!(e, "columns[0].histogram.reference: 4 counts for 3 bins");
        let e = err(sample(), |v| {
            v["columns"][1]["histogram"]["current"] = json!([1, 2])
        });
        assert_eq!(e, "columns[1].histogram.current: 2 counts for 3 categories");
    }

    #[test]
    fn missing_and_mistyped_fields_name_the_path() {
        let e = err(sample(), |v| {
            v["columns"][1].as_object_mut().unwrap().remove("threshold");
        });
        assert_eq!(e, "columns[1]: missing `threshold`");
        let e = err(sample(), |v| {
            v.as_object_mut().unwrap().remove("drift_share");
        });
        assert_eq!(e, "drift report: missing `drift_share`");
        let e = err(sample(), |v| v["columns"][0]["statistic"] = json!("high"));
        assert!(
            e.starts_with("columns[0].statistic: invalid type: string"),
            "{e}"
        );
        let e = err(sample(), |v| v["columns"][0]["kind"] = json!("text"));
        assert!(
            e.starts_with("columns[0].kind: unknown variant `text`"),
            "{e}"
        );
        let e = err(sample(), |v| {
            v["columns"][0]["histogram"]["reference"] = json!([1, -2, 3])
        });
        assert!(
            e.starts_with("columns[0].histogram: invalid value: integer `-2`"),
            "{e}"
        );
        let e = err(sample(), |v| v["reference"] = json!({"source": "r.csv"}));
        assert_eq!(e, "reference: missing field `rows`");
        let e = err(sample(), |v| v["columns"] = json!({}));
        assert_eq!(e, "columns: expected an array, found an object");
        let e = err(sample(), |v| v["columns"][1] = json!([]));
        assert_eq!(e, "columns[1]: expected an object, found an array");
        let e = err(json!([]), |_| {});
        assert_eq!(e, "drift report: expected an object, found an array");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let e = err(sample(), |v| v["share_drifted"] = json!(1.5));
        assert_eq!(e, "share_drifted: 1.5 is not a share in [0, 1]");
        let e = err(sample(), |v| v["columns"][0]["p_value"] = json!(-0.1));
        assert_eq!(e, "columns[0].p_value: -0.1 is not a share in [0, 1]");
        let e = err(sample(), |v| {
            v["columns"][0]["histogram"]["edges"] = json!([0.0, 20.0, 10.0, 30.0])
        });
        assert_eq!(
            e,
            "columns[0].histogram.edges[2]: 10 is below the edge before it (20)"
        );
        let e = err(sample(), |v| {
            v["columns"][0]["histogram"]["edges"] = json!([1.0])
        });
        assert_eq!(
            e,
            "columns[0].histogram.edges: 1 edge(s); a histogram needs at least 2"
        );
        let e = err(sample(), |v| {
            v["columns"][0]["histogram"]["kind"] = json!("ordinal")
        });
        assert!(
            e.starts_with("columns[0].histogram: unknown variant `ordinal`"),
            "{e}"
        );
        let e = err(
            sample(),
            |v| {
                v["columns"][1]["histogram"] =
                    json!({"kind": "categorical", "categories": [], "reference": [], "current": []})
            },
        );
        assert_eq!(e, "columns[1].histogram.categories: no categories");
    }

    #[test]
    fn bad_json_text_is_an_error_not_a_panic() {
        let e = DriftReport::from_json("{\"columns\": [")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("drift report is not valid JSON"), "{e}");
    }
}
