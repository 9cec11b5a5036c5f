//! Drift monitor: compares the distribution of each column of a stream of
//! batches with a reference. Numeric columns use the population stability
//! index (PSI) over reference-quantile bins, categorical (string, bool)
//! columns the L∞ distance between category frequencies.
//!
//! The state is counts only (per bin or category, plus nulls), so observing
//! batch by batch gives exactly the result of observing everything at once,
//! and snapshots are small. Definitions (they match
//! `examples/penguins/prepare.py`):
//!
//! - Bin edges: the reference's `k / bins` quantiles for `k = 1 … bins-1`,
//!   linear interpolation (`numpy.quantile`'s default, including its
//!   interpolation formula), equal edges merged. Bins are right-closed: a
//!   value equal to an edge counts in the bin below it. The outer bins are open.
//! - `PSI = Σ (c − r) · ln(c / r)` over bins, where `r` and `c` are the
//!   reference and current proportions, each raised to at least [`EPSILON`]
//!   so that an empty bin gives a large but finite term.
//! - `L∞ = max |c − r|` over the union of reference and current categories;
//!   a category unseen in the reference has `r = 0`.
//! - Nulls, NaN and ±∞ are left out of both; their share of the current rows
//!   is reported as the column's `null-share` metric.
//! - A column drifts when its statistic is `>=` its threshold. The dataset
//!   drifts when `share-drifted >= drift_share`, where the share counts only
//!   columns with at least one current value.

use crate::util::{bool_text, check_names};
use crate::{AlgoError, Result};
use keel_data::{Batch, Column, ColumnData, DataError, DataType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Smallest proportion a bin takes in the PSI formula; empty bins would
/// otherwise make `ln(c / r)` infinite. The value is the one common PSI
/// tools use (and `prepare.py`).
pub const EPSILON: f64 = 1e-4;

/// Version written into snapshots; `restore` refuses any other.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Configuration of the drift monitor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftConfig {
    /// Columns to watch; all columns of the reference when absent.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// PSI at or above which a numeric column drifts (default 0.2).
    #[serde(default = "default_psi")]
    pub psi_threshold: f64,
    /// L∞ at or above which a categorical column drifts (default 0.1).
    #[serde(default = "default_linf")]
    pub linf_threshold: f64,
    /// Share of drifted columns at or above which the dataset drifts (default 0.5).
    #[serde(default = "default_share")]
    pub drift_share: f64,
    /// Number of quantile bins of numeric columns (default 10, deciles).
    #[serde(default = "default_bins")]
    pub bins: usize,
}

fn default_psi() -> f64 {
    0.2
}
fn default_linf() -> f64 {
    0.1
}
fn default_share() -> f64 {
    0.5
}
fn default_bins() -> usize {
    10
}

/// One statistic (the WIT `metric`).
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Column, or `None` for dataset-level metrics.
    pub column: Option<String>,
    /// `psi`, `linf`, `null-share` or `share-drifted`.
    pub name: String,
    /// The value.
    pub value: f64,
    /// The threshold it is compared with.
    pub threshold: Option<f64>,
    /// Always `None` here: PSI and L∞ are distances, not tests.
    pub p_value: Option<f64>,
    /// Whether the value reached its threshold.
    pub alert: bool,
}

/// A report on everything observed (the WIT `report`).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Rows observed.
    pub rows: u64,
    /// Whether the dataset drifted.
    pub alert: bool,
    /// Per column: `psi` or `linf`, then `null-share`; last `share-drifted`.
    pub metrics: Vec<Metric>,
    /// One line for humans.
    pub summary: String,
}

/// Reference and current counts of one column, for drawing histograms.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// The column.
    pub column: String,
    /// What the counts are counts of.
    pub bins: Bins,
    /// Reference count per bin or category.
    pub reference: Vec<u64>,
    /// Current count per bin or category.
    pub current: Vec<u64>,
    /// Reference nulls, NaN and ±∞.
    pub reference_missing: u64,
    /// Current nulls, NaN and ±∞.
    pub current_missing: u64,
}

/// The buckets of a histogram.
#[derive(Debug, Clone, PartialEq)]
pub enum Bins {
    /// `edges.len() + 1` bins: `(-∞, e0]`, `(e0, e1]`, …, `(e_last, ∞)`.
    Numeric { edges: Vec<f64> },
    /// One bucket per category: the reference's sorted categories, then
    /// those first seen in the current data, sorted.
    Categorical { categories: Vec<String> },
}

