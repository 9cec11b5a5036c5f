//! Bias monitor: how each group of a sensitive attribute (the `group`
//! column) is represented in a stream of batches compared with the
//! reference, and how often each group gets the positive prediction
//! compared with a privileged group (disparate impact, statistical parity).
//!
//! The state is counts only (rows, rated rows and positives per group), so
//! observing batch by batch gives exactly the result of observing everything
//! at once, and snapshots are small. Definitions:
//!
//! - **Groups** are the distinct values of the group column (string, bool or
//!   s64; bools read `false`/`true`, integers in decimal). The reference's
//!   groups come first in their natural order (strings by code point,
//!   integers numerically, `false` before `true`), then groups *unseen* in
//!   the reference (by text), then the null group. Metrics name a group as
//!   `<group column>=<value>`, the null group as `<group column>=(null)`.
//! - **Positive**: a bool prediction is positive when `true`; a numeric one
//!   (f64, f32, s64) when `>= positive_threshold` (default 0.5); a string one
//!   when equal to `positive` (required for string predictions, refused for
//!   others).
//! - **Nulls**: a null group value counts as its own group for shares (it has
//!   a reference share like any other) but gets no rates. A null or NaN
//!   prediction counts in its group's share and is left out of every rate;
//!   the share of such rows is the dataset metric `null-prediction-share`.
//! - `share` = the group's rows / all rows observed; the reference share is
//!   the same over the reference. `share-change` = share − reference share
//!   (so the reference share is `share − share-change`).
//! - `positive-rate` = positives / rated rows (rows with a prediction).
//! - **Privileged group**: the configured `privileged` value (which must be a
//!   group of the reference), or else the group with the highest positive
//!   rate in the data observed so far among groups with at least
//!   `min_group_rows` rated rows (among all groups with a rate if none has
//!   that many); ties go to the first in group order. With the default, the
//!   privileged group can change as data arrives, and every disparate impact
//!   is at most 1.
//! - `disparate-impact` = rate / privileged rate (left out when the
//!   privileged rate is 0); `parity-difference` = rate − privileged rate.
//!   Both are reported for every non-null group with a rate other than the
//!   privileged one.
//!
//! Verdicts (a value exactly at a threshold is not an alert; comparisons
//! allow [`SLACK`] for rounding so that, e.g., 0.6 − 0.5 is not beyond 0.1):
//!
//! - `disparate-impact` alerts below `disparate_impact_min` (default 0.8,
//!   the four-fifths rule); `parity-difference` when `|d| >
//!   parity_difference_max` (default 0.1). Both are judged only when the
//!   group and the privileged group each have at least `min_group_rows`
//!   (default 30) rated rows; otherwise they are still reported, with no
//!   threshold and no alert, and the summary says which groups were not
//!   judged.
//! - `share-change` alerts when `|change| > representation_max` (default
//!   0.1), judged only once at least `min_group_rows` rows were observed in
//!   all: representation is a property of the whole window, so a group that
//!   all but vanished (few rows of its own) is exactly what must alert.
//! - `share` carries the group's representation verdict: its `share-change`
//!   alert, or the group being unseen in the reference (always an alert, at
//!   any size: the model was never shown this population).
//! - The dataset metric `groups-alerting` counts the groups with any alert;
//!   the report alerts when it is at least 1, i.e. when any metric alerts.
//!   The summary names the worst group: the one whose alerting value lies
//!   furthest beyond its threshold (for an unseen group, its share).
//!
//! A metric without a threshold was not judged (informational, or too few rows).

use crate::util::{Keys, bool_text};
use crate::{AlgoError, Result};
use keel_data::{Batch, Column, ColumnData, DataError, DataType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

// Its report: per group (in group order), then the dataset metrics
// (`null-prediction-share`, `groups-alerting`); p-values are always `None`.
pub use crate::report::{Metric, Report};

/// Version written into snapshots; `restore` refuses any other.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Tolerance of threshold comparisons, so that rates computed from counts
/// (0.6 − 0.5 = 0.0999…98, 0.7 − 0.6 = 0.1000…09) are judged as a person
/// computing them by hand would.
pub const SLACK: f64 = 1e-12;

/// Label of the null group in metric columns.
pub const NULL_GROUP: &str = "(null)";

/// Configuration of the bias monitor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BiasConfig {
    /// Column of the sensitive attribute (string, bool or s64).
    pub group: String,
    /// Column of the prediction: bool label, numeric score or string label.
    pub prediction: String,
    /// A numeric prediction is positive when `>=` this (default 0.5).
    #[serde(default)]
    pub positive_threshold: Option<f64>,
    /// The value of a string prediction that counts as positive.
    #[serde(default)]
    pub positive: Option<String>,
    /// The reference group of the ratios; default: the group with the
    /// highest positive rate in the current data.
    #[serde(default)]
    pub privileged: Option<GroupValue>,
    /// Disparate impact below which a group alerts (default 0.8).
    #[serde(default = "default_di")]
    pub disparate_impact_min: f64,
    /// Absolute parity difference above which a group alerts (default 0.1).
    #[serde(default = "default_parity")]
    pub parity_difference_max: f64,
    /// Absolute change of a group's share above which it alerts (default 0.1).
    #[serde(default = "default_representation")]
    pub representation_max: f64,
    /// Rated rows a group needs before its rates are judged (default 30).
    #[serde(default = "default_min_rows")]
    pub min_group_rows: u64,
}

fn default_di() -> f64 {
    0.8
}
fn default_parity() -> f64 {
    0.1
}
fn default_representation() -> f64 {
    0.1
}
fn default_min_rows() -> u64 {
    30
}

/// The default `positive_threshold`.
pub const DEFAULT_POSITIVE_THRESHOLD: f64 = 0.5;

/// A group value in the config, written as the group column's values are:
/// a string, a bool or an integer. Kept as the text groups are matched by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue(pub String);

