//! Drift monitor: compares the distribution of each column of a stream of
//! batches with a reference, column by column, with the statistic chosen per
//! column (automatically or by config), and gives per-column verdicts and a
//! dataset verdict. The same code runs in the `drift-monitor` plugin and in
//! `keel drift` natively.
//!
//! Definitions:
//!
//! - **Missing** values (nulls, NaN, ±∞) are left out of every statistic and
//!   reported as the column's `missing-share` of the current rows.
//! - **Method** per column: the config's `column.<name>.method`, else its
//!   `method`, else automatic ([`stats::auto_method`]: Evidently's rule,
//!   decided from the reference alone so the method never changes between
//!   windows).
//! - **Layouts.** KS and Wasserstein compare raw values: the reference's are
//!   kept sorted, the current window's are kept until the report. Every other
//!   method compares counts: categorical (string, bool) columns count each
//!   category; numeric columns with at most [`DISCRETE_MAX`] distinct
//!   reference values count each value; other numeric columns count
//!   reference-quantile bins (the `k / bins` quantiles, `numpy.quantile`'s
//!   linear interpolation, equal cut points merged; right-closed bins, open
//!   outer bins). Current categories or values unseen in the reference are
//!   extra buckets with a reference count of 0.
//! - **Verdicts**: a test drifts when its p-value is `<=` the threshold, a
//!   distance when it is `>=` the threshold ([`Method::drifted`]). The dataset
//!   drifts when `share-drifted >= drift_share`, where the share counts only
//!   columns with at least one current value.
//!
//! Observing batch by batch gives exactly the result of observing everything
//! at once, and the state round-trips through `snapshot`/`restore`.

use crate::stats::{self, ColumnKind, KsMode, Method};
use crate::util::{bool_text, check_names};
use crate::{AlgoError, Result};
use keel_data::{Batch, Column, ColumnData, DataError, DataType};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// Its report: per column, its method's metric, then `missing-share`; last
// `share-drifted` (the dataset verdict).
pub use crate::report::{Metric, Report};

/// Default smallest proportion a bin takes in PSI (empty bins would make it infinite).
pub const EPSILON: f64 = 1e-4;

/// Numeric columns with at most this many distinct reference values are
/// compared value by value rather than in quantile bins (Evidently's cut
/// between categorical-like and continuous numeric columns).
pub const DISCRETE_MAX: usize = 5;

/// Version written into snapshots; `restore` refuses any other.
pub const SNAPSHOT_VERSION: u32 = 2;

/// Configuration of the drift monitor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftConfig {
    /// Columns to watch; all columns of the reference when absent.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Method for every column: `auto` (default) or a method name.
    #[serde(default)]
    pub method: Option<String>,
    /// Threshold for every column; default: the method's.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Per-column overrides of `method` and `threshold`.
    #[serde(default)]
    pub column: BTreeMap<String, ColumnConfig>,
    /// Share of drifted columns at or above which the dataset drifts (default 0.5).
    #[serde(default = "default_share")]
    pub drift_share: f64,
    /// Quantile bins of continuous numeric columns for binned methods (default 10).
    #[serde(default = "default_bins")]
    pub bins: usize,
    /// Logarithm base of the Jensen–Shannon distance (default 2, so it lies in 0–1).
    #[serde(default = "default_base")]
    pub js_base: f64,
    /// Smallest bin proportion in PSI (default [`EPSILON`]).
    #[serde(default = "default_epsilon")]
    pub psi_epsilon: f64,
    /// Equal-width bins of the numeric histograms drawn in reports (default 20).
    #[serde(default = "default_hist_bins")]
    pub histogram_bins: usize,
}

/// Per-column overrides.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub threshold: Option<f64>,
}

fn default_share() -> f64 {
    0.5
}
fn default_bins() -> usize {
    10
}
fn default_base() -> f64 {
    2.0
}
fn default_epsilon() -> f64 {
    EPSILON
}
fn default_hist_bins() -> usize {
    20
}

impl Default for DriftConfig {
    fn default() -> DriftConfig {
        DriftConfig {
            columns: None,
            method: None,
            threshold: None,
            column: BTreeMap::new(),
            drift_share: default_share(),
            bins: default_bins(),
            js_base: default_base(),
            psi_epsilon: default_epsilon(),
            histogram_bins: default_hist_bins(),
        }
    }
}

/// Everything known about one column's drift, for reports and `keel drift`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnDrift {
    pub column: String,
    /// `numeric` or `categorical`.
    pub kind: &'static str,
    pub method: Method,
    /// `None` when the current data has no value in this column.
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
    pub threshold: f64,
    pub drift: bool,
    pub reference_missing_share: f64,
    pub current_missing_share: f64,
    pub histogram: Histogram,
}

/// Reference and current counts of one column, for drawing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Histogram {
    /// Equal-width bins over the reference's range; values outside it are
    /// counted below and above.
    Numeric {
        edges: Vec<f64>,
        reference: Vec<u64>,
        current: Vec<u64>,
        reference_below: u64,
        reference_above: u64,
        current_below: u64,
        current_above: u64,
    },
    /// One bucket per category: the reference's, then those first seen in the current data.
    Categorical {
        categories: Vec<String>,
        reference: Vec<u64>,
        current: Vec<u64>,
    },
}