#[derive(Debug, Clone, PartialEq)]
enum Layout {
    Numeric {
        edges: Vec<f64>,
    },
    Categorical {
        bool: bool,
        categories: Vec<String>,
        index: HashMap<String, usize>,
    },
}

/// Counts of one column: per bin (or reference category), per category not
/// in the reference, and of missing values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct Counts {
    bins: Vec<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    unseen: BTreeMap<String, u64>,
    missing: u64,
}

impl Counts {
    fn empty(n: usize) -> Counts {
        Counts {
            bins: vec![0; n],
            ..Counts::default()
        }
    }

    fn present(&self) -> u64 {
        self.bins.iter().sum::<u64>() + self.unseen.values().sum::<u64>()
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Watched {
    name: String,
    layout: Layout,
    reference: Counts,
    current: Counts,
}

/// A drift monitor: a fixed reference profile and the counts observed since.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftMonitor {
    psi_threshold: f64,
    linf_threshold: f64,
    drift_share: f64,
    columns: Vec<Watched>,
    rows: u64,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    rows: u64,
    columns: Vec<ColumnState>,
}

#[derive(Serialize, Deserialize)]
struct ColumnState {
    name: String,
    /// Edges or categories, so that `restore` can tell a snapshot of a
    /// monitor built from another reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    edges: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    categories: Option<Vec<String>>,
    #[serde(flatten)]
    counts: Counts,
}

impl DriftMonitor {
    /// Profiles `reference` (bin edges, categories, reference counts).
    pub fn new(config: DriftConfig, reference: &Batch) -> Result<DriftMonitor> {
        for (key, v) in [
            ("psi_threshold", config.psi_threshold),
            ("linf_threshold", config.linf_threshold),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(AlgoError::config(
                    key,
                    format!("{v} is not a finite number >= 0"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&config.drift_share) {
            return Err(AlgoError::config(
                "drift_share",
                format!("{} is not a share in [0, 1]", config.drift_share),
            ));
        }
        if !(2..=1000).contains(&config.bins) {
            return Err(AlgoError::config(
                "bins",
                format!("{} is not in 2..=1000", config.bins),
            ));
        }
        if reference.rows() == 0 {
            return Err(AlgoError::Reference {
                column: None,
                message: "the reference has no rows to compare with".into(),
            });
        }
        let names = match config.columns {
            Some(names) => {
                check_names("columns", &names)?;
                names
            }
            None => reference.columns().iter().map(|c| c.name.clone()).collect(),
        };
        let columns = names
            .into_iter()
            .map(|name| {
                let col = reference.require(&name).map_err(AlgoError::in_reference)?;
                let layout = profile(col, config.bins)?;
                let mut counts = Counts::empty(layout.len());
                count(&layout, col, &mut counts);
                if counts.present() == 0 {
                    return Err(AlgoError::reference(
                        &name,
                        format!("column `{name}` has no values (all null, NaN or infinite)"),
                    ));
                }
                let current = Counts::empty(layout.len());
                Ok(Watched {
                    name,
                    layout,
                    reference: counts,
                    current,
                })
            })
            .collect::<Result<_>>()?;
        Ok(DriftMonitor {
            psi_threshold: config.psi_threshold,
            linf_threshold: config.linf_threshold,
            drift_share: config.drift_share,
            columns,
            rows: 0,
        })
    }

    /// Rows observed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds one batch to the counts. Checks every column first, so a batch
    /// that is refused leaves the state untouched.
    pub fn observe(&mut self, batch: &Batch) -> Result<()> {
        let cols = self
            .columns
            .iter()
            .map(|w| {
                let col = batch.require(&w.name)?;
                check_type(&w.layout, col)?;
                Ok(col)
            })
            .collect::<Result<Vec<&Column>>>()?;
        for (w, col) in self.columns.iter_mut().zip(cols) {
            count(&w.layout, col, &mut w.current);
        }
        self.rows += batch.rows() as u64;
        Ok(())
    }

    /// Reports on everything observed since creation or the last restore.
    pub fn report(&self) -> Report {
        let mut metrics = Vec::new();
        let mut drifted = Vec::new();
        let mut unobserved = Vec::new();
        for w in &self.columns {
            let present = w.current.present();
            if present == 0 {
                unobserved.push(w.name.as_str());
            } else {
                let (name, value, threshold) = match &w.layout {
                    Layout::Numeric { .. } => (
                        "psi",
                        psi(&w.reference.bins, &w.current.bins),
                        self.psi_threshold,
                    ),
                    Layout::Categorical { .. } => {
                        ("linf", linf(&w.reference, &w.current), self.linf_threshold)
                    }
                };
                let alert = value >= threshold;
                if alert {
                    drifted.push(w.name.as_str());
                }
                metrics.push(Metric {
                    column: Some(w.name.clone()),
                    name: name.into(),
                    value,
                    threshold: Some(threshold),
                    p_value: None,
                    alert,
                });
            }
            let total = present + w.current.missing;
            if total > 0 {
                metrics.push(Metric {
                    column: Some(w.name.clone()),
                    name: "null-share".into(),
                    value: w.current.missing as f64 / total as f64,
                    threshold: None,
                    p_value: None,
                    alert: false,
                });
            }
        }
        let evaluated = self.columns.len() - unobserved.len();
        let share = if evaluated == 0 {
            0.0
        } else {
            drifted.len() as f64 / evaluated as f64
        };
        let alert = evaluated > 0 && share >= self.drift_share;
        metrics.push(Metric {
            column: None,
            name: "share-drifted".into(),
            value: share,
            threshold: Some(self.drift_share),
            p_value: None,
            alert,
        });
        let mut summary = if evaluated == 0 {
            format!(
                "no values observed yet in any of the {} columns",
                self.columns.len()
            )
        } else {
            let cmp = if alert { ">=" } else { "<" };
            let mut s = format!(
                "{} of {evaluated} columns drifted (share {share:.2} {cmp} {})",
                drifted.len(),
                self.drift_share
            );
            if !drifted.is_empty() {
                s.push_str(": ");
                s.push_str(&drifted.join(", "));
            }
            s
        };
        if evaluated > 0 && !unobserved.is_empty() {
            summary.push_str(&format!(
                "; no values observed in {}",
                unobserved.join(", ")
            ));
        }
        Report {
            rows: self.rows,
            alert,
            metrics,
            summary,
        }
    }

    /// Reference and current counts per column, in column order.
    pub fn histograms(&self) -> Vec<Histogram> {
        self.columns
            .iter()
            .map(|w| {
                let (bins, reference, current) = match &w.layout {
                    Layout::Numeric { edges } => (
                        Bins::Numeric {
                            edges: edges.clone(),
                        },
                        w.reference.bins.clone(),
                        w.current.bins.clone(),
                    ),
                    Layout::Categorical { categories, .. } => {
                        let mut all = categories.clone();
                        all.extend(w.current.unseen.keys().cloned());
                        let mut reference = w.reference.bins.clone();
                        reference.resize(all.len(), 0);
                        let mut current = w.current.bins.clone();
                        current.extend(w.current.unseen.values());
                        (Bins::Categorical { categories: all }, reference, current)
                    }
                };
                Histogram {
                    column: w.name.clone(),
                    bins,
                    reference,
                    current,
                    reference_missing: w.reference.missing,
                    current_missing: w.current.missing,
                }
            })
            .collect()
    }

    /// The observed state (not the reference) as versioned JSON.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let snapshot = Snapshot {
            version: SNAPSHOT_VERSION,
            rows: self.rows,
            columns: self
                .columns
                .iter()
                .map(|w| {
                    let (edges, categories) = match &w.layout {
                        Layout::Numeric { edges } => (Some(edges.clone()), None),
                        Layout::Categorical { categories, .. } => (None, Some(categories.clone())),
                    };
                    ColumnState {
                        name: w.name.clone(),
                        edges,
                        categories,
                        counts: w.current.clone(),
                    }
                })
                .collect(),
        };
        serde_json::to_vec(&snapshot).map_err(|e| AlgoError::State {
            message: format!("cannot serialise the state: {e}"),
        })
    }

    /// Replaces the observed state with a snapshot of a monitor built from
    /// the same config and reference. Checks everything before changing anything.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let state = |message: String| AlgoError::State { message };
        let snapshot: Snapshot = serde_json::from_slice(bytes)
            .map_err(|e| state(format!("not a drift-monitor snapshot: {e}")))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(state(format!(
                "snapshot version {} is not the supported version {SNAPSHOT_VERSION}",
                snapshot.version
            )));
        }
        if snapshot.columns.len() != self.columns.len() {
            return Err(state(format!(
                "snapshot has {} columns, this monitor watches {}",
                snapshot.columns.len(),
                self.columns.len()
            )));
        }
        for (w, s) in self.columns.iter().zip(&snapshot.columns) {
            let same_layout = match &w.layout {
                Layout::Numeric { edges } => s.edges.as_ref().is_some_and(|e| same_edges(e, edges)),
                Layout::Categorical { categories, .. } => s.categories.as_ref() == Some(categories),
            };
            if s.name != w.name || !same_layout || s.counts.bins.len() != w.layout.len() {
                return Err(state(format!(
                    "snapshot column `{}` does not match column `{}` of this monitor's reference",
                    s.name, w.name
                )));
            }
            if matches!(w.layout, Layout::Numeric { .. }) && !s.counts.unseen.is_empty() {
                return Err(state(format!(
                    "snapshot column `{}` has categories but is numeric",
                    s.name
                )));
            }
        }
        self.rows = snapshot.rows;
        for (w, s) in self.columns.iter_mut().zip(snapshot.columns) {
            w.current = s.counts;
        }
        Ok(())
    }
}