impl<'de> Deserialize<'de> for GroupValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = GroupValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a group value: a string, a boolean or an integer")
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> core::result::Result<GroupValue, E> {
                Ok(GroupValue(v.to_owned()))
            }
            fn visit_bool<E: serde::de::Error>(
                self,
                v: bool,
            ) -> core::result::Result<GroupValue, E> {
                Ok(GroupValue(bool_text(v).to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> core::result::Result<GroupValue, E> {
                Ok(GroupValue(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> core::result::Result<GroupValue, E> {
                Ok(GroupValue(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// What makes a prediction positive.
#[derive(Debug, Clone, PartialEq)]
enum Positive {
    True,
    AtLeast(f64),
    Equals(String),
}

impl Positive {
    /// Stable text of the rule, compared by `restore`. Floats print in
    /// their shortest round-trip form, so equal thresholds give equal text.
    fn describe(&self) -> String {
        match self {
            Positive::True => "== true".into(),
            Positive::AtLeast(t) => format!(">= {t:?}"),
            Positive::Equals(s) => format!("== {s:?}"),
        }
    }

    /// Per row: `Some(positive?)`, or `None` for a null or NaN prediction.
    fn outcomes(&self, col: &Column) -> core::result::Result<Vec<Option<bool>>, DataError> {
        let valid = |i: usize| col.is_valid(i);
        match (self, &col.data) {
            (Positive::True, ColumnData::Bool(v)) => Ok(v
                .iter()
                .enumerate()
                .map(|(i, b)| valid(i).then_some(*b))
                .collect()),
            (Positive::Equals(p), ColumnData::String(v)) => Ok(v
                .iter()
                .enumerate()
                .map(|(i, s)| valid(i).then(|| s == p))
                .collect()),
            (Positive::AtLeast(t), _) => {
                let v = col.numeric()?;
                Ok(v.iter()
                    .enumerate()
                    .map(|(i, x)| (valid(i) && !x.is_nan()).then_some(*x >= *t))
                    .collect())
            }
            (Positive::True, other) => Err(DataError::TypeMismatch {
                column: col.name.clone(),
                expected: DataType::Bool,
                found: other.data_type(),
            }),
            (Positive::Equals(_), other) => Err(DataError::TypeMismatch {
                column: col.name.clone(),
                expected: DataType::String,
                found: other.data_type(),
            }),
        }
    }
}

/// Counts of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
struct Tally {
    /// Rows of the group.
    rows: u64,
    /// Rows with a (non-null) prediction.
    rated: u64,
    /// Rows predicted positive.
    positive: u64,
}

impl Tally {
    fn rate(&self) -> Option<f64> {
        (self.rated > 0).then(|| self.positive as f64 / self.rated as f64)
    }
}

/// A bias monitor: the reference's group shares and the counts observed since.
#[derive(Debug, Clone, PartialEq)]
pub struct BiasMonitor {
    group: String,
    prediction: String,
    group_type: DataType,
    positive: Positive,
    privileged: Option<String>,
    disparate_impact_min: f64,
    parity_difference_max: f64,
    representation_max: f64,
    min_group_rows: u64,
    /// Reference groups in natural order, with their index and row counts.
    groups: Vec<String>,
    index: HashMap<String, usize>,
    reference: Vec<u64>,
    reference_null: u64,
    reference_rows: u64,
    current: Vec<Tally>,
    unseen: BTreeMap<String, Tally>,
    null_group: Tally,
    rows: u64,
}

/// What the counts of a snapshot mean; `restore` refuses a snapshot whose
/// meaning differs. Thresholds, `privileged` and `min_group_rows` are not
/// part of it: they only change the verdict drawn from the same counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Basis {
    group: String,
    group_type: String,
    prediction: String,
    positive: String,
    reference_groups: Vec<String>,
    reference_rows: Vec<u64>,
    reference_null: u64,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    basis: Basis,
    rows: u64,
    groups: Vec<Tally>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    unseen: BTreeMap<String, Tally>,
    null: Tally,
}

fn check_share(key: &str, v: f64, max: Option<f64>) -> Result<()> {
    let ok = v.is_finite() && v >= 0.0 && max.is_none_or(|m| v <= m);
    if ok {
        return Ok(());
    }
    Err(AlgoError::config(
        key,
        match max {
            Some(m) => format!("{v} is not a number in [0, {m}]"),
            None => format!("{v} is not a finite number >= 0"),
        },
    ))
}

fn check_group_type(col: &Column) -> Result<()> {
    match col.data_type() {
        DataType::String | DataType::Bool | DataType::S64 => Ok(()),
        t => Err(AlgoError::reference(
            &col.name,
            format!(
                "group column `{}` is {t}; a group column must be string, bool or s64",
                col.name
            ),
        )),
    }
}

impl BiasMonitor {
    /// Checks the config against the reference and records its group shares.
    pub fn new(config: BiasConfig, reference: &Batch) -> Result<BiasMonitor> {
        for (key, name) in [("group", &config.group), ("prediction", &config.prediction)] {
            if name.is_empty() {
                return Err(AlgoError::config(key, "is empty; name a column"));
            }
        }
        if config.group == config.prediction {
            return Err(AlgoError::config(
                "prediction",
                format!("names `{}`, the same column as `group`", config.prediction),
            ));
        }
        check_share("disparate_impact_min", config.disparate_impact_min, None)?;
        check_share(
            "parity_difference_max",
            config.parity_difference_max,
            Some(1.0),
        )?;
        check_share("representation_max", config.representation_max, Some(1.0))?;
        if let Some(t) = config.positive_threshold
            && !t.is_finite()
        {
            return Err(AlgoError::config(
                "positive_threshold",
                format!("{t} is not a finite number"),
            ));
        }
        if reference.rows() == 0 {
            return Err(AlgoError::Reference {
                column: None,
                message: "the reference has no rows to take group shares from".into(),
            });
        }

        let g = reference
            .require(&config.group)
            .map_err(AlgoError::in_reference)?;
        check_group_type(g)?;
        let p = reference
            .require(&config.prediction)
            .map_err(AlgoError::in_reference)?;
        let positive = positive_rule(&config, p)?;
        // The reference's predictions must read under the rule, as later
        // batches will.
        positive.outcomes(p).map_err(AlgoError::in_reference)?;

        let keys = Keys::new(g).map_err(AlgoError::in_reference)?;
        let groups = keys.distinct_sorted(g);
        if groups.is_empty() {
            return Err(AlgoError::reference(
                &config.group,
                format!("column `{}` has no group values (all null)", config.group),
            ));
        }
        let index: HashMap<String, usize> = groups
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        let mut counts = vec![0u64; groups.len()];
        let mut nulls = 0u64;
        for i in 0..reference.rows() {
            if !g.is_valid(i) {
                nulls += 1;
            } else if let Some(n) = index
                .get(keys.get(i).as_ref())
                .and_then(|k| counts.get_mut(*k))
            {
                *n += 1;
            }
        }
        let privileged = match &config.privileged {
            None => None,
            Some(GroupValue(v)) if index.contains_key(v) => Some(v.clone()),
            Some(GroupValue(v)) => {
                return Err(AlgoError::config(
                    "privileged",
                    format!(
                        "`{v}` is not a group of `{}` in the reference (groups: {})",
                        config.group,
                        groups.join(", ")
                    ),
                ));
            }
        };
        let current = vec![Tally::default(); groups.len()];
        Ok(BiasMonitor {
            group: config.group,
            prediction: config.prediction,
            group_type: g.data_type(),
            positive,
            privileged,
            disparate_impact_min: config.disparate_impact_min,
            parity_difference_max: config.parity_difference_max,
            representation_max: config.representation_max,
            min_group_rows: config.min_group_rows,
            groups,
            index,
            reference: counts,
            reference_null: nulls,
            reference_rows: reference.rows() as u64,
            current,
            unseen: BTreeMap::new(),
            null_group: Tally::default(),
            rows: 0,
        })
    }

    /// Rows observed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The reference's groups, in group order.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// Adds one batch to the counts. Checks both columns first, so a batch
    /// that is refused leaves the state untouched.
    pub fn observe(&mut self, batch: &Batch) -> Result<()> {
        let g = batch.require(&self.group)?;
        if g.data_type() != self.group_type {
            return Err(DataError::TypeMismatch {
                column: g.name.clone(),
                expected: self.group_type,
                found: g.data_type(),
            }
            .into());
        }
        let outcomes = self.positive.outcomes(batch.require(&self.prediction)?)?;
        let keys = Keys::new(g)?;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let tally = if !g.is_valid(i) {
                &mut self.null_group
            } else {
                let key = keys.get(i);
                match self
                    .index
                    .get(key.as_ref())
                    .and_then(|k| self.current.get_mut(*k))
                {
                    Some(t) => t,
                    None => self.unseen.entry(key.into_owned()).or_default(),
                }
            };
            tally.rows += 1;
            if let Some(positive) = outcome {
                tally.rated += 1;
                tally.positive += u64::from(positive);
            }
        }
        self.rows += batch.rows() as u64;
        Ok(())
    }

    fn label(&self, value: &str) -> String {
        format!("{}={value}", self.group)
    }

    /// Every group with its reference rows (`None` when unseen there) and
    /// current counts, in group order; the null group when either side has it.
    fn entries(&self) -> Vec<Entry<'_>> {
        let mut out: Vec<Entry<'_>> = self
            .groups
            .iter()
            .zip(&self.reference)
            .zip(&self.current)
            .map(|((value, r), t)| Entry {
                value,
                reference: Some(*r),
                tally: *t,
                null: false,
            })
            .collect();
        out.extend(self.unseen.iter().map(|(value, t)| Entry {
            value,
            reference: None,
            tally: *t,
            null: false,
        }));
        if self.reference_null > 0 || self.null_group.rows > 0 {
            out.push(Entry {
                value: NULL_GROUP,
                reference: Some(self.reference_null),
                tally: self.null_group,
                null: true,
            });
        }
        out
    }

    /// The privileged group (its value and counts), as the module doc defines it.
    fn privileged_group<'a>(&self, entries: &[Entry<'a>]) -> Option<(&'a str, Tally, bool)> {
        if let Some(p) = &self.privileged {
            let e = entries.iter().find(|e| !e.null && e.value == p.as_str())?;
            return Some((e.value, e.tally, true));
        }
        let best = |min: u64| {
            entries
                .iter()
                .filter(|e| !e.null && e.tally.rated >= min.max(1))
                .fold(None::<&Entry<'a>>, |best, e| match best {
                    Some(b) if b.tally.rate() >= e.tally.rate() => Some(b),
                    _ => Some(e),
                })
        };
        best(self.min_group_rows)
            .or_else(|| best(1))
            .map(|e| (e.value, e.tally, false))
    }

    /// Reports on everything observed since creation or the last restore.
    pub fn report(&self) -> Report {
        let entries = self.entries();
        let privileged = self.privileged_group(&entries);
        let privileged_rate = privileged.and_then(|(_, t, _)| t.rate());
        let judging = Judging {
            total: self.rows.max(1) as f64,
            reference_total: self.reference_rows.max(1) as f64,
            privileged,
            privileged_rate,
            privileged_judged: privileged.is_some_and(|(_, t, _)| t.rated >= self.min_group_rows),
            representation_judged: self.rows > 0 && self.rows >= self.min_group_rows,
        };
        let mut found = Findings::default();
        for e in &entries {
            self.judge_group(&judging, e, &mut found);
        }
        if self.rows > 0 {
            let rated: u64 = entries.iter().map(|e| e.tally.rated).sum();
            found.metrics.push(Metric {
                column: None,
                name: "null-prediction-share".into(),
                value: (self.rows - rated.min(self.rows)) as f64 / judging.total,
                threshold: None,
                p_value: None,
                alert: false,
            });
        }
        let alert = !found.alerting.is_empty();
        found.metrics.push(Metric {
            column: None,
            name: "groups-alerting".into(),
            value: found.alerting.len() as f64,
            threshold: Some(1.0),
            p_value: None,
            alert,
        });
        let summary = self.summary(&judging, entries.len(), &found);
        Report {
            rows: self.rows,
            alert,
            metrics: found.metrics,
            summary,
        }
    }

    /// One group's metrics (share, share change, and against the privileged
    /// group its positive rate, disparate impact and parity difference), and
    /// why it alerts, if it does.
    fn judge_group(&self, j: &Judging<'_>, e: &Entry<'_>, found: &mut Findings) {
        let column = self.label(e.value);
        let mut reasons: Vec<(f64, String)> = Vec::new();
        let share = e.tally.rows as f64 / j.total;
        let reference_share = e.reference.unwrap_or(0) as f64 / j.reference_total;
        let change = share - reference_share;
        let change_alert =
            j.representation_judged && change.abs() > self.representation_max + SLACK;
        let unseen = e.reference.is_none();
        if unseen {
            reasons.push((share, format!("share {share:.2}, unseen in the reference")));
        } else if change_alert {
            reasons.push((
                change.abs() - self.representation_max,
                format!(
                    "share {share:.2} vs {reference_share:.2} in the reference (±{})",
                    self.representation_max
                ),
            ));
        }
        found.push(&column, "share", share, None, change_alert || unseen);
        let threshold = j.representation_judged.then_some(self.representation_max);
        found.push(&column, "share-change", change, threshold, change_alert);
        if let (false, Some(rate)) = (e.null, e.tally.rate()) {
            found.push(&column, "positive-rate", rate, None, false);
            let is_privileged = j.privileged.is_some_and(|(v, _, _)| v == e.value);
            if let (false, Some(base)) = (is_privileged, j.privileged_rate) {
                self.judge_rate(j, e, &column, rate, base, &mut reasons, found);
            }
        }
        if !reasons.is_empty() {
            reasons.sort_by(|a, b| b.0.total_cmp(&a.0));
            let worst = reasons.first().map_or(0.0, |r| r.0);
            found
                .alerting
                .push((column, worst, reasons.into_iter().map(|r| r.1).collect()));
        }
    }

    /// A group's positive rate against the privileged group's `base`.
    #[allow(clippy::too_many_arguments)]
    fn judge_rate(
        &self,
        j: &Judging<'_>,
        e: &Entry<'_>,
        column: &str,
        rate: f64,
        base: f64,
        reasons: &mut Vec<(f64, String)>,
        found: &mut Findings,
    ) {
        let judged = j.privileged_judged && e.tally.rated >= self.min_group_rows;
        if !judged {
            found
                .not_judged
                .push(format!("{column} ({} rated rows)", e.tally.rated));
        }
        if base > 0.0 {
            let di = rate / base;
            let alert = judged && di < self.disparate_impact_min - SLACK;
            if alert {
                reasons.push((
                    self.disparate_impact_min - di,
                    format!("disparate impact {di:.2} < {}", self.disparate_impact_min),
                ));
            }
            if judged && found.lowest_di.as_ref().is_none_or(|(v, _)| di < *v) {
                found.lowest_di = Some((di, column.to_owned()));
            }
            let threshold = judged.then_some(self.disparate_impact_min);
            found.push(column, "disparate-impact", di, threshold, alert);
        }
        let d = rate - base;
        let alert = judged && d.abs() > self.parity_difference_max + SLACK;
        if alert {
            reasons.push((
                d.abs() - self.parity_difference_max,
                format!(
                    "parity difference {d:+.2} beyond ±{}",
                    self.parity_difference_max
                ),
            ));
        }
        let threshold = judged.then_some(self.parity_difference_max);
        found.push(column, "parity-difference", d, threshold, alert);
    }

    /// The report's one-line summary: the worst alerting group, the
    /// privileged group, and what could not be judged.
    fn summary(&self, j: &Judging<'_>, groups: usize, found: &Findings) -> String {
        if self.rows == 0 {
            return format!(
                "no rows observed yet ({} groups of `{}` in the reference)",
                self.groups.len(),
                self.group
            );
        }
        let mut parts = Vec::new();
        // The first alerting group wins ties, so the order is stable.
        let worst =
            found
                .alerting
                .iter()
                .fold(None::<&(String, f64, Vec<String>)>, |w, a| match w {
                    Some(w) if w.1 >= a.1 => Some(w),
                    _ => Some(a),
                });
        match worst {
            Some((column, _, reasons)) => parts.push(format!(
                "{} of {groups} groups alert; worst {column}: {}",
                found.alerting.len(),
                reasons.join(", ")
            )),
            None => parts.push(format!(
                "no alerts across {groups} groups of `{}`",
                self.group
            )),
        }
        match (j.privileged, j.privileged_rate) {
            (Some((v, _, configured)), Some(rate)) => parts.push(format!(
                "privileged {} (positive rate {rate:.2}, {})",
                self.label(v),
                if configured { "configured" } else { "highest" }
            )),
            (Some((v, _, _)), None) => parts.push(format!(
                "privileged {} has no rated rows: no disparate impact",
                self.label(v)
            )),
            (None, _) => parts.push("no predictions to rate yet".into()),
        }
        if j.privileged_rate == Some(0.0) {
            parts.push("privileged positive rate is 0: no disparate impact".into());
        }
        if let (None, Some((di, column))) = (worst, &found.lowest_di) {
            parts.push(format!("lowest disparate impact {di:.2} ({column})"));
        }
        if !found.not_judged.is_empty() {
            let why = if j.privileged_judged {
                String::new()
            } else {
                " (the privileged group has too few)".into()
            };
            parts.push(format!(
                "rates not judged under min_group_rows {}{why}: {}",
                self.min_group_rows,
                found.not_judged.join(", ")
            ));
        }
        if !j.representation_judged {
            parts.push(format!(
                "shares not judged: {} rows < min_group_rows {}",
                self.rows, self.min_group_rows
            ));
        }
        parts.join("; ")
    }

    fn basis(&self) -> Basis {
        Basis {
            group: self.group.clone(),
            group_type: self.group_type.as_str().to_owned(),
            prediction: self.prediction.clone(),
            positive: self.positive.describe(),
            reference_groups: self.groups.clone(),
            reference_rows: self.reference.clone(),
            reference_null: self.reference_null,
        }
    }

    /// The observed state (not the reference) as versioned JSON, with what
    /// its counts mean so that `restore` can refuse a foreign one.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let snapshot = Snapshot {
            version: SNAPSHOT_VERSION,
            basis: self.basis(),
            rows: self.rows,
            groups: self.current.clone(),
            unseen: self.unseen.clone(),
            null: self.null_group,
        };
        serde_json::to_vec(&snapshot).map_err(|e| AlgoError::State {
            message: format!("cannot serialise the state: {e}"),
        })
    }

    /// Replaces the observed state with a snapshot of a monitor built from
    /// the same group and prediction columns, positive rule and reference.
    /// Checks everything before changing anything.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let state = |message: String| AlgoError::State { message };
        let snapshot: Snapshot = serde_json::from_slice(bytes)
            .map_err(|e| state(format!("not a bias-monitor snapshot: {e}")))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(state(format!(
                "snapshot version {} is not the supported version {SNAPSHOT_VERSION}",
                snapshot.version
            )));
        }
        let mine = self.basis();
        let theirs = &snapshot.basis;
        let differs = [
            ("group column", theirs.group != mine.group),
            ("group type", theirs.group_type != mine.group_type),
            ("prediction column", theirs.prediction != mine.prediction),
            ("positive rule", theirs.positive != mine.positive),
            (
                "reference groups",
                theirs.reference_groups != mine.reference_groups
                    || theirs.reference_rows != mine.reference_rows
                    || theirs.reference_null != mine.reference_null,
            ),
        ];
        if let Some((what, _)) = differs.iter().find(|d| d.1) {
            return Err(state(format!(
                "snapshot is of another bias monitor (different {what})"
            )));
        }
        if snapshot.groups.len() != self.groups.len() {
            return Err(state(format!(
                "snapshot has counts for {} groups, the reference has {}",
                snapshot.groups.len(),
                self.groups.len()
            )));
        }
        if let Some(k) = snapshot.unseen.keys().find(|k| self.index.contains_key(*k)) {
            return Err(state(format!(
                "snapshot counts reference group `{k}` as unseen"
            )));
        }
        let tallies = || {
            snapshot
                .groups
                .iter()
                .chain(snapshot.unseen.values())
                .chain([&snapshot.null])
        };
        if tallies().any(|t| t.rated > t.rows || t.positive > t.rated)
            || tallies().try_fold(0u64, |n, t| n.checked_add(t.rows)) != Some(snapshot.rows)
        {
            return Err(state(
                "snapshot counts are inconsistent (positives > rated > rows, or rows do not add up)"
                    .into(),
            ));
        }
        self.rows = snapshot.rows;
        self.current = snapshot.groups;
        self.unseen = snapshot.unseen;
        self.null_group = snapshot.null;
        Ok(())
    }
}