/// How a column's values are compared.
#[derive(Debug, Clone, PartialEq)]
enum Layout {
    /// Raw values (KS, Wasserstein); the reference sorted.
    Values { reference: Vec<f64> },
    /// Quantile bins of a continuous numeric column.
    Bins { edges: Vec<f64> },
    /// Each distinct value of a numeric column with few of them.
    Discrete { values: Vec<f64> },
    /// Each category of a string or bool column.
    Categories {
        bool: bool,
        categories: Vec<String>,
        index: FxHashMap<String, usize>,
    },
}

/// Counts (or values) of one side of one column.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct Counts {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bins: Vec<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    unseen: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    values: Vec<f64>,
    missing: u64,
    /// Display histogram of numeric columns: bins, then below, above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    display: Vec<u64>,
}

impl Counts {
    fn present(&self) -> u64 {
        self.bins.iter().sum::<u64>() + self.unseen.values().sum::<u64>() + self.values.len() as u64
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Watched {
    name: String,
    method: Method,
    threshold: f64,
    layout: Layout,
    /// Equal-width display edges of numeric columns.
    display_edges: Vec<f64>,
    reference: Counts,
    current: Counts,
}

/// A drift monitor: a fixed reference profile and what was observed since.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftMonitor {
    drift_share: f64,
    js_base: f64,
    psi_epsilon: f64,
    columns: Vec<Watched>,
    rows: u64,
    reference_rows: u64,
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
    method: Method,
    /// Buckets of the layout, so `restore` can tell a snapshot of a monitor
    /// built from another reference.
    buckets: usize,
    #[serde(flatten)]
    counts: Counts,
}

fn parse_method(key: &str, text: &str) -> Result<Option<Method>> {
    if text == "auto" {
        return Ok(None);
    }
    Method::parse(text).map(Some).ok_or_else(|| {
        AlgoError::config(
            key,
            format!(
                "`{text}` is not a method (auto, psi, ks, chisquare, z, jensenshannon, wasserstein, hellinger, linf)"
            ),
        )
    })
}

fn check_threshold(key: &str, method: Method, t: f64) -> Result<()> {
    let ok = t.is_finite() && t >= 0.0 && (!method.is_test() || t <= 1.0);
    if ok {
        Ok(())
    } else if method.is_test() {
        Err(AlgoError::config(
            key,
            format!(
                "{t} is not a p-value threshold in [0, 1] for {}",
                method.name()
            ),
        ))
    } else {
        Err(AlgoError::config(
            key,
            format!(
                "{t} is not a finite distance threshold >= 0 for {}",
                method.name()
            ),
        ))
    }
}

impl DriftMonitor {
    /// Profiles `reference`: chooses each column's method, fixes bins and
    /// categories, counts the reference.
    pub fn new(config: DriftConfig, reference: &Batch) -> Result<DriftMonitor> {
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
        if !(2..=1000).contains(&config.histogram_bins) {
            return Err(AlgoError::config(
                "histogram_bins",
                format!("{} is not in 2..=1000", config.histogram_bins),
            ));
        }
        if !(config.js_base.is_finite() && config.js_base > 1.0) {
            return Err(AlgoError::config(
                "js_base",
                format!("{} is not a logarithm base > 1", config.js_base),
            ));
        }
        if !(config.psi_epsilon > 0.0 && config.psi_epsilon < 1.0) {
            return Err(AlgoError::config(
                "psi_epsilon",
                format!("{} is not in (0, 1)", config.psi_epsilon),
            ));
        }
        if reference.rows() == 0 {
            return Err(AlgoError::Reference {
                column: None,
                message: "the reference has no rows to compare with".into(),
            });
        }
        let all_method = match &config.method {
            Some(m) => parse_method("method", m)?,
            None => None,
        };
        let names = match &config.columns {
            Some(names) => {
                check_names("columns", names)?;
                names.clone()
            }
            None => reference.columns().iter().map(|c| c.name.clone()).collect(),
        };
        for key in config.column.keys() {
            if !names.contains(key) {
                return Err(AlgoError::config(
                    &format!("column.{key}"),
                    format!("`{key}` is not a watched column"),
                ));
            }
        }
        let columns = names
            .into_iter()
            .map(|name| {
                let col = reference.require(&name).map_err(AlgoError::in_reference)?;
                let over = config.column.get(&name).cloned().unwrap_or_default();
                let method = match &over.method {
                    Some(m) => parse_method(&format!("column.{name}.method"), m)?,
                    None => all_method,
                };
                watch(&name, col, method, &config)?.with_threshold(
                    over.threshold.or(config.threshold),
                    if over.threshold.is_some() {
                        format!("column.{name}.threshold")
                    } else {
                        "threshold".into()
                    },
                )
            })
            .collect::<Result<_>>()?;
        Ok(DriftMonitor {
            drift_share: config.drift_share,
            js_base: config.js_base,
            psi_epsilon: config.psi_epsilon,
            columns,
            rows: 0,
            reference_rows: reference.rows() as u64,
        })
    }

    /// Rows of the reference.
    pub fn reference_rows(&self) -> u64 {
        self.reference_rows
    }

    /// Rows observed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Each watched column's method, in column order.
    pub fn methods(&self) -> Vec<(String, Method)> {
        self.columns
            .iter()
            .map(|w| (w.name.clone(), w.method))
            .collect()
    }