/// Edges survive a JSON round trip only to the last bit or so, since
/// serde_json parses floats with best-effort precision.
fn same_edges(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0))
}

impl Layout {
    fn len(&self) -> usize {
        match self {
            Layout::Numeric { edges } => edges.len() + 1,
            Layout::Categorical { categories, .. } => categories.len(),
        }
    }
}

fn profile(col: &Column, bins: usize) -> Result<Layout> {
    match &col.data {
        ColumnData::String(_) | ColumnData::Bool(_) => {
            let is_bool = col.data_type() == DataType::Bool;
            let categories = match &col.data {
                ColumnData::String(v) => {
                    let mut c: Vec<String> = v
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| col.is_valid(*i))
                        .map(|(_, s)| s.clone())
                        .collect();
                    c.sort_unstable();
                    c.dedup();
                    c
                }
                _ => vec![bool_text(false).to_owned(), bool_text(true).to_owned()],
            };
            let index = categories
                .iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), i))
                .collect();
            Ok(Layout::Categorical {
                bool: is_bool,
                categories,
                index,
            })
        }
        _ => {
            let values = col.numeric().map_err(AlgoError::in_reference)?;
            let mut finite: Vec<f64> = values
                .iter()
                .enumerate()
                .filter(|(i, x)| col.is_valid(*i) && x.is_finite())
                .map(|(_, x)| *x)
                .collect();
            finite.sort_unstable_by(f64::total_cmp);
            let mut edges: Vec<f64> = (1..bins)
                .filter_map(|k| quantile(&finite, k as f64 / bins as f64))
                .collect();
            edges.sort_unstable_by(f64::total_cmp);
            edges.dedup();
            Ok(Layout::Numeric { edges })
        }
    }
}