/// What a report judges every group against.
struct Judging<'a> {
    total: f64,
    reference_total: f64,
    /// (value, counts, configured rather than the highest rate).
    privileged: Option<(&'a str, Tally, bool)>,
    privileged_rate: Option<f64>,
    privileged_judged: bool,
    representation_judged: bool,
}

/// What a report has found so far.
#[derive(Default)]
struct Findings {
    metrics: Vec<Metric>,
    /// (group, how far its worst reason is past its bound, reasons).
    alerting: Vec<(String, f64, Vec<String>)>,
    not_judged: Vec<String>,
    lowest_di: Option<(f64, String)>,
}

impl Findings {
    fn push(&mut self, column: &str, name: &str, value: f64, threshold: Option<f64>, alert: bool) {
        self.metrics.push(Metric {
            column: Some(column.to_owned()),
            name: name.into(),
            value,
            threshold,
            p_value: None,
            alert,
        });
    }
}

struct Entry<'a> {
    value: &'a str,
    reference: Option<u64>,
    tally: Tally,
    null: bool,
}

/// The positive rule for the prediction column's type, refusing settings
/// that do not apply to it.
fn positive_rule(config: &BiasConfig, p: &Column) -> Result<Positive> {
    let t = p.data_type();
    let name = &config.prediction;
    match t {
        DataType::String => {
            if config.positive_threshold.is_some() {
                return Err(AlgoError::config(
                    "positive_threshold",
                    format!("prediction column `{name}` is string, not a score; use `positive`"),
                ));
            }
            match &config.positive {
                Some(v) => Ok(Positive::Equals(v.clone())),
                None => Err(AlgoError::config(
                    "positive",
                    format!(
                        "prediction column `{name}` is string: set `positive` to the label that counts as positive"
                    ),
                )),
            }
        }
        _ => {
            if config.positive.is_some() {
                return Err(AlgoError::config(
                    "positive",
                    format!(
                        "applies to string predictions only; prediction column `{name}` is {t}"
                    ),
                ));
            }
            if t == DataType::Bool {
                if config.positive_threshold.is_some() {
                    return Err(AlgoError::config(
                        "positive_threshold",
                        format!("prediction column `{name}` is bool, not a score"),
                    ));
                }
                Ok(Positive::True)
            } else {
                Ok(Positive::AtLeast(
                    config
                        .positive_threshold
                        .unwrap_or(DEFAULT_POSITIVE_THRESHOLD),
                ))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn cfg(json: &str) -> BiasConfig {
        serde_json::from_str(json).unwrap()
    }

    /// `n` rows of group `g`, the first `pos` predicted positive.
    fn rows(g: &str, n: usize, pos: usize) -> Vec<(Option<&str>, Option<bool>)> {
        (0..n).map(|i| (Some(g), Some(i < pos))).collect()
    }

    fn batch(rows: &[(Option<&str>, Option<bool>)]) -> Batch {
        let g: Vec<Option<&str>> = rows.iter().map(|r| r.0).collect();
        let p = Column::with_validity(
            "pred",
            ColumnData::Bool(rows.iter().map(|r| r.1.unwrap_or(false)).collect()),
            rows.iter().map(|r| r.1.is_some()).collect(),
        );
        Batch::from_columns(vec![Column::from_opt_str("g", &g), p]).unwrap()
    }

    fn cat(parts: &[Vec<(Option<&'static str>, Option<bool>)>]) -> Batch {
        batch(&parts.concat())
    }

    /// A 100 rows, B 100 rows; predictions irrelevant to the shares.
    fn reference() -> Batch {
        cat(&[rows("A", 100, 50), rows("B", 100, 50)])
    }

    fn metric<'a>(r: &'a Report, column: &str, name: &str) -> &'a Metric {
        r.metrics
            .iter()
            .find(|m| m.column.as_deref() == Some(column) && m.name == name)
            .unwrap_or_else(|| panic!("no {name} for {column} in {:#?}", r.metrics))
    }

    fn has(r: &Report, column: &str, name: &str) -> bool {
        r.metrics
            .iter()
            .any(|m| m.column.as_deref() == Some(column) && m.name == name)
    }

    fn dataset<'a>(r: &'a Report, name: &str) -> &'a Metric {
        r.metrics
            .iter()
            .find(|m| m.column.is_none() && m.name == name)
            .unwrap()
    }

    const BASE: &str = r#"{"group":"g","prediction":"pred"}"#;

    #[test]
    fn disparate_impact_and_parity_by_hand() {
        let mut m = BiasMonitor::new(cfg(BASE), &reference()).unwrap();
        // A: 50/100 positive, B: 20/100 → A privileged (highest rate),
        // DI(B) = 0.2 / 0.5 = 0.4, parity(B) = 0.2 − 0.5 = −0.3.
        m.observe(&cat(&[rows("A", 100, 50), rows("B", 100, 20)]))
            .unwrap();
        let r = m.report();
        assert_eq!(r.rows, 200);
        assert_eq!(metric(&r, "g=A", "positive-rate").value, 0.5);
        assert_eq!(metric(&r, "g=B", "positive-rate").value, 0.2);
        let di = metric(&r, "g=B", "disparate-impact");
        assert!((di.value - 0.4).abs() < 1e-15, "{}", di.value);
        assert_eq!((di.threshold, di.alert), (Some(0.8), true));
        let pd = metric(&r, "g=B", "parity-difference");
        assert!((pd.value + 0.3).abs() < 1e-15, "{}", pd.value);
        assert_eq!((pd.threshold, pd.alert), (Some(0.1), true));
        // The privileged group gets no ratio with itself.
        assert!(!has(&r, "g=A", "disparate-impact"));
        assert!(!has(&r, "g=A", "parity-difference"));
        // Shares did not move: 0.5 each, change 0, no representation alert.
        for g in ["g=A", "g=B"] {
            let s = metric(&r, g, "share");
            assert_eq!((s.value, s.threshold, s.alert), (0.5, None, false));
            let c = metric(&r, g, "share-change");
            assert_eq!((c.value, c.threshold, c.alert), (0.0, Some(0.1), false));
        }
        assert_eq!(dataset(&r, "null-prediction-share").value, 0.0);
        let ga = dataset(&r, "groups-alerting");
        assert_eq!((ga.value, ga.threshold, ga.alert), (1.0, Some(1.0), true));
        assert!(r.alert);
        assert_eq!(
            r.summary,
            "1 of 2 groups alert; worst g=B: disparate impact 0.40 < 0.8, \
             parity difference -0.30 beyond ±0.1; privileged g=A (positive rate 0.50, highest)"
        );
        // Metric order: per group share, share-change, positive-rate, ratios; then dataset.
        let names: Vec<(&str, &str)> = r
            .metrics
            .iter()
            .map(|m| (m.column.as_deref().unwrap_or("-"), m.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("g=A", "share"),
                ("g=A", "share-change"),
                ("g=A", "positive-rate"),
                ("g=B", "share"),
                ("g=B", "share-change"),
                ("g=B", "positive-rate"),
                ("g=B", "disparate-impact"),
                ("g=B", "parity-difference"),
                ("-", "null-prediction-share"),
                ("-", "groups-alerting"),
            ]
        );
    }

    #[test]
    fn fair_data_does_not_alert_and_thresholds_are_exclusive() {
        // A 50/100, B 40/100: DI 0.8 exactly (not below), parity −0.1 (not beyond).
        let mut m = BiasMonitor::new(cfg(BASE), &reference()).unwrap();
        m.observe(&cat(&[rows("A", 100, 50), rows("B", 100, 40)]))
            .unwrap();
        let r = m.report();
        let di = metric(&r, "g=B", "disparate-impact");
        assert!((di.value - 0.8).abs() < 1e-15);
        assert!(!di.alert);
        let pd = metric(&r, "g=B", "parity-difference");
        assert!((pd.value + 0.1).abs() < 1e-15);
        assert!(!pd.alert);
        assert!(!r.alert);
        assert_eq!(dataset(&r, "groups-alerting").value, 0.0);
        assert_eq!(
            r.summary,
            "no alerts across 2 groups of `g`; privileged g=A (positive rate 0.50, highest); \
             lowest disparate impact 0.80 (g=B)"
        );
        // One fewer positive in B: 39/100 → DI 0.78 alerts, parity −0.11 alerts.
        let mut m = BiasMonitor::new(cfg(BASE), &reference()).unwrap();
        m.observe(&cat(&[rows("A", 100, 50), rows("B", 100, 39)]))
            .unwrap();
        let r = m.report();
        assert!(metric(&r, "g=B", "disparate-impact").alert);
        assert!(metric(&r, "g=B", "parity-difference").alert);
    }

    #[test]
    fn configured_privileged_group_and_positive_ratios() {
        // Privileged B (rate 0.2): DI(A) = 2.5 (no alert: only low DI alerts),
        // parity(A) = +0.3 (alerts: |d| > 0.1 either way).
        let mut m = BiasMonitor::new(
            cfg(r#"{"group":"g","prediction":"pred","privileged":"B"}"#),
            &reference(),
        )
        .unwrap();
        m.observe(&cat(&[rows("A", 100, 50), rows("B", 100, 20)]))
            .unwrap();
        let r = m.report();
        let di = metric(&r, "g=A", "disparate-impact");
        assert!((di.value - 2.5).abs() < 1e-15);
        assert!(!di.alert);
        let pd = metric(&r, "g=A", "parity-difference");
        assert!((pd.value - 0.3).abs() < 1e-15);
        assert!(pd.alert);
        assert!(!has(&r, "g=B", "disparate-impact"));
        assert!(
            r.summary
                .contains("privileged g=B (positive rate 0.20, configured)")
        );
    }

    #[test]
    fn representation_shift_and_unseen_group() {
        // Reference A 60 / B 40; current A 70, B 20, C 10 (C unseen).
        let reference = cat(&[rows("A", 60, 30), rows("B", 40, 20)]);
        let mut m = BiasMonitor::new(cfg(BASE), &reference).unwrap();
        m.observe(&cat(&[
            rows("A", 70, 35),
            rows("B", 20, 10),
            rows("C", 10, 5),
        ]))
        .unwrap();
        let r = m.report();
        // A: 0.7 vs 0.6 → +0.1, not beyond 0.1.
        let a = metric(&r, "g=A", "share-change");
        assert!((a.value - 0.1).abs() < 1e-15 && !a.alert, "{a:?}");
        assert!(!metric(&r, "g=A", "share").alert);
        // B: 0.2 vs 0.4 → −0.2, beyond.
        let b = metric(&r, "g=B", "share-change");
        assert!((b.value + 0.2).abs() < 1e-15 && b.alert, "{b:?}");
        let s = metric(&r, "g=B", "share");
        assert_eq!((s.value, s.alert), (0.2, true));
        // C: unseen, share 0.1 = change 0.1 (not beyond), but unseen alerts.
        let c = metric(&r, "g=C", "share-change");
        assert_eq!((c.value, c.alert), (0.1, false));
        assert!(metric(&r, "g=C", "share").alert);
        // Equal rates (0.5): no rate alert anywhere; C is still rated.
        assert_eq!(metric(&r, "g=C", "disparate-impact").value, 1.0);
        assert_eq!(dataset(&r, "groups-alerting").value, 2.0);
        assert!(r.alert);
        // B's excess is 0.1 beyond the threshold, C's share 0.1: the first wins ties.
        assert!(
            r.summary.starts_with(
                "2 of 3 groups alert; worst g=B: share 0.20 vs 0.40 in the reference (±0.1)"
            ),
            "{}",
            r.summary
        );
        // A bigger unseen group is the worst.
        m.observe(&batch(&rows("C", 100, 50))).unwrap();
        let r = m.report();
        assert!(
            r.summary
                .starts_with("3 of 3 groups alert; worst g=C: share 0.55, unseen in the reference"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn nulls_have_their_own_share_and_no_rate() {
        // Reference: A 40, B 40, null 20 → null share 0.2.
        let mut reference = cat(&[rows("A", 40, 20), rows("B", 40, 20)]);
        reference.append(batch(&[(None, Some(true)); 20])).unwrap();
        let mut m = BiasMonitor::new(cfg(BASE), &reference).unwrap();
        // Current: A 40 rows, 10 with a null prediction, 15/30 positive;
        // B 40 rows, 12/40 positive; null group 20 rows.
        let mut a = rows("A", 30, 15);
        a.extend(vec![(Some("A"), None); 10]);
        let mut current = cat(&[a, rows("B", 40, 12)]);
        current.append(batch(&[(None, Some(true)); 20])).unwrap();
        m.observe(&current).unwrap();
        let r = m.report();
        assert_eq!(metric(&r, "g=A", "positive-rate").value, 0.5);
        assert_eq!(metric(&r, "g=B", "positive-rate").value, 0.3);
        let n = metric(&r, "g=(null)", "share");
        assert_eq!((n.value, n.alert), (0.2, false));
        assert_eq!(metric(&r, "g=(null)", "share-change").value, 0.0);
        assert!(!has(&r, "g=(null)", "positive-rate"));
        assert!(!has(&r, "g=(null)", "disparate-impact"));
        // 10 null predictions of 100 rows.
        assert_eq!(dataset(&r, "null-prediction-share").value, 0.1);
        // DI(B) = 0.3 / 0.5 = 0.6.
        assert!((metric(&r, "g=B", "disparate-impact").value - 0.6).abs() < 1e-15);
        // A null group only in the current data appears too (reference share 0).
        let mut m =
            BiasMonitor::new(cfg(BASE), &cat(&[rows("A", 50, 1), rows("B", 50, 1)])).unwrap();
        m.observe(&current).unwrap();
        let r = m.report();
        let c = metric(&r, "g=(null)", "share-change");
        assert_eq!((c.value, c.alert), (0.2, true));
        // NaN scores are null predictions too.
        let scores = Batch::from_columns(vec![
            Column::from_opt_str("g", &[Some("A"), Some("A"), Some("B")]),
            Column::from_opt_f64("pred", &[Some(f64::NAN), Some(0.7), None]),
        ])
        .unwrap();
        let mut m = BiasMonitor::new(cfg(BASE), &scores).unwrap();
        m.observe(&scores).unwrap();
        let r = m.report();
        assert_eq!(dataset(&r, "null-prediction-share").value, 2.0 / 3.0);
        assert_eq!(metric(&r, "g=A", "positive-rate").value, 1.0);
        assert!(!has(&r, "g=B", "positive-rate"));
    }

    #[test]
    fn small_groups_are_reported_but_not_judged() {
        let mut m = BiasMonitor::new(cfg(BASE), &reference()).unwrap();
        // B has 20 rated rows (< 30): DI 0.2 is reported without a threshold.
        m.observe(&cat(&[rows("A", 100, 50), rows("B", 20, 2)]))
            .unwrap();
        let r = m.report();
        let di = metric(&r, "g=B", "disparate-impact");
        assert!((di.value - 0.2).abs() < 1e-15);
        assert_eq!((di.threshold, di.alert), (None, false));
        let pd = metric(&r, "g=B", "parity-difference");
        assert_eq!((pd.threshold, pd.alert), (None, false));
        // But its share fell from 0.5 to 1/6: a representation alert.
        assert!(metric(&r, "g=B", "share-change").alert);
        assert!(
            r.summary
                .ends_with("rates not judged under min_group_rows 30: g=B (20 rated rows)"),
            "{}",
            r.summary
        );
        // With fewer rows than min_group_rows in all, shares are not judged either.
        let mut m = BiasMonitor::new(cfg(BASE), &reference()).unwrap();
        m.observe(&batch(&rows("B", 10, 0))).unwrap();
        let r = m.report();
        let c = metric(&r, "g=A", "share-change");
        assert_eq!((c.value, c.threshold, c.alert), (-0.5, None, false));
        assert!(!r.alert);
        assert!(
            r.summary
                .ends_with("shares not judged: 10 rows < min_group_rows 30"),
            "{}",
            r.summary
        );
        // A small group does not become the default privileged group: C 3/3
        // positive is ignored while A (50/100) has enough rows.
        let mut m = BiasMonitor::new(cfg(BASE), &cat(&[rows("A", 1, 0), rows("C", 1, 0)])).unwrap();
        m.observe(&cat(&[rows("A", 100, 50), rows("C", 3, 3)]))
            .unwrap();
        let r = m.report();
        assert!(
            r.summary
                .contains("privileged g=A (positive rate 0.50, highest)")
        );
        assert_eq!(metric(&r, "g=C", "disparate-impact").value, 2.0);
        // min_group_rows 0 judges everything.
        let mut m = BiasMonitor::new(
            cfg(r#"{"group":"g","prediction":"pred","min_group_rows":0}"#),
            &reference(),
        )
        .unwrap();
        m.observe(&cat(&[rows("A", 2, 1), rows("B", 2, 0)]))
            .unwrap();
        let r = m.report();
        assert!(metric(&r, "g=B", "disparate-impact").alert);
    }

    #[test]
    fn scores_strings_integers_and_bools() {
        // Numeric scores against a threshold (>=).
        let scored = |g: Vec<i64>, s: Vec<f64>| {
            Batch::from_columns(vec![
                Column::new("g", ColumnData::S64(g)),
                Column::new("score", ColumnData::F64(s)),
            ])
            .unwrap()
        };
        let reference = scored(vec![1, 2, 10], vec![0.0, 0.0, 0.0]);
        let mut m = BiasMonitor::new(
            cfg(
                r#"{"group":"g","prediction":"score","positive_threshold":0.7,
                   "privileged":10,"min_group_rows":1}"#,
            ),
            &reference,
        )
        .unwrap();
        assert_eq!(m.groups(), ["1", "2", "10"]);
        m.observe(&scored(
            vec![1, 1, 2, 2, 10, 10],
            vec![0.7, 0.69, 0.1, 0.2, 0.9, 0.7],
        ))
        .unwrap();
        let r = m.report();
        assert_eq!(metric(&r, "g=1", "positive-rate").value, 0.5);
        assert_eq!(metric(&r, "g=2", "positive-rate").value, 0.0);
        assert_eq!(metric(&r, "g=10", "positive-rate").value, 1.0);
        assert_eq!(metric(&r, "g=2", "disparate-impact").value, 0.0);
        // f32 and s64 scores read as numbers too.
        let f32s = Batch::from_columns(vec![
            Column::new("g", ColumnData::S64(vec![1])),
            Column::new("score", ColumnData::F32(vec![0.75])),
        ])
        .unwrap();
        m.observe(&f32s).unwrap();
        assert_eq!(metric(&m.report(), "g=1", "positive-rate").value, 2.0 / 3.0);

        // String predictions with a positive label, bool groups.
        let labelled = |g: Vec<bool>, p: Vec<&str>| {
            Batch::from_columns(vec![
                Column::new("g", ColumnData::Bool(g)),
                Column::new(
                    "label",
                    ColumnData::String(p.into_iter().map(String::from).collect()),
                ),
            ])
            .unwrap()
        };
        let reference = labelled(vec![true, false], vec!["no", "no"]);
        let mut m = BiasMonitor::new(
            cfg(r#"{"group":"g","prediction":"label","positive":"yes",
                   "privileged":true,"min_group_rows":1}"#),
            &reference,
        )
        .unwrap();
        assert_eq!(m.groups(), ["false", "true"]);
        m.observe(&labelled(
            vec![true, true, false, false],
            vec!["yes", "yes", "yes", "maybe"],
        ))
        .unwrap();
        let r = m.report();
        assert_eq!(metric(&r, "g=false", "disparate-impact").value, 0.5);
        assert_eq!(metric(&r, "g=false", "parity-difference").value, -0.5);
    }

    #[test]
    fn batch_split_invariance() {
        let mut all = cat(&[
            rows("A", 37, 20),
            rows("B", 41, 9),
            rows("C", 5, 5),
            vec![(Some("A"), None); 3],
        ]);
        all.append(batch(&[(None, Some(false)); 4])).unwrap();
        let mut whole = BiasMonitor::new(cfg(BASE), &reference()).unwrap();
        whole.observe(&all).unwrap();
        let n = all.rows();
        for cuts in [
            vec![0, n],
            vec![0, 1, n],
            vec![0, 30, 31, 70, n],
            vec![0, 0, 2, 2, 50, 85, n],
        ] {
            let mut split = BiasMonitor::new(cfg(BASE), &reference()).unwrap();
            for w in cuts.windows(2) {
                split.observe(&all.slice(w[0], w[1])).unwrap();
            }
            assert_eq!(split, whole);
            assert_eq!(split.report(), whole.report());
            assert_eq!(split.snapshot().unwrap(), whole.snapshot().unwrap());
        }
        assert_eq!(whole.report().rows, 90);
    }

    #[test]
    fn nothing_observed() {
        let m = BiasMonitor::new(cfg(BASE), &reference()).unwrap();
        let r = m.report();
        assert_eq!((r.rows, r.alert), (0, false));
        assert_eq!(
            r.summary,
            "no rows observed yet (2 groups of `g` in the reference)"
        );
        // Shares of nothing are 0, never NaN.
        assert!(r.metrics.iter().all(|m| m.value.is_finite()));
        assert_eq!(metric(&r, "g=A", "share-change").value, -0.5);
    }

    #[test]
    fn snapshot_round_trip_and_refusals() {
        let mut m = BiasMonitor::new(cfg(BASE), &reference()).unwrap();
        let mut current = cat(&[rows("A", 3, 2), rows("Z", 1, 1)]);
        current.append(batch(&[(None, None)])).unwrap();
        m.observe(&current).unwrap();
        let bytes = m.snapshot().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"basis":{"group":"g","group_type":"string","prediction":"pred","positive":"== true","reference_groups":["A","B"],"reference_rows":[100,100],"reference_null":0},"rows":5,"groups":[{"rows":3,"rated":3,"positive":2},{"rows":0,"rated":0,"positive":0}],"unseen":{"Z":{"rows":1,"rated":1,"positive":1}},"null":{"rows":1,"rated":0,"positive":0}}"#
        );
        // Thresholds may differ: they only change the verdict on the same counts.
        let mut fresh = BiasMonitor::new(
            cfg(r#"{"group":"g","prediction":"pred","disparate_impact_min":0.9}"#),
            &reference(),
        )
        .unwrap();
        fresh.restore(&bytes).unwrap();
        assert_eq!(fresh.snapshot().unwrap(), bytes);
        let mut same = BiasMonitor::new(cfg(BASE), &reference()).unwrap();
        same.restore(&bytes).unwrap();
        assert_eq!(same, m);
        // Restoring continues from the snapshot.
        same.observe(&current).unwrap();
        m.observe(&current).unwrap();
        assert_eq!(same.report(), m.report());

        let before = fresh.clone();
        let refuse = |fresh: &mut BiasMonitor, bytes: &[u8], why: &str| {
            let e = fresh.restore(bytes).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::State);
            assert!(e.to_string().contains(why), "{e}");
        };
        refuse(&mut fresh, b"nonsense", "not a bias-monitor snapshot");
        refuse(
            &mut fresh,
            text.replace(r#""version":1"#, r#""version":2"#).as_bytes(),
            "snapshot version 2 is not the supported version 1",
        );
        refuse(
            &mut fresh,
            text.replace(r#""rows":5"#, r#""rows":6"#).as_bytes(),
            "inconsistent",
        );
        refuse(
            &mut fresh,
            text.replace(
                r#""rows":3,"rated":3,"positive":2"#,
                r#""rows":3,"rated":3,"positive":4"#,
            )
            .as_bytes(),
            "inconsistent",
        );
        refuse(
            &mut fresh,
            text.replace(r#""unseen":{"Z""#, r#""unseen":{"B""#)
                .as_bytes(),
            "counts reference group `B` as unseen",
        );
        assert_eq!(fresh, before);
        // Another reference, another positive rule, another column.
        let other = cat(&[rows("A", 100, 50), rows("B", 99, 50)]);
        let mut o = BiasMonitor::new(cfg(BASE), &other).unwrap();
        refuse(&mut o, &bytes, "different reference groups");
        let scores = Batch::from_columns(vec![
            Column::from_opt_str("g", &[Some("A"), Some("B")]),
            Column::new("pred", ColumnData::F64(vec![0.1, 0.9])),
        ])
        .unwrap();
        let mut a = BiasMonitor::new(cfg(BASE), &scores).unwrap();
        let mut b = BiasMonitor::new(
            cfg(r#"{"group":"g","prediction":"pred","positive_threshold":0.8}"#),
            &scores,
        )
        .unwrap();
        a.observe(&scores).unwrap();
        refuse(&mut b, &a.snapshot().unwrap(), "different positive rule");
        let mut renamed = reference();
        let mut cols = renamed.clone().into_columns();
        cols[1].name = "pred2".into();
        renamed = Batch::from_columns(cols).unwrap();
        let mut c =
            BiasMonitor::new(cfg(r#"{"group":"g","prediction":"pred2"}"#), &renamed).unwrap();
        refuse(&mut c, &bytes, "different prediction column");
    }

    #[test]
    fn config_errors_name_the_key() {
        let err = |json: &str| BiasMonitor::new(cfg(json), &reference()).unwrap_err();
        let cases = [
            (
                r#"{"group":"","prediction":"pred"}"#,
                "invalid config `group`: is empty; name a column",
            ),
            (
                r#"{"group":"g","prediction":"g"}"#,
                "invalid config `prediction`: names `g`, the same column as `group`",
            ),
            (
                r#"{"group":"g","prediction":"pred","disparate_impact_min":-1}"#,
                "invalid config `disparate_impact_min`: -1 is not a finite number >= 0",
            ),
            (
                r#"{"group":"g","prediction":"pred","parity_difference_max":1.5}"#,
                "invalid config `parity_difference_max`: 1.5 is not a number in [0, 1]",
            ),
            (
                r#"{"group":"g","prediction":"pred","representation_max":-0.1}"#,
                "invalid config `representation_max`: -0.1 is not a number in [0, 1]",
            ),
            (
                r#"{"group":"g","prediction":"pred","privileged":"Q"}"#,
                "invalid config `privileged`: `Q` is not a group of `g` in the reference (groups: A, B)",
            ),
            (
                r#"{"group":"g","prediction":"pred","positive":"yes"}"#,
                "invalid config `positive`: applies to string predictions only; prediction column `pred` is bool",
            ),
            (
                r#"{"group":"g","prediction":"pred","positive_threshold":0.3}"#,
                "invalid config `positive_threshold`: prediction column `pred` is bool, not a score",
            ),
        ];
        for (json, message) in cases {
            let e = err(json);
            assert_eq!(
                (e.kind(), e.to_string().as_str()),
                (ErrorKind::Config, message)
            );
        }
        // String predictions need `positive`, and take no threshold.
        let labels = Batch::from_columns(vec![
            Column::from_opt_str("g", &[Some("A")]),
            Column::from_opt_str("label", &[Some("yes")]),
        ])
        .unwrap();
        let e =
            BiasMonitor::new(cfg(r#"{"group":"g","prediction":"label"}"#), &labels).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config `positive`: prediction column `label` is string: set `positive` to the label that counts as positive"
        );
        let e = BiasMonitor::new(
            cfg(r#"{"group":"g","prediction":"label","positive":"yes","positive_threshold":1}"#),
            &labels,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid config `positive_threshold`"),
            "{e}"
        );
        // serde refuses unknown keys, missing keys and wrongly typed group values by name.
        let e =
            serde_json::from_str::<BiasConfig>(r#"{"group":"g","prediction":"p","treshold":1}"#)
                .unwrap_err();
        assert!(e.to_string().contains("unknown field `treshold`"), "{e}");
        let e = serde_json::from_str::<BiasConfig>(r#"{"group":"g"}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `prediction`"), "{e}");
        let e = serde_json::from_str::<BiasConfig>(
            r#"{"group":"g","prediction":"p","privileged":1.5}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("a string, a boolean or an integer"),
            "{e}"
        );
        // Defaults as documented.
        let c = cfg(BASE);
        assert_eq!(
            (
                c.disparate_impact_min,
                c.parity_difference_max,
                c.representation_max,
                c.min_group_rows,
                c.positive_threshold,
            ),
            (0.8, 0.1, 0.1, 30, None)
        );
    }

    #[test]
    fn reference_and_input_errors() {
        let e = BiasMonitor::new(cfg(r#"{"group":"sex","prediction":"pred"}"#), &reference())
            .unwrap_err();
        assert_eq!((e.kind(), e.column()), (ErrorKind::Reference, Some("sex")));
        assert_eq!(e.to_string(), "reference: column `sex` is missing");
        let e = BiasMonitor::new(cfg(BASE), &reference().slice(0, 0)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Reference);
        let floats = Batch::from_columns(vec![
            Column::new("g", ColumnData::F64(vec![1.0])),
            Column::new("pred", ColumnData::Bool(vec![true])),
        ])
        .unwrap();
        let e = BiasMonitor::new(cfg(BASE), &floats).unwrap_err();
        assert_eq!(
            e.to_string(),
            "reference: group column `g` is f64; a group column must be string, bool or s64"
        );
        let e = BiasMonitor::new(cfg(BASE), &batch(&[(None, Some(true))])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "reference: column `g` has no group values (all null)"
        );

        let mut m = BiasMonitor::new(cfg(BASE), &reference()).unwrap();
        m.observe(&batch(&rows("A", 2, 1))).unwrap();
        let before = m.clone();
        let e = m
            .observe(&Batch::from_columns(vec![Column::from_opt_str("g", &[Some("A")])]).unwrap())
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (ErrorKind::Input, "column `pred` is missing")
        );
        let wrong = Batch::from_columns(vec![
            Column::from_opt_str("g", &[Some("A")]),
            Column::new("pred", ColumnData::F64(vec![0.9])),
        ])
        .unwrap();
        assert_eq!(
            m.observe(&wrong).unwrap_err().to_string(),
            "column `pred` is f64, expected bool"
        );
        assert_eq!(
            m.observe(&floats).unwrap_err().to_string(),
            "column `g` is f64, expected string"
        );
        assert_eq!(m, before);
    }
}