    /// Adds one batch. Checks every column first, so a batch that is refused
    /// leaves the state untouched.
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
            count(&w.layout, &w.display_edges, col, &mut w.current);
        }
        self.rows += batch.rows() as u64;
        Ok(())
    }

    /// Per-column results on everything observed.
    pub fn columns(&self) -> Vec<ColumnDrift> {
        self.columns.iter().map(|w| self.column_drift(w)).collect()
    }

    /// [`DriftMonitor::columns`] for a monitor that is done: sorts the kept
    /// values in place rather than a copy of them (a million values per
    /// column in `keel drift`).
    pub fn into_columns(mut self) -> Vec<ColumnDrift> {
        for w in &mut self.columns {
            if matches!(w.layout, Layout::Values { .. }) {
                stats::sort_values(&mut w.current.values);
            }
        }
        self.columns()
    }

    fn column_drift(&self, w: &Watched) -> ColumnDrift {
        let present = w.current.present();
        // Raw values, sorted once for the statistic and the histogram. Order
        // does not matter to either, so values sorted in place by
        // `into_columns` are used as they are.
        let sorted: Option<std::borrow::Cow<'_, [f64]>> = match &w.layout {
            Layout::Values { .. } if w.current.values.is_sorted() => {
                Some(std::borrow::Cow::Borrowed(&w.current.values))
            }
            Layout::Values { .. } => {
                let mut c = w.current.values.clone();
                stats::sort_values(&mut c);
                Some(std::borrow::Cow::Owned(c))
            }
            _ => None,
        };
        let (statistic, p_value) = if present == 0 {
            (None, None)
        } else {
            let (s, p) = self.statistic(w, sorted.as_deref());
            (Some(s), p)
        };
        let verdict = if w.method.is_test() {
            p_value
        } else {
            statistic
        };
        let share = |present: u64, missing: u64| {
            let total = present + missing;
            if total == 0 {
                0.0
            } else {
                missing as f64 / total as f64
            }
        };
        // The raw reference lives sorted in the layout, not in the counts.
        let reference_present = match &w.layout {
            Layout::Values { reference } => reference.len() as u64,
            _ => w.reference.present(),
        };
        ColumnDrift {
            column: w.name.clone(),
            kind: match w.layout {
                Layout::Categories { .. } => "categorical",
                _ => "numeric",
            },
            method: w.method,
            statistic,
            p_value,
            threshold: w.threshold,
            drift: verdict.is_some_and(|v| w.method.drifted(v, w.threshold)),
            reference_missing_share: share(reference_present, w.reference.missing),
            current_missing_share: share(present, w.current.missing),
            histogram: histogram(w, sorted.as_deref()),
        }
    }

    /// The statistic and, for tests, the p-value; the current side is not empty.
    fn statistic(&self, w: &Watched, sorted: Option<&[f64]>) -> (f64, Option<f64>) {
        if let (Layout::Values { reference }, Some(cur)) = (&w.layout, sorted) {
            return match w.method {
                Method::Ks => {
                    let t = stats::ks_2samp(reference, cur, KsMode::Auto);
                    (t.statistic, Some(t.p_value))
                }
                _ => (stats::wasserstein_normed(reference, cur), None),
            };
        }
        let (r, c) = aligned(&w.reference, &w.current);
        match w.method {
            Method::ChiSquare => {
                let t = stats::chi2_contingency(&r, &c);
                (t.statistic, Some(t.p_value))
            }
            Method::Z => {
                // The share of the first reference bucket against all others.
                let (nr, nc) = (r.iter().sum::<u64>(), c.iter().sum::<u64>());
                let t = stats::z_test_proportions(
                    r.first().copied().unwrap_or(0),
                    nr,
                    c.first().copied().unwrap_or(0),
                    nc,
                );
                (t.statistic, Some(t.p_value))
            }
            m => {
                let p: Vec<f64> = r.iter().map(|x| *x as f64).collect();
                let q: Vec<f64> = c.iter().map(|x| *x as f64).collect();
                let v = match m {
                    Method::Psi => stats::psi(&p, &q, self.psi_epsilon),
                    Method::JensenShannon => stats::jensen_shannon(&p, &q, self.js_base),
                    Method::Hellinger => stats::hellinger(&p, &q),
                    _ => stats::linf(&p, &q),
                };
                (v, None)
            }
        }
    }

    /// Reports on everything observed since creation or the last restore.
    pub fn report(&self) -> Report {
        report_of(&self.columns(), self.rows, self.drift_share)
    }

    /// The share of drifted columns at which the dataset drifts.
    pub fn drift_share(&self) -> f64 {
        self.drift_share
    }
}