/// `numpy.quantile(sorted, q)` with the default linear method, including
/// numpy's two-sided interpolation formula, so edges agree to the bit.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = last as f64 * q;
    if h >= last as f64 {
        return sorted.get(last).copied();
    }
    let lo = h.floor();
    let t = h - lo;
    let i = lo as usize;
    let (a, b) = (*sorted.get(i)?, *sorted.get(i + 1)?);
    let d = b - a;
    Some(if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    })
}

fn check_type(layout: &Layout, col: &Column) -> core::result::Result<(), DataError> {
    let t = col.data_type();
    let ok = match layout {
        Layout::Numeric { .. } => t.is_numeric(),
        Layout::Categorical { bool: true, .. } => t == DataType::Bool,
        Layout::Categorical { bool: false, .. } => t == DataType::String,
    };
    match (ok, layout) {
        (true, _) => Ok(()),
        (false, Layout::Numeric { .. }) => Err(DataError::NotNumeric {
            column: col.name.clone(),
            found: t,
        }),
        (false, Layout::Categorical { bool, .. }) => Err(DataError::TypeMismatch {
            column: col.name.clone(),
            expected: if *bool {
                DataType::Bool
            } else {
                DataType::String
            },
            found: t,
        }),
    }
}

/// Adds a column's values to `counts`; the column's type was checked.
fn count(layout: &Layout, col: &Column, counts: &mut Counts) {
    match (layout, &col.data) {
        (Layout::Numeric { edges }, _) => {
            let Some(values) = col.as_f64() else { return };
            for (i, &x) in values.iter().enumerate() {
                if !col.is_valid(i) || !x.is_finite() {
                    counts.missing += 1;
                } else if let Some(n) = counts.bins.get_mut(edges.partition_point(|e| *e < x)) {
                    *n += 1;
                }
            }
        }
        (Layout::Categorical { index, .. }, ColumnData::String(values)) => {
            for (i, s) in values.iter().enumerate() {
                if !col.is_valid(i) {
                    counts.missing += 1;
                } else {
                    add_category(index, s, counts);
                }
            }
        }
        (Layout::Categorical { index, .. }, ColumnData::Bool(values)) => {
            for (i, b) in values.iter().enumerate() {
                if !col.is_valid(i) {
                    counts.missing += 1;
                } else {
                    add_category(index, bool_text(*b), counts);
                }
            }
        }
        _ => {}
    }
}

fn add_category(index: &HashMap<String, usize>, key: &str, counts: &mut Counts) {
    match index.get(key).and_then(|k| counts.bins.get_mut(*k)) {
        Some(n) => *n += 1,
        None => *counts.unseen.entry(key.to_owned()).or_default() += 1,
    }
}

/// PSI of two histograms over the same bins; both must be non-empty.
pub fn psi(reference: &[u64], current: &[u64]) -> f64 {
    let nr = reference.iter().sum::<u64>().max(1) as f64;
    let nc = current.iter().sum::<u64>().max(1) as f64;
    reference
        .iter()
        .zip(current)
        .map(|(r, c)| {
            let r = (*r as f64 / nr).max(EPSILON);
            let c = (*c as f64 / nc).max(EPSILON);
            (c - r) * (c / r).ln()
        })
        .sum()
}

fn linf(reference: &Counts, current: &Counts) -> f64 {
    let nr = reference.present().max(1) as f64;
    let nc = current.present().max(1) as f64;
    let known = reference
        .bins
        .iter()
        .zip(&current.bins)
        .map(|(r, c)| (*r as f64 / nr - *c as f64 / nc).abs());
    let unseen = current.unseen.values().map(|c| *c as f64 / nc);
    known.chain(unseen).fold(0.0, f64::max)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn cfg(json: &str) -> DriftConfig {
        serde_json::from_str(json).unwrap()
    }

    /// x = 1..=10 (plus a null and an infinity), c = 6 a / 4 b.
    fn reference() -> Batch {
        let mut x: Vec<Option<f64>> = (1..=10).map(|i| Some(f64::from(i))).collect();
        x.push(None);
        x.push(Some(f64::INFINITY));
        let c: Vec<Option<&str>> = ["a", "a", "a", "a", "a", "a", "b", "b", "b", "b"]
            .into_iter()
            .map(Some)
            .chain([None, Some("a")])
            .collect();
        Batch::from_columns(vec![
            Column::from_opt_f64("x", &x),
            Column::from_opt_str("c", &c),
        ])
        .unwrap()
    }

    fn current() -> Batch {
        Batch::from_columns(vec![
            Column::from_opt_f64(
                "x",
                &[
                    Some(1.0),
                    Some(1.5),
                    Some(2.0),
                    Some(9.0),
                    None,
                    Some(f64::NAN),
                    Some(30.0),
                    Some(2.0),
                ],
            ),
            Column::from_opt_str(
                "c",
                &[
                    Some("a"),
                    Some("z"),
                    Some("b"),
                    Some("b"),
                    Some("b"),
                    None,
                    Some("z"),
                    Some("b"),
                ],
            ),
        ])
        .unwrap()
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        // numpy.quantile(range(1, 11), [0.25, 0.5, 0.9]) = 3.25, 5.5, 9.1
        assert_eq!(quantile(&v, 0.25), Some(3.25));
        assert_eq!(quantile(&v, 0.5), Some(5.5));
        assert_eq!(quantile(&v, 0.9), Some(9.1));
        assert_eq!(quantile(&v, 1.0), Some(10.0));
        assert_eq!(quantile(&[4.0], 0.3), Some(4.0));
        assert_eq!(quantile(&[], 0.3), None);
    }

    #[test]
    fn profiles_reference_with_edges_and_categories() {
        let m = DriftMonitor::new(cfg(r#"{"bins":4}"#), &reference()).unwrap();
        let h = m.histograms();
        // quartiles of 1..=10: 3.25, 5.5, 7.75 → bins (≤3.25], (≤5.5], (≤7.75], rest
        assert_eq!(
            h[0].bins,
            Bins::Numeric {
                edges: vec![3.25, 5.5, 7.75]
            }
        );
        assert_eq!(
            (h[0].reference.clone(), h[0].reference_missing),
            (vec![3, 2, 2, 3], 2)
        );
        assert_eq!(
            h[1].bins,
            Bins::Categorical {
                categories: vec!["a".into(), "b".into()]
            }
        );
        assert_eq!(
            (h[1].reference.clone(), h[1].reference_missing),
            (vec![7, 4], 1)
        );
        // equal edges are merged; a value on an edge falls in the lower bin
        let flat =
            Batch::from_columns(vec![Column::new("x", ColumnData::S64(vec![1, 1, 1, 1, 2]))])
                .unwrap();
        let m = DriftMonitor::new(cfg("{}"), &flat).unwrap();
        let h = &m.histograms()[0];
        // numpy.quantile([1, 1, 1, 1, 2], [0.1 … 0.9]) = 1 (×7), 1.2000000000000002, 1.6
        assert_eq!(
            h.bins,
            Bins::Numeric {
                edges: vec![1.0, 1.2000000000000002, 1.6]
            }
        );
        assert_eq!(h.reference, [4, 0, 0, 1]);
    }

    #[test]
    fn report_with_hand_computed_psi_and_linf() {
        let mut m = DriftMonitor::new(
            cfg(r#"{"bins":4,"psi_threshold":0.2,"linf_threshold":0.1}"#),
            &reference(),
        )
        .unwrap();
        m.observe(&current()).unwrap();
        let r = m.report();
        assert_eq!(r.rows, 8);
        // x current: 1, 1.5, 2, 2 | - | - | 9, 30 ; missing: null, NaN
        let p = |c: f64, r: f64| (c - r) * (c / r).ln();
        let expected_psi =
            p(4.0 / 6.0, 0.3) + p(EPSILON, 0.2) + p(EPSILON, 0.2) + p(2.0 / 6.0, 0.3);
        assert!((r.metrics[0].value - expected_psi).abs() < 1e-15);
        assert_eq!(
            (r.metrics[0].name.as_str(), r.metrics[0].alert),
            ("psi", true)
        );
        assert_eq!(
            (r.metrics[1].name.as_str(), r.metrics[1].value),
            ("null-share", 2.0 / 8.0)
        );
        // c current (7 values): a 1/7, b 4/7, z 2/7 vs a 7/11, b 4/11, z 0
        let expected_linf = (7.0f64 / 11.0 - 1.0 / 7.0).abs();
        assert!((r.metrics[2].value - expected_linf).abs() < 1e-15);
        assert_eq!(
            (r.metrics[2].name.as_str(), r.metrics[2].threshold),
            ("linf", Some(0.1))
        );
        assert_eq!(r.metrics[3].value, 1.0 / 8.0);
        let share = r.metrics.last().unwrap();
        assert_eq!(
            (
                share.name.as_str(),
                share.column.as_deref(),
                share.value,
                share.alert
            ),
            ("share-drifted", None, 1.0, true)
        );
        assert!(r.alert);
        assert_eq!(
            r.summary,
            "2 of 2 columns drifted (share 1.00 >= 0.5): x, c"
        );
        let h = m.histograms();
        assert_eq!(
            h[1].bins,
            Bins::Categorical {
                categories: vec!["a".into(), "b".into(), "z".into()]
            }
        );
        assert_eq!(
            (h[1].reference.clone(), h[1].current.clone()),
            (vec![7, 4, 0], vec![1, 4, 2])
        );
    }

    #[test]
    fn identical_data_does_not_drift() {
        let mut m = DriftMonitor::new(cfg("{}"), &reference()).unwrap();
        m.observe(&reference()).unwrap();
        let r = m.report();
        assert!(r.metrics.iter().all(|x| !x.alert));
        assert_eq!((r.metrics[0].value, r.metrics[2].value), (0.0, 0.0));
        assert_eq!(r.summary, "0 of 2 columns drifted (share 0.00 < 0.5)");
    }

    #[test]
    fn batch_split_invariance() {
        let all = current();
        let mut whole = DriftMonitor::new(cfg(r#"{"bins":4}"#), &reference()).unwrap();
        whole.observe(&all).unwrap();
        for cuts in [
            vec![0, 8],
            vec![0, 1, 8],
            vec![0, 3, 5, 8],
            vec![0, 0, 2, 2, 7, 8],
        ] {
            let mut split = DriftMonitor::new(cfg(r#"{"bins":4}"#), &reference()).unwrap();
            for w in cuts.windows(2) {
                split.observe(&all.slice(w[0], w[1])).unwrap();
            }
            assert_eq!(split.report(), whole.report());
            assert_eq!(split.histograms(), whole.histograms());
            assert_eq!(split.snapshot().unwrap(), whole.snapshot().unwrap());
        }
    }

    #[test]
    fn nothing_observed_and_empty_batches() {
        let mut m = DriftMonitor::new(cfg("{}"), &reference()).unwrap();
        m.observe(&current().slice(0, 0)).unwrap();
        let r = m.report();
        assert_eq!((r.rows, r.alert, r.metrics.len()), (0, false, 1));
        assert_eq!(r.summary, "no values observed yet in any of the 2 columns");
        // a column with only nulls so far is left out of the share
        m.observe(&current().slice(4, 6)).unwrap();
        let r = m.report();
        assert_eq!(
            r.summary,
            "1 of 1 columns drifted (share 1.00 >= 0.5): c; no values observed in x"
        );
    }

    #[test]
    fn snapshot_round_trip_and_refusals() {
        let mut m = DriftMonitor::new(cfg(r#"{"bins":4}"#), &reference()).unwrap();
        m.observe(&current()).unwrap();
        let bytes = m.snapshot().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"version":1,"rows":8,"columns":[{"name":"x","edges":[3.25,5.5,7.75],"bins":[4,0,0,2]"#), "{text}");
        let mut fresh = DriftMonitor::new(cfg(r#"{"bins":4}"#), &reference()).unwrap();
        fresh.restore(&bytes).unwrap();
        assert_eq!(fresh, m);
        // restoring continues from the snapshot
        fresh.observe(&current()).unwrap();
        m.observe(&current()).unwrap();
        assert_eq!(fresh.report(), m.report());

        let e = fresh.restore(b"nonsense").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::State);
        let e = fresh
            .restore(text.replace(r#""version":1"#, r#""version":2"#).as_bytes())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid state: snapshot version 2 is not the supported version 1"
        );
        let mut other = DriftMonitor::new(cfg(r#"{"bins":5}"#), &reference()).unwrap();
        let before = other.clone();
        assert!(other.restore(&bytes).is_err());
        assert_eq!(other, before);
    }

    #[test]
    fn errors() {
        let e = DriftMonitor::new(cfg(r#"{"columns":["nope"]}"#), &reference()).unwrap_err();
        assert_eq!((e.kind(), e.column()), (ErrorKind::Reference, Some("nope")));
        let e = DriftMonitor::new(cfg("{}"), &reference().slice(0, 0)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Reference);
        let nulls =
            Batch::from_columns(vec![Column::from_opt_f64("x", &[None, Some(f64::NAN)])]).unwrap();
        let e = DriftMonitor::new(cfg("{}"), &nulls).unwrap_err();
        assert_eq!(
            e.to_string(),
            "reference: column `x` has no values (all null, NaN or infinite)"
        );
        let e = DriftMonitor::new(cfg(r#"{"bins":1}"#), &reference()).unwrap_err();
        assert_eq!(e.to_string(), "invalid config `bins`: 1 is not in 2..=1000");
        assert!(serde_json::from_str::<DriftConfig>(r#"{"psi":0.1}"#).is_err());

        let mut m = DriftMonitor::new(cfg("{}"), &reference()).unwrap();
        let before = m.clone();
        let swapped = Batch::from_columns(vec![
            Column::new("x", ColumnData::F64(vec![1.0])),
            Column::new("c", ColumnData::F64(vec![1.0])),
        ])
        .unwrap();
        let e = m.observe(&swapped).unwrap_err();
        assert_eq!(e.to_string(), "column `c` is f64, expected string");
        assert_eq!(m, before);
        let e = m
            .observe(&current().slice(0, 1).filter(&[true]))
            .map(|_| ());
        assert!(e.is_ok());
    }
}