/// The report on `columns` (of monitors that together watched `rows` rows):
/// one metric per column, its missing share, and the dataset verdict.
pub fn report_of(columns: &[ColumnDrift], rows: u64, drift_share: f64) -> Report {
    let mut metrics = Vec::new();
    let mut drifted = Vec::new();
    let mut unobserved = Vec::new();
    for c in columns {
        match c.statistic {
            None => unobserved.push(c.column.as_str()),
            Some(value) => {
                if c.drift {
                    drifted.push(c.column.as_str());
                }
                metrics.push(Metric {
                    column: Some(c.column.clone()),
                    name: c.method.name().into(),
                    value,
                    threshold: Some(c.threshold),
                    p_value: c.p_value,
                    alert: c.drift,
                });
            }
        }
        metrics.push(Metric {
            column: Some(c.column.clone()),
            name: "missing-share".into(),
            value: c.current_missing_share,
            threshold: None,
            p_value: None,
            alert: false,
        });
    }
    let evaluated = columns.len() - unobserved.len();
    let share = if evaluated == 0 {
        0.0
    } else {
        drifted.len() as f64 / evaluated as f64
    };
    let alert = evaluated > 0 && share >= drift_share;
    metrics.push(Metric {
        column: None,
        name: "share-drifted".into(),
        value: share,
        threshold: Some(drift_share),
        p_value: None,
        alert,
    });
    let mut summary = if evaluated == 0 {
        format!(
            "no values observed yet in any of the {} columns",
            columns.len()
        )
    } else {
        let cmp = if alert { ">=" } else { "<" };
        let mut s = format!(
            "{} of {evaluated} columns drifted (share {share:.2} {cmp} {})",
            drifted.len(),
            drift_share
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
        rows,
        alert,
        metrics,
        summary,
    }
}

impl DriftMonitor {
    /// The observed state (not the reference) as versioned JSON.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let snapshot = Snapshot {
            version: SNAPSHOT_VERSION,
            rows: self.rows,
            columns: self
                .columns
                .iter()
                .map(|w| ColumnState {
                    name: w.name.clone(),
                    method: w.method,
                    buckets: w.layout.buckets(),
                    counts: w.current.clone(),
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
            let c = &s.counts;
            let raw = matches!(w.layout, Layout::Values { .. });
            let fits = s.name == w.name
                && s.method == w.method
                && s.buckets == w.layout.buckets()
                && c.bins.len() == w.layout.buckets()
                && (raw || c.values.is_empty())
                && (c.display.is_empty() || c.display.len() == w.display_edges.len() + 1)
                && (!matches!(w.layout, Layout::Bins { .. }) || c.unseen.is_empty());
            if !fits {
                return Err(state(format!(
                    "snapshot column `{}` ({}) does not match column `{}` ({}) of this monitor's reference",
                    s.name,
                    s.method.name(),
                    w.name,
                    w.method.name()
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

impl Watched {
    fn with_threshold(mut self, threshold: Option<f64>, key: String) -> Result<Watched> {
        if let Some(t) = threshold {
            check_threshold(&key, self.method, t)?;
            self.threshold = t;
        }
        Ok(self)
    }
}

impl Layout {
    /// Count buckets (0 for raw values).
    fn buckets(&self) -> usize {
        match self {
            Layout::Values { .. } => 0,
            Layout::Bins { edges } => edges.len() + 1,
            Layout::Discrete { values } => values.len(),
            Layout::Categories { categories, .. } => categories.len(),
        }
    }
}

/// Profiles one reference column under `method` (`None`: automatic).
fn watch(
    name: &str,
    col: &Column,
    method: Option<Method>,
    config: &DriftConfig,
) -> Result<Watched> {
    let (kind, layout) = reference_layout(col)?;
    let (n, distinct) = sample_size(&layout, col);
    if n == 0 {
        return Err(AlgoError::reference(
            name,
            format!("column `{name}` has no values (all null, NaN or infinite)"),
        ));
    }
    let method = method.unwrap_or_else(|| stats::auto_method(kind, n, distinct));
    let layout = method_layout(name, col, kind, method, distinct, layout, config)?;
    let display_edges = display_edges(&layout, col, config)?;
    let mut w = Watched {
        name: name.to_owned(),
        method,
        threshold: method.default_threshold(),
        layout,
        display_edges,
        reference: Counts::default(),
        current: Counts::default(),
    };
    w.reference = Counts::empty(&w);
    w.current = Counts::empty(&w);
    let mut reference = Counts::empty(&w);
    count(&w.layout, &w.display_edges, col, &mut reference);
    // The raw reference lives in the layout, sorted; no copy in the counts.
    reference.values = Vec::new();
    w.reference = reference;
    Ok(w)
}

/// A reference column's kind and its values as the statistics need them:
/// distinct categories (sorted) or the finite numbers (sorted).
fn reference_layout(col: &Column) -> Result<(ColumnKind, Layout)> {
    Ok(match &col.data {
        ColumnData::String(v) => {
            // Distinct values first: sorting a million strings to dedup them is slow.
            let distinct: FxHashSet<&str> = v
                .iter()
                .enumerate()
                .filter(|(i, _)| col.is_valid(*i))
                .map(|(_, s)| s.as_str())
                .collect();
            let mut c: Vec<String> = distinct.into_iter().map(str::to_owned).collect();
            c.sort_unstable();
            (ColumnKind::Categorical, categories(false, c))
        }
        ColumnData::Bool(v) => {
            let mut seen = [false; 2];
            for (i, b) in v.iter().enumerate() {
                if col.is_valid(i) {
                    seen[usize::from(*b)] = true;
                }
            }
            let c = [false, true]
                .into_iter()
                .filter(|b| seen[usize::from(*b)])
                .map(|b| bool_text(b).to_owned())
                .collect();
            (ColumnKind::Categorical, categories(true, c))
        }
        _ => {
            let values = col.numeric().map_err(AlgoError::in_reference)?;
            let mut finite: Vec<f64> = values
                .iter()
                .enumerate()
                .filter(|(i, x)| col.is_valid(*i) && x.is_finite())
                .map(|(_, x)| *x)
                .collect();
            stats::sort_values(&mut finite);
            (ColumnKind::Numeric, Layout::Values { reference: finite })
        }
    })
}

/// How many reference values there are, and how many distinct.
fn sample_size(layout: &Layout, col: &Column) -> (u64, u64) {
    match layout {
        Layout::Values { reference } => (
            reference.len() as u64,
            reference.windows(2).filter(|w| w[0] != w[1]).count() as u64
                + u64::from(!reference.is_empty()),
        ),
        Layout::Categories { categories, .. } => {
            let n = (0..col.len()).filter(|i| col.is_valid(*i)).count() as u64;
            (n, categories.len() as u64)
        }
        _ => (0, 0),
    }
}

/// The buckets `method` compares in: the raw sorted values (KS,
/// Wasserstein), the distinct values of a discrete numeric column, quantile
/// bins of a continuous one, or the categories.
fn method_layout(
    name: &str,
    col: &Column,
    kind: ColumnKind,
    method: Method,
    distinct: u64,
    layout: Layout,
    config: &DriftConfig,
) -> Result<Layout> {
    let key = format!("column.{name}.method");
    let layout = match (kind, method, layout) {
        (ColumnKind::Categorical, Method::Ks | Method::Wasserstein, _) => {
            return Err(AlgoError::config(
                &key,
                format!(
                    "{} compares numbers; `{name}` is {}",
                    method.name(),
                    col.data_type().as_str()
                ),
            ));
        }
        (_, Method::Ks | Method::Wasserstein, l) => l,
        (ColumnKind::Numeric, _, Layout::Values { reference }) => {
            if distinct as usize <= DISCRETE_MAX {
                let mut values = reference;
                values.dedup();
                Layout::Discrete { values }
            } else {
                let mut edges: Vec<f64> = (1..config.bins)
                    .filter_map(|k| quantile(&reference, k as f64 / config.bins as f64))
                    .collect();
                edges.sort_unstable_by(f64::total_cmp);
                edges.dedup();
                Layout::Bins { edges }
            }
        }
        (_, _, l) => l,
    };
    if method == Method::Z && layout.buckets() > 2 {
        return Err(AlgoError::config(
            &key,
            format!(
                "z compares two proportions; `{name}` has {} distinct reference values",
                layout.buckets()
            ),
        ));
    }
    Ok(layout)
}

/// Edges of the histogram drawn for a numeric column: `histogram_bins`
/// equal bins over the reference's finite range.
fn display_edges(layout: &Layout, col: &Column, config: &DriftConfig) -> Result<Vec<f64>> {
    Ok(match layout {
        Layout::Categories { .. } => Vec::new(),
        _ => {
            let v = col.numeric().map_err(AlgoError::in_reference)?;
            let (lo, hi) = v
                .iter()
                .enumerate()
                .filter(|(i, x)| col.is_valid(*i) && x.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, x)| {
                    (lo.min(*x), hi.max(*x))
                });
            let (lo, hi) = if lo < hi {
                (lo, hi)
            } else {
                (lo - 0.5, lo + 0.5)
            };
            let k = config.histogram_bins;
            (0..=k)
                .map(|i| lo + (hi - lo) * i as f64 / k as f64)
                .collect()
        }
    })
}

impl Counts {
    fn empty(w: &Watched) -> Counts {
        Counts {
            bins: vec![0; w.layout.buckets()],
            display: if w.display_edges.is_empty() {
                Vec::new()
            } else {
                vec![0; w.display_edges.len() + 1]
            },
            ..Counts::default()
        }
    }
}

fn categories(bool: bool, categories: Vec<String>) -> Layout {
    let index = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i))
        .collect();
    Layout::Categories {
        bool,
        categories,
        index,
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
    match layout {
        Layout::Categories { bool, .. } => {
            let expected = if *bool {
                DataType::Bool
            } else {
                DataType::String
            };
            if t == expected {
                Ok(())
            } else {
                Err(DataError::TypeMismatch {
                    column: col.name.clone(),
                    expected,
                    found: t,
                })
            }
        }
        _ if t.is_numeric() => Ok(()),
        _ => Err(DataError::NotNumeric {
            column: col.name.clone(),
            found: t,
        }),
    }
}

/// Adds a column's values to `counts`; the column's type was checked.
fn count(layout: &Layout, display: &[f64], col: &Column, counts: &mut Counts) {
    match (layout, &col.data) {
        (Layout::Categories { index, .. }, ColumnData::String(values)) => {
            for (i, s) in values.iter().enumerate() {
                if !col.is_valid(i) {
                    counts.missing += 1;
                } else {
                    add_category(index, s, counts);
                }
            }
        }
        (Layout::Categories { index, .. }, ColumnData::Bool(values)) => {
            for (i, b) in values.iter().enumerate() {
                if !col.is_valid(i) {
                    counts.missing += 1;
                } else {
                    add_category(index, bool_text(*b), counts);
                }
            }
        }
        (Layout::Categories { .. }, _) => {}
        (numeric, _) => {
            let Some(values) = col.as_f64() else { return };
            let all_valid = col.validity.is_none();
            for (i, &x) in values.iter().enumerate() {
                if !(all_valid || col.is_valid(i)) || !x.is_finite() {
                    counts.missing += 1;
                    continue;
                }
                // Raw values get their display histogram from the sorted
                // values at report time instead of a lookup per value here.
                if !matches!(numeric, Layout::Values { .. })
                    && let Some(slot) =
                        display_slot(display, x).and_then(|s| counts.display.get_mut(s))
                {
                    *slot += 1;
                }
                match numeric {
                    Layout::Values { .. } => counts.values.push(x),
                    Layout::Bins { edges } => {
                        if let Some(n) = counts.bins.get_mut(edges.partition_point(|e| *e < x)) {
                            *n += 1;
                        }
                    }
                    Layout::Discrete { values } => match values.iter().position(|v| *v == x) {
                        Some(k) => counts.bins[k] += 1,
                        None => *counts.unseen.entry(number_key(x)).or_default() += 1,
                    },
                    Layout::Categories { .. } => {}
                }
            }
        }
    }
}

/// Bucket of the display histogram: bins `0..k`, then `k` below, `k + 1` above.
/// Bin `i` holds `edges[i] <= x < edges[i + 1]`, the last bin also `x == edges[k]`.
fn display_slot(edges: &[f64], x: f64) -> Option<usize> {
    let k = edges.len().checked_sub(1)?;
    if x < edges[0] {
        return Some(k);
    }
    if x > edges[k] {
        return Some(k + 1);
    }
    Some(
        edges
            .partition_point(|e| *e <= x)
            .saturating_sub(1)
            .min(k - 1),
    )
}

/// The display counts ([`display_slot`]'s buckets) of sorted values.
fn display_of_sorted(edges: &[f64], sorted: &[f64]) -> Vec<u64> {
    let Some(k) = edges.len().checked_sub(1).filter(|k| *k > 0) else {
        return Vec::new();
    };
    let below = |e: f64| sorted.partition_point(|v| *v < e) as u64;
    let mut out = Vec::with_capacity(k + 2);
    for i in 0..k {
        let hi = if i + 1 == k {
            sorted.partition_point(|v| *v <= edges[k]) as u64
        } else {
            below(edges[i + 1])
        };
        out.push(hi - below(edges[i]));
    }
    out.push(below(edges[0]));
    out.push(sorted.len() as u64 - sorted.partition_point(|v| *v <= edges[k]) as u64);
    out
}

/// Text key of a numeric value unseen in the reference (shortest round-trip form).
fn number_key(x: f64) -> String {
    format!("{x}")
}

fn add_category(index: &FxHashMap<String, usize>, key: &str, counts: &mut Counts) {
    match index.get(key).and_then(|k| counts.bins.get_mut(*k)) {
        Some(n) => *n += 1,
        None => *counts.unseen.entry(key.to_owned()).or_default() += 1,
    }
}

/// Reference and current counts over the same buckets: the layout's, then
/// the current data's unseen ones (reference count 0).
fn aligned(reference: &Counts, current: &Counts) -> (Vec<u64>, Vec<u64>) {
    let mut r = reference.bins.clone();
    let mut c = current.bins.clone();
    for n in current.unseen.values() {
        r.push(0);
        c.push(*n);
    }
    (r, c)
}

fn histogram(w: &Watched, sorted: Option<&[f64]>) -> Histogram {
    match &w.layout {
        // A handful of numeric values reads best as one bar per value.
        Layout::Discrete { values } => {
            let mut all: Vec<String> = values.iter().map(|v| number_key(*v)).collect();
            all.extend(w.current.unseen.keys().cloned());
            let (reference, current) = aligned(&w.reference, &w.current);
            Histogram::Categorical {
                categories: all,
                reference,
                current,
            }
        }
        Layout::Categories { categories, .. } => {
            let mut all = categories.clone();
            all.extend(w.current.unseen.keys().cloned());
            let (reference, current) = aligned(&w.reference, &w.current);
            Histogram::Categorical {
                categories: all,
                reference,
                current,
            }
        }
        _ => {
            let k = w.display_edges.len().saturating_sub(1);
            let (ref_display, cur_display) = match (&w.layout, sorted) {
                (Layout::Values { reference }, Some(cur)) => (
                    display_of_sorted(&w.display_edges, reference),
                    display_of_sorted(&w.display_edges, cur),
                ),
                (Layout::Values { reference }, None) => {
                    (display_of_sorted(&w.display_edges, reference), Vec::new())
                }
                _ => (w.reference.display.clone(), w.current.display.clone()),
            };
            let split = |d: &Vec<u64>| {
                (
                    d.get(..k).map(<[u64]>::to_vec).unwrap_or_default(),
                    d.get(k).copied().unwrap_or(0),
                    d.get(k + 1).copied().unwrap_or(0),
                )
            };
            let (reference, reference_below, reference_above) = split(&ref_display);
            let (current, current_below, current_above) = split(&cur_display);
            Histogram::Numeric {
                edges: w.display_edges.clone(),
                reference,
                current,
                reference_below,
                reference_above,
                current_below,
                current_above,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn cfg(json: &str) -> DriftConfig {
        serde_json::from_str(json).unwrap()
    }

    /// x = 1..=10 (plus a null and an infinity), c = 7 a / 4 b (plus a null).
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

    const PSI_LINF: &str = r#"{"bins":4,"column":{"x":{"method":"psi","threshold":0.2},"c":{"method":"linf","threshold":0.1}}}"#;

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
    fn automatic_methods_follow_type_distinct_values_and_reference_size() {
        let m = DriftMonitor::new(DriftConfig::default(), &reference()).unwrap();
        // 10 values, small reference: KS; 2 categories: Z.
        assert_eq!(
            m.methods(),
            vec![("x".into(), Method::Ks), ("c".into(), Method::Z)]
        );
        let few = Batch::from_columns(vec![
            Column::new("n", ColumnData::S64(vec![1, 2, 3, 1, 2, 3])),
            Column::from_opt_str(
                "s",
                &[Some("a"), Some("b"), Some("c"), Some("a"), None, None],
            ),
            Column::new(
                "b",
                ColumnData::Bool(vec![true, false, true, true, false, true]),
            ),
        ])
        .unwrap();
        let m = DriftMonitor::new(DriftConfig::default(), &few).unwrap();
        assert_eq!(
            m.methods(),
            vec![
                ("n".into(), Method::ChiSquare),
                ("s".into(), Method::ChiSquare),
                ("b".into(), Method::Z)
            ]
        );
        let big = Batch::from_columns(vec![
            Column::new("x", ColumnData::F64((0..2000).map(f64::from).collect())),
            Column::new("k", ColumnData::S64((0..2000).map(|i| i % 4).collect())),
            Column::new(
                "s",
                ColumnData::String((0..2000).map(|i| format!("c{}", i % 7)).collect()),
            ),
        ])
        .unwrap();
        let m = DriftMonitor::new(DriftConfig::default(), &big).unwrap();
        assert_eq!(
            m.methods(),
            vec![
                ("x".into(), Method::Wasserstein),
                ("k".into(), Method::JensenShannon),
                ("s".into(), Method::JensenShannon)
            ]
        );
        // Overrides win over the automatic choice.
        let m = DriftMonitor::new(
            cfg(r#"{"method":"hellinger","column":{"x":{"method":"ks"}}}"#),
            &big,
        )
        .unwrap();
        assert_eq!(
            m.methods(),
            vec![
                ("x".into(), Method::Ks),
                ("k".into(), Method::Hellinger),
                ("s".into(), Method::Hellinger)
            ]
        );
    }

    #[test]
    fn report_with_hand_computed_psi_and_linf() {
        let mut m = DriftMonitor::new(cfg(PSI_LINF), &reference()).unwrap();
        m.observe(&current()).unwrap();
        let r = m.report();
        assert_eq!(r.rows, 8);
        // quartiles of 1..=10: 3.25, 5.5, 7.75; x current: 1, 1.5, 2, 2 | - | - | 9, 30
        let p = |c: f64, r: f64| (c - r) * (c / r).ln();
        let expected_psi =
            p(4.0 / 6.0, 0.3) + p(EPSILON, 0.2) + p(EPSILON, 0.2) + p(2.0 / 6.0, 0.3);
        assert!((r.metrics[0].value - expected_psi).abs() < 1e-12);
        assert_eq!(
            (r.metrics[0].name.as_str(), r.metrics[0].alert),
            ("psi", true)
        );
        assert_eq!(
            (r.metrics[1].name.as_str(), r.metrics[1].value),
            ("missing-share", 2.0 / 8.0)
        );
        // c current (7 values): a 1/7, b 4/7, z 2/7 vs a 7/11, b 4/11, z 0
        let expected_linf = (7.0f64 / 11.0 - 1.0 / 7.0).abs();
        assert!((r.metrics[2].value - expected_linf).abs() < 1e-12);
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
        let cols = m.columns();
        assert_eq!(
            cols[1].histogram,
            Histogram::Categorical {
                categories: vec!["a".into(), "b".into(), "z".into()],
                reference: vec![7, 4, 0],
                current: vec![1, 4, 2],
            }
        );
        assert_eq!(cols[0].reference_missing_share, 2.0 / 12.0);
    }

    #[test]
    fn tests_report_p_values_and_drift_when_p_is_small() {
        let mut m = DriftMonitor::new(DriftConfig::default(), &reference()).unwrap();
        m.observe(&current()).unwrap();
        let cols = m.columns();
        // KS on the finite values, as stats computes it directly.
        let mut r: Vec<f64> = (1..=10).map(f64::from).collect();
        stats::sort_values(&mut r);
        let mut c = vec![1.0, 1.5, 2.0, 9.0, 30.0, 2.0];
        stats::sort_values(&mut c);
        let ks = stats::ks_2samp(&r, &c, KsMode::Auto);
        assert_eq!(cols[0].method, Method::Ks);
        assert_eq!(cols[0].statistic, Some(ks.statistic));
        assert_eq!(cols[0].p_value, Some(ks.p_value));
        assert_eq!(cols[0].threshold, 0.05);
        assert_eq!(cols[0].drift, ks.p_value <= 0.05);
        // Z on c: share of `a` (first reference category) 7/11 vs 1/7 (z is unseen: not `a`).
        let z = stats::z_test_proportions(7, 11, 1, 7);
        assert_eq!(cols[1].method, Method::Z);
        assert_eq!(cols[1].statistic, Some(z.statistic));
        assert_eq!(cols[1].p_value, Some(z.p_value));
        let r = m.report();
        assert_eq!(r.metrics[0].p_value, Some(ks.p_value));
        assert_eq!(r.metrics[0].value, ks.statistic);
    }

    #[test]
    fn numeric_histograms_span_the_reference_and_count_outliers() {
        let mut m = DriftMonitor::new(cfg(r#"{"histogram_bins":3}"#), &reference()).unwrap();
        m.observe(&current()).unwrap();
        let Histogram::Numeric {
            edges,
            reference,
            current,
            current_above,
            current_below,
            ..
        } = &m.columns()[0].histogram
        else {
            panic!("numeric column")
        };
        assert_eq!(edges, &vec![1.0, 4.0, 7.0, 10.0]);
        assert_eq!(reference, &vec![3, 3, 4]);
        assert_eq!(current, &vec![4, 0, 1]);
        assert_eq!((*current_below, *current_above), (0, 1));
    }

    #[test]
    fn identical_data_does_not_drift() {
        for method in [
            "auto",
            "psi",
            "jensenshannon",
            "hellinger",
            "linf",
            "chisquare",
            "wasserstein",
            "ks",
        ] {
            let c = if method == "wasserstein" || method == "ks" {
                format!(r#"{{"columns":["x"],"method":"{method}"}}"#)
            } else {
                format!(r#"{{"method":"{method}"}}"#)
            };
            let mut m = DriftMonitor::new(cfg(&c), &reference()).unwrap();
            m.observe(&reference()).unwrap();
            let r = m.report();
            assert!(r.metrics.iter().all(|x| !x.alert), "{method}: {r:?}");
        }
    }

    #[test]
    fn batch_split_invariance() {
        let all = current();
        for config in [PSI_LINF, "{}", r#"{"method":"jensenshannon"}"#] {
            let mut whole = DriftMonitor::new(cfg(config), &reference()).unwrap();
            whole.observe(&all).unwrap();
            for cuts in [
                vec![0, 8],
                vec![0, 1, 8],
                vec![0, 3, 5, 8],
                vec![0, 0, 2, 2, 7, 8],
            ] {
                let mut split = DriftMonitor::new(cfg(config), &reference()).unwrap();
                for w in cuts.windows(2) {
                    split.observe(&all.slice(w[0], w[1])).unwrap();
                }
                assert_eq!(split.report(), whole.report());
                assert_eq!(split.columns(), whole.columns());
                assert_eq!(split.snapshot().unwrap(), whole.snapshot().unwrap());
            }
        }
    }

    #[test]
    fn display_counts_of_sorted_values_match_per_value_slots() {
        let edges = [1.0, 4.0, 7.0, 10.0];
        let mut values: Vec<f64> = (0..200).map(|i| f64::from(i % 23) * 0.5 - 0.5).collect();
        values.extend([1.0, 4.0, 7.0, 10.0, 10.5, -3.0]);
        let mut per_value = vec![0u64; edges.len() + 1];
        for x in &values {
            per_value[display_slot(&edges, *x).unwrap()] += 1;
        }
        stats::sort_values(&mut values);
        assert_eq!(display_of_sorted(&edges, &values), per_value);
    }

    #[test]
    fn into_columns_equals_columns() {
        for config in [
            PSI_LINF,
            "{}",
            r#"{"method":"wasserstein","columns":["x"]}"#,
        ] {
            let mut m = DriftMonitor::new(cfg(config), &reference()).unwrap();
            m.observe(&current()).unwrap();
            let cols = m.columns();
            assert_eq!(m.into_columns(), cols);
        }
    }

    #[test]
    fn nothing_observed_and_empty_batches() {
        let mut m = DriftMonitor::new(cfg(PSI_LINF), &reference()).unwrap();
        m.observe(&current().slice(0, 0)).unwrap();
        let r = m.report();
        assert_eq!((r.rows, r.alert), (0, false));
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
        for config in [PSI_LINF, "{}"] {
            let mut m = DriftMonitor::new(cfg(config), &reference()).unwrap();
            m.observe(&current()).unwrap();
            let bytes = m.snapshot().unwrap();
            let mut fresh = DriftMonitor::new(cfg(config), &reference()).unwrap();
            fresh.restore(&bytes).unwrap();
            assert_eq!(fresh, m);
            // restoring continues from the snapshot
            fresh.observe(&current()).unwrap();
            m.observe(&current()).unwrap();
            assert_eq!(fresh.report(), m.report());
        }
        let mut m = DriftMonitor::new(cfg(PSI_LINF), &reference()).unwrap();
        m.observe(&current()).unwrap();
        let bytes = m.snapshot().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"version":2,"rows":8,"columns":[{"name":"x","method":"psi","buckets":4,"bins":[4,0,0,2]"#),
            "{text}"
        );
        let e = m.restore(b"nonsense").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::State);
        let e = m
            .restore(text.replace(r#""version":2"#, r#""version":1"#).as_bytes())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid state: snapshot version 1 is not the supported version 2"
        );
        for other in [
            r#"{"bins":5,"column":{"x":{"method":"psi"},"c":{"method":"linf"}}}"#,
            "{}",
        ] {
            let mut other = DriftMonitor::new(cfg(other), &reference()).unwrap();
            let before = other.clone();
            assert!(other.restore(&bytes).is_err());
            assert_eq!(other, before);
        }
    }

    #[test]
    fn errors_name_the_key_or_column() {
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
        let e = DriftMonitor::new(cfg(r#"{"method":"t-test"}"#), &reference()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid config `method`: `t-test` is not a method"),
            "{e}"
        );
        let e = DriftMonitor::new(cfg(r#"{"column":{"c":{"method":"ks"}}}"#), &reference())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config `column.c.method`: ks compares numbers; `c` is string"
        );
        let e =
            DriftMonitor::new(cfg(r#"{"column":{"x":{"method":"z"}}}"#), &reference()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid config `column.x.method`: z compares two proportions"),
            "{e}"
        );
        let e = DriftMonitor::new(cfg(r#"{"column":{"x":{"threshold":2}}}"#), &reference())
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid config `column.x.threshold`: 2 is not a p-value threshold"),
            "{e}"
        );
        let e = DriftMonitor::new(cfg(r#"{"column":{"y":{"threshold":0.1}}}"#), &reference())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config `column.y`: `y` is not a watched column"
        );
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
    }
}
