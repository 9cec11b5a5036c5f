//! Data-quality validator in the manner of TensorFlow Data Validation: a
//! [`Schema`] of per-column expectations (type, observed range, null rate,
//! category domain) is inferred from reference data, written out as TOML
//! (`keel profile`), reviewed or edited by a person, and then every batch is
//! checked against it, each violation becoming a [`Finding`].
//!
//! # Inference ([`infer`], [`Profiler`])
//!
//! Per column, in batch order:
//! - `type`: the column's type.
//! - `null_rate`: nulls / rows, rounded to 6 decimals.
//! - `max_null_rate`: 0 when the reference has no null (TFDV's
//!   `min_fraction = 1`: a column that was always filled must stay so, and a
//!   null is an `unexpected-null`); otherwise
//!   `min(1, null_rate + max(0.05, 3·√(null_rate·(1 − null_rate) / rows)))`,
//!   rounded up to 4 decimals. The 5-point floor absorbs the sampling noise
//!   of ordinary batches; the three standard errors widen it when the
//!   reference is too small for its own rate to be trusted.
//! - `min`, `max` (numeric columns): the smallest and largest finite value.
//!   NaN and ±∞ are left out, as they are for every statistic here.
//! - `domain` (string and bool columns): the distinct values, sorted (strings
//!   by code point, `false` before `true`), when there are at most
//!   [`InferOptions::max_domain_size`] of them; a column with more (an id, free
//!   text) gets no domain. `min_domain_share` is written as 1. Integer columns
//!   get a range, not a domain (a domain would turn every new year or id into
//!   an unseen category); one can be written by hand.
//!
//! Every number is a plain `f64` that TOML and JSON print in its shortest
//! round-trip form, so `infer → TOML → parse` gives back the same schema.
//!
//! # Checks and findings
//!
//! Rule ids (stable; audit records and summaries count them):
//!
//! | rule | level | severity | when |
//! | --- | --- | --- | --- |
//! | `missing-column` | batch | error | a `required` column is absent |
//! | `wrong-type` | batch | error | the column has another type (its values are then not checked) |
//! | `null-rate` | batch | warning | the batch has significantly more nulls than `max_null_rate` (> 0) allows (below) |
//! | `domain-share` | batch | warning | the batch has significantly more values outside `domain` than `min_domain_share` allows (below) |
//! | `unexpected-null` | row | error | a null where `max_null_rate` is 0 |
//! | `out-of-range` | row | warning / error | a value outside `[min, max]` widened by `range_slack`; an error when it is NaN or ±∞, or *far* outside (below) |
//! | `unseen-category` | row | warning | a value not in `domain` |
//!
//! Severities follow one principle: an `error` marks data that cannot be used
//! as it is (a null the pipeline never saw and may not handle, a value that is
//! not a number or is implausibly far from anything seen, a batch without the
//! column or with the wrong type), so a `reject` policy drops it; a `warning`
//! marks data that is usable but looks different from the reference (a value
//! a little beyond the observed extremes, a new category, more nulls than
//! usual). Batch-level statistics are warnings because an error without a row
//! drops the whole batch under `reject`.
//!
//! A value is *far* out of range when it lies beyond the allowed range by more
//! than the column's observed span `max − min` (for a zero span, or with only
//! one bound, by more than the bound's magnitude, at least 1).
//!
//! `null-rate` and `domain-share` judge one batch, as the host hands batches
//! to the validator, and a batch is a sample: 1 null in the 11-row tail batch
//! of the penguins example is a share of 9%, above the 5.45% its reference
//! allows, by chance alone. So a batch is flagged only when its share is above
//! the limit *and* a one-sided binomial test says the limit does not explain
//! it: the chance that `n` rows at exactly the allowed share (`max_null_rate`,
//! or `1 − min_domain_share` for values outside the domain) show `k` or more
//! is below [`SIGNIFICANCE`] (1%). The message gives the counts, the shares
//! and that chance. With `min_domain_share = 1` (the default) any value
//! outside the domain is significant.
//!
//! Findings come in a fixed order: batch-level ones first in schema order,
//! then row findings by row, and within a row in schema order.

use crate::rules::{Finding, Severity};
use crate::util::{Keys, bool_text, quote_list, require_reference};
use crate::{AlgoError, Result};
use keel_data::{Batch, Column, ColumnData, DataError, DataType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};

/// A required column the batch lacks.
pub const MISSING_COLUMN: &str = "missing-column";
/// A column whose type is not the schema's.
pub const WRONG_TYPE: &str = "wrong-type";
/// A batch with a larger share of nulls than `max_null_rate`.
pub const NULL_RATE: &str = "null-rate";
/// A batch with too small a share of values inside the domain.
pub const DOMAIN_SHARE: &str = "domain-share";
/// A null in a column that allows none.
pub const UNEXPECTED_NULL: &str = "unexpected-null";
/// A value outside the allowed range, or not finite.
pub const OUT_OF_RANGE: &str = "out-of-range";
/// A value outside the domain.
pub const UNSEEN_CATEGORY: &str = "unseen-category";

/// Chance below which a batch's share of nulls (or of values outside the
/// domain) is judged too large for its limit to explain.
pub const SIGNIFICANCE: f64 = 0.01;

/// `max_null_rate` above `null_rate` when the schema leaves it out, and the
/// least tolerance [`infer`] gives.
pub const NULL_RATE_TOLERANCE: f64 = 0.05;

/// Expectations about a dataset, one entry per column. Deserialised from the
/// validator's config (TOML or JSON); unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// The columns, checked in this order.
    pub columns: Vec<ColumnSchema>,
}

/// What one column should look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSchema {
    /// The column's name.
    pub name: String,
    /// `f64`, `f32`, `s64`, `bool` or `string` (the aliases of
    /// [`DataType::parse`] are accepted).
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether the column must be present (default true; only `false` is written).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub required: bool,
    /// Share of nulls observed in the reference (informational, and the base
    /// of the default `max_null_rate`).
    #[serde(default)]
    pub null_rate: f64,
    /// Largest share of nulls a batch may have; 0 makes every null an
    /// `unexpected-null` error. Default: 0 when `null_rate` is 0, else
    /// `null_rate + 0.05` (at most 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_null_rate: Option<f64>,
    /// Smallest value observed (numeric columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest value observed (numeric columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Widens `[min, max]` by this share of `max − min` on each side (default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub range_slack: f64,
    /// The values seen (string, bool and s64 columns), compared as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Vec<String>>,
    /// Share of a batch's non-null values that must be in `domain` (TFDV's
    /// `min_domain_mass`); default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_domain_share: Option<f64>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// How [`infer`] turns observations into a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct InferOptions {
    /// A string or bool column with more distinct values than this gets no
    /// domain (default 100).
    pub max_domain_size: usize,
    /// `range_slack` written for every numeric column (default 0: the observed
    /// range is the allowed one).
    pub range_slack: f64,
}

impl Default for InferOptions {
    fn default() -> InferOptions {
        InferOptions {
            max_domain_size: 100,
            range_slack: 0.0,
        }
    }
}

/// Infers a schema from one reference batch (see the module docs).
pub fn infer(reference: &Batch, options: &InferOptions) -> Schema {
    let mut profiler = Profiler::new(options.clone());
    // A single batch always has the shape of the first one.
    let _ = profiler.observe(reference);
    profiler.finish()
}

/// Builds a schema from a stream of batches, keeping only counts, extremes
/// and (bounded) sets of distinct values, so a file of any size can be
/// profiled batch by batch with the result [`infer`] gives on all of it.
#[derive(Debug, Clone)]
pub struct Profiler {
    options: InferOptions,
    rows: usize,
    columns: Option<Vec<ColumnProfile>>,
}

#[derive(Debug, Clone)]
struct ColumnProfile {
    name: String,
    data_type: DataType,
    nulls: usize,
    min: Option<f64>,
    max: Option<f64>,
    /// Distinct values so far; `None` once there are more than
    /// `max_domain_size` (or for types that get no domain).
    distinct: Option<BTreeSet<String>>,
    /// Whether a boolean column has shown `false` / `true`.
    bools: [bool; 2],
}

impl Profiler {
    /// An empty profile.
    pub fn new(options: InferOptions) -> Profiler {
        Profiler {
            options,
            rows: 0,
            columns: None,
        }
    }

    /// Rows observed so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Adds a batch. The first batch fixes the columns; a later one must have
    /// the same names and types in the same order.
    pub fn observe(&mut self, batch: &Batch) -> Result<()> {
        let max_domain = self.options.max_domain_size;
        let columns = self.columns.get_or_insert_with(|| {
            batch
                .columns()
                .iter()
                .map(|c| ColumnProfile {
                    name: c.name.clone(),
                    data_type: c.data_type(),
                    nulls: 0,
                    min: None,
                    max: None,
                    distinct: (c.data_type() == DataType::String).then(BTreeSet::new),
                    bools: [false; 2],
                })
                .collect()
        });
        if let Some(extra) = batch.columns().get(columns.len()) {
            return Err(AlgoError::Input {
                column: extra.name.clone(),
                row: None,
                message: "column not in the first batch".into(),
            });
        }
        for (i, p) in columns.iter().enumerate() {
            let col = match batch.columns().get(i) {
                Some(c) if c.name == p.name => c,
                _ => {
                    return Err(AlgoError::Data(DataError::MissingColumn {
                        column: p.name.clone(),
                    }));
                }
            };
            if col.data_type() != p.data_type {
                return Err(AlgoError::Data(DataError::TypeMismatch {
                    column: p.name.clone(),
                    expected: p.data_type,
                    found: col.data_type(),
                }));
            }
        }
        for (p, col) in columns.iter_mut().zip(batch.columns()) {
            p.observe(col, max_domain);
        }
        self.rows += batch.rows();
        Ok(())
    }

    /// The schema of everything observed.
    pub fn finish(self) -> Schema {
        let rows = self.rows;
        let slack = self.options.range_slack;
        let columns = self
            .columns
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.schema(rows, slack))
            .collect();
        Schema { columns }
    }
}

impl ColumnProfile {
    fn observe(&mut self, col: &Column, max_domain: usize) {
        self.nulls += col.null_count();
        match &col.data {
            ColumnData::String(values) => {
                if let Some(set) = &mut self.distinct {
                    for (i, v) in values.iter().enumerate() {
                        if col.is_valid(i) && !set.contains(v) {
                            if set.len() == max_domain {
                                self.distinct = None;
                                break;
                            }
                            set.insert(v.clone());
                        }
                    }
                }
            }
            ColumnData::Bool(values) => {
                for (i, v) in values.iter().enumerate() {
                    if col.is_valid(i) {
                        self.bools[usize::from(*v)] = true;
                    }
                }
            }
            _ => {
                if let Some(values) = col.as_f64() {
                    for (i, &x) in values.iter().enumerate() {
                        if col.is_valid(i) && x.is_finite() {
                            self.min = Some(self.min.map_or(x, |m| m.min(x)));
                            self.max = Some(self.max.map_or(x, |m| m.max(x)));
                        }
                    }
                }
            }
        }
    }

    fn schema(self, rows: usize, slack: f64) -> ColumnSchema {
        let null_rate = if rows == 0 {
            0.0
        } else {
            self.nulls as f64 / rows as f64
        };
        let max_null_rate = if self.nulls == 0 {
            0.0
        } else {
            let se = (null_rate * (1.0 - null_rate) / rows as f64).sqrt();
            let allowed = (null_rate + NULL_RATE_TOLERANCE.max(3.0 * se)).min(1.0);
            ((allowed * 1e4).ceil() / 1e4).min(1.0)
        };
        let domain: Option<Vec<String>> = match self.data_type {
            DataType::Bool => {
                let seen: Vec<String> = [false, true]
                    .into_iter()
                    .filter(|b| self.bools[usize::from(*b)])
                    .map(|b| bool_text(b).to_owned())
                    .collect();
                Some(seen)
            }
            _ => self.distinct.map(|s| s.into_iter().collect()),
        };
        // No domain from an all-null column: an empty one would reject everything.
        let domain = domain.filter(|d| !d.is_empty());
        let numeric = self.data_type.is_numeric() && self.min.is_some();
        ColumnSchema {
            name: self.name,
            data_type: self.data_type.as_str().to_owned(),
            required: true,
            null_rate: (null_rate * 1e6).round() / 1e6,
            max_null_rate: Some(max_null_rate),
            min: self.min,
            max: self.max,
            range_slack: if numeric { slack } else { 0.0 },
            min_domain_share: domain.as_ref().map(|_| 1.0),
            domain,
        }
    }
}

/// Allowed and far bounds of a numeric column.
#[derive(Debug, Clone, PartialEq)]
struct Range {
    lo: f64,
    hi: f64,
    /// How far beyond `lo`/`hi` a value may go before it is an error.
    far: f64,
}

#[derive(Debug, Clone, PartialEq)]
struct Check {
    column: String,
    data_type: DataType,
    required: bool,
    null_rate: f64,
    max_null_rate: f64,
    range: Option<Range>,
    domain: Option<(HashSet<String>, String)>,
    min_domain_share: f64,
}

/// A data-quality validator built from a schema; stateless across batches.
#[derive(Debug, Clone, PartialEq)]
pub struct DataQuality {
    schema: Schema,
    checks: Vec<Check>,
}

impl DataQuality {
    /// Builds the validator from `schema`, or, when there is none, from the
    /// schema [`infer`] gives for `reference` with default options.
    pub fn new(schema: Option<Schema>, reference: Option<&Batch>) -> Result<DataQuality> {
        let schema = match schema {
            Some(s) => s,
            None => {
                let reference = require_reference(
                    reference,
                    "the config has no schema to infer it from (give one: `keel profile` prints it)",
                )?;
                if reference.columns().is_empty() {
                    return Err(AlgoError::Reference {
                        column: None,
                        message: "has no columns to infer a schema from".into(),
                    });
                }
                infer(reference, &InferOptions::default())
            }
        };
        let checks = compile(&schema)?;
        Ok(DataQuality { schema, checks })
    }

    /// The schema in force (the inferred one when none was given).
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Checks one batch; an empty list means it is clean.
    pub fn validate(&self, batch: &Batch) -> Vec<Finding> {
        let mut batch_level = Vec::new();
        let mut by_row = Vec::new();
        for c in &self.checks {
            let Some(col) = batch.column(&c.column) else {
                if c.required {
                    batch_level.push(c.finding(
                        MISSING_COLUMN,
                        None,
                        Severity::Error,
                        format!("column `{}` is missing", c.column),
                    ));
                }
                continue;
            };
            if col.data_type() != c.data_type {
                batch_level.push(c.finding(
                    WRONG_TYPE,
                    None,
                    Severity::Error,
                    format!(
                        "column `{}` is {}, expected {}",
                        c.column,
                        col.data_type(),
                        c.data_type
                    ),
                ));
                continue;
            }
            c.check_nulls(col, batch.rows(), &mut batch_level, &mut by_row);
            if let Some(range) = &c.range
                && let Some(values) = col.as_f64()
            {
                c.check_range(range, col, &values, &mut by_row);
            }
            if let Some((domain, listed)) = &c.domain
                && let Ok(keys) = Keys::new(col)
            {
                c.check_domain(domain, listed, col, &keys, &mut batch_level, &mut by_row);
            }
        }
        // Stable: findings of one row keep schema order.
        by_row.sort_by_key(|f| f.row);
        batch_level.extend(by_row);
        batch_level
    }
}

impl Check {
    fn finding(
        &self,
        rule: &'static str,
        row: Option<usize>,
        severity: Severity,
        message: String,
    ) -> Finding {
        Finding {
            rule,
            column: Some(self.column.clone()),
            row,
            severity,
            message,
        }
    }

    fn check_nulls(
        &self,
        col: &Column,
        rows: usize,
        batch_level: &mut Vec<Finding>,
        by_row: &mut Vec<Finding>,
    ) {
        let nulls = col.null_count();
        if nulls == 0 {
            return;
        }
        if self.max_null_rate == 0.0 {
            for i in (0..rows).filter(|i| !col.is_valid(*i)) {
                by_row.push(self.finding(
                    UNEXPECTED_NULL,
                    Some(i),
                    Severity::Error,
                    format!("`{}` is null, and the reference has no null", self.column),
                ));
            }
            return;
        }
        let share = nulls as f64 / rows as f64;
        if share <= self.max_null_rate {
            return;
        }
        let chance = binomial_tail(rows, nulls, self.max_null_rate);
        if chance < SIGNIFICANCE {
            batch_level.push(self.finding(
                NULL_RATE,
                None,
                Severity::Warning,
                format!(
                    "`{}` is null in {nulls} of {rows} rows ({}), more than max_null_rate {} explains (chance {}; reference {})",
                    self.column,
                    percent(share),
                    percent(self.max_null_rate),
                    chance_text(chance),
                    percent(self.null_rate),
                ),
            ));
        }
    }

    fn check_range(&self, range: &Range, col: &Column, values: &[f64], out: &mut Vec<Finding>) {
        let name = &self.column;
        for (i, &x) in values.iter().enumerate() {
            if !col.is_valid(i) {
                continue;
            }
            let (severity, message) = if !x.is_finite() {
                (
                    Severity::Error,
                    format!("`{name}` is {x}, not a finite number"),
                )
            } else if x < range.lo {
                let far = x < range.lo - range.far;
                (
                    severity_of(far),
                    format!(
                        "`{name}` is {x}, {}below the minimum {}",
                        if far { "far " } else { "" },
                        range.lo
                    ),
                )
            } else if x > range.hi {
                let far = x > range.hi + range.far;
                (
                    severity_of(far),
                    format!(
                        "`{name}` is {x}, {}above the maximum {}",
                        if far { "far " } else { "" },
                        range.hi
                    ),
                )
            } else {
                continue;
            };
            out.push(self.finding(OUT_OF_RANGE, Some(i), severity, message));
        }
    }

    fn check_domain(
        &self,
        domain: &HashSet<String>,
        listed: &str,
        col: &Column,
        keys: &Keys<'_>,
        batch_level: &mut Vec<Finding>,
        by_row: &mut Vec<Finding>,
    ) {
        let (mut valid, mut outside) = (0usize, 0usize);
        for i in (0..col.len()).filter(|i| col.is_valid(*i)) {
            valid += 1;
            let value = keys.get(i);
            if !domain.contains(value.as_ref()) {
                outside += 1;
                by_row.push(self.finding(
                    UNSEEN_CATEGORY,
                    Some(i),
                    Severity::Warning,
                    format!("`{}` is `{value}`, not in the domain {listed}", self.column),
                ));
            }
        }
        if valid == 0 {
            return;
        }
        let share = (valid - outside) as f64 / valid as f64;
        if share >= self.min_domain_share {
            return;
        }
        let chance = binomial_tail(valid, outside, 1.0 - self.min_domain_share);
        if chance < SIGNIFICANCE {
            let why = if self.min_domain_share < 1.0 {
                format!(", more than chance explains ({})", chance_text(chance))
            } else {
                String::new()
            };
            batch_level.push(self.finding(
                DOMAIN_SHARE,
                None,
                Severity::Warning,
                format!(
                    "{outside} of {valid} values of `{}` are outside the domain: {} inside, below min_domain_share {}{why}",
                    self.column,
                    percent(share),
                    percent(self.min_domain_share),
                ),
            ));
        }
    }
}

fn severity_of(far: bool) -> Severity {
    if far {
        Severity::Error
    } else {
        Severity::Warning
    }
}

/// `P(X >= k)` for `X ~ Binomial(n, q)`: the chance that `n` rows, each
/// with probability `q`, show `k` or more hits. Summed from the `k` term up
/// (terms fall past the mode, and callers only ask for `k > n·q`), the first
/// term computed in logarithms so that large batches neither overflow nor
/// underflow before it is needed.
fn binomial_tail(n: usize, k: usize, q: f64) -> f64 {
    if k == 0 || q >= 1.0 {
        return 1.0;
    }
    if k > n || q <= 0.0 {
        return 0.0;
    }
    let mut ln_first = k as f64 * q.ln() + (n - k) as f64 * (1.0 - q).ln();
    for i in 1..=k {
        ln_first += ((n - k + i) as f64 / i as f64).ln();
    }
    let ratio = q / (1.0 - q);
    let (mut term, mut sum) = (ln_first.exp(), 0.0);
    for j in k..=n {
        sum += term;
        if term <= sum * 1e-17 {
            break;
        }
        term *= (n - j) as f64 / (j + 1) as f64 * ratio;
    }
    sum.min(1.0)
}

/// A chance for messages: `0.31%`, or `< 0.01%`.
fn chance_text(p: f64) -> String {
    if p < 1e-4 {
        "< 0.01%".into()
    } else {
        percent(p)
    }
}

/// A share as a percentage with up to two decimals: `0.0857` → `8.57%`.
fn percent(share: f64) -> String {
    let p = (share * 1e4).round() / 100.0;
    format!("{p}%")
}

fn compile(schema: &Schema) -> Result<Vec<Check>> {
    if schema.columns.is_empty() {
        return Err(AlgoError::config(
            "columns",
            "is empty; list at least one column",
        ));
    }
    let mut seen = HashSet::new();
    schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if c.name.is_empty() {
                return Err(AlgoError::config(&format!("columns[{i}].name"), "is empty"));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(AlgoError::config(
                    &format!("columns.{}", c.name),
                    "appears twice",
                ));
            }
            compile_column(c)
        })
        .collect()
}

fn compile_column(c: &ColumnSchema) -> Result<Check> {
    let key = |k: &str| format!("columns.{}.{k}", c.name);
    let data_type = DataType::parse(&c.data_type).ok_or_else(|| {
        AlgoError::config(
            &key("type"),
            format!(
                "unknown type `{}`; use f64, f32, s64, bool or string",
                c.data_type
            ),
        )
    })?;
    let share = |k: &str, x: f64| -> Result<f64> {
        if (0.0..=1.0).contains(&x) {
            Ok(x)
        } else {
            Err(AlgoError::config(
                &key(k),
                format!("{x} is not a share between 0 and 1"),
            ))
        }
    };
    let null_rate = share("null_rate", c.null_rate)?;
    let max_null_rate = match c.max_null_rate {
        Some(m) => share("max_null_rate", m)?,
        None if null_rate == 0.0 => 0.0,
        None => (null_rate + NULL_RATE_TOLERANCE).min(1.0),
    };
    let range = compile_range(c, data_type, &key)?;
    let (domain, min_domain_share) = match &c.domain {
        None => {
            if c.min_domain_share.is_some() {
                return Err(AlgoError::config(
                    &key("min_domain_share"),
                    "needs a `domain`",
                ));
            }
            (None, 1.0)
        }
        Some(values) => {
            check_domain_values(values, data_type, &key("domain"))?;
            let shown = quote_list(values);
            let min_share = share("min_domain_share", c.min_domain_share.unwrap_or(1.0))?;
            (Some((values.iter().cloned().collect(), shown)), min_share)
        }
    };
    Ok(Check {
        column: c.name.clone(),
        data_type,
        required: c.required,
        null_rate,
        max_null_rate,
        range,
        domain,
        min_domain_share,
    })
}

fn compile_range(
    c: &ColumnSchema,
    data_type: DataType,
    key: &dyn Fn(&str) -> String,
) -> Result<Option<Range>> {
    for (k, v) in [("min", c.min), ("max", c.max)] {
        if let Some(x) = v {
            if !data_type.is_numeric() {
                return Err(AlgoError::config(
                    &key(k),
                    format!("needs a numeric column, but the type is {data_type}"),
                ));
            }
            if !x.is_finite() {
                return Err(AlgoError::config(&key(k), format!("{x} is not finite")));
            }
        }
    }
    if !(c.range_slack.is_finite() && c.range_slack >= 0.0) {
        return Err(AlgoError::config(
            &key("range_slack"),
            format!("{} is not a finite share >= 0", c.range_slack),
        ));
    }
    Ok(match (c.min, c.max) {
        (Some(min), Some(max)) if min > max => {
            return Err(AlgoError::config(
                &key("min"),
                format!("{min} is above max {max}"),
            ));
        }
        (Some(min), Some(max)) => {
            let span = max - min;
            let widen = c.range_slack * span;
            let far = if span > 0.0 {
                span
            } else {
                min.abs().max(max.abs()).max(1.0)
            };
            Some(Range {
                lo: min - widen,
                hi: max + widen,
                far,
            })
        }
        (None, None) | (Some(_), None) | (None, Some(_)) if c.range_slack > 0.0 => {
            return Err(AlgoError::config(
                &key("range_slack"),
                "needs both `min` and `max`",
            ));
        }
        (Some(min), None) => Some(Range {
            lo: min,
            hi: f64::INFINITY,
            far: min.abs().max(1.0),
        }),
        (None, Some(max)) => Some(Range {
            lo: f64::NEG_INFINITY,
            hi: max,
            far: max.abs().max(1.0),
        }),
        (None, None) => None,
    })
}

/// A domain must be able to match: not empty, and of the column's type.
fn check_domain_values(values: &[String], data_type: DataType, key: &str) -> Result<()> {
    if values.is_empty() {
        return Err(AlgoError::config(key, "is empty; nothing would pass"));
    }
    let fits = |v: &str| match data_type {
        DataType::String => true,
        DataType::Bool => v == "true" || v == "false",
        DataType::S64 => v.parse::<i64>().is_ok_and(|n| n.to_string() == v),
        DataType::F64 | DataType::F32 => false,
    };
    if matches!(data_type, DataType::F64 | DataType::F32) {
        return Err(AlgoError::config(
            key,
            format!("needs a string, bool or s64 column, but the type is {data_type}"),
        ));
    }
    if let Some(bad) = values.iter().find(|v| !fits(v)) {
        return Err(AlgoError::config(
            key,
            format!("`{bad}` is not a {data_type} value written as text"),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// Six rows: a float with one null and one NaN, a categorical string, an
    /// integer year, a flag with one null.
    fn reference() -> Batch {
        Batch::from_columns(vec![
            Column::from_opt_f64(
                "len",
                &[
                    Some(30.0),
                    Some(40.5),
                    None,
                    Some(f64::NAN),
                    Some(50.0),
                    Some(35.25),
                ],
            ),
            Column::from_opt_str(
                "island",
                &[
                    Some("Dream"),
                    Some("Biscoe"),
                    Some("Dream"),
                    Some("Torgersen"),
                    Some("Biscoe"),
                    Some("Dream"),
                ],
            ),
            Column::new(
                "year",
                ColumnData::S64(vec![2007, 2008, 2008, 2007, 2008, 2007]),
            ),
            Column::with_validity(
                "flag",
                ColumnData::Bool(vec![true, true, false, true, true, true]),
                vec![true, true, false, true, true, true],
            ),
        ])
        .unwrap()
    }

    fn short(f: &[Finding]) -> Vec<(&str, Option<&str>, Option<usize>, Severity)> {
        f.iter()
            .map(|f| (f.rule, f.column.as_deref(), f.row, f.severity))
            .collect()
    }

    fn validator() -> DataQuality {
        DataQuality::new(None, Some(&reference())).unwrap()
    }

    #[test]
    fn infers_types_ranges_null_rates_and_domains() {
        let s = infer(&reference(), &InferOptions::default());
        let names: Vec<_> = s.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["len", "island", "year", "flag"]);
        let len = &s.columns[0];
        assert_eq!(len.data_type, "f64");
        // NaN is left out of the range; the null counts in the rate.
        assert_eq!((len.min, len.max), (Some(30.0), Some(50.0)));
        assert_eq!(len.null_rate, 0.166667);
        // 1/6 + max(0.05, 3 * sqrt(1/6 * 5/6 / 6) = 0.45644), 0.623102 rounded up.
        assert_eq!(len.max_null_rate, Some(0.6232));
        assert_eq!(len.domain, None);
        let island = &s.columns[1];
        assert_eq!(island.data_type, "string");
        assert_eq!(
            island.domain.as_deref().unwrap(),
            ["Biscoe", "Dream", "Torgersen"]
        );
        assert_eq!(island.min_domain_share, Some(1.0));
        assert_eq!((island.null_rate, island.max_null_rate), (0.0, Some(0.0)));
        assert_eq!((island.min, island.max), (None, None));
        let year = &s.columns[2];
        assert_eq!(year.data_type, "s64");
        assert_eq!((year.min, year.max), (Some(2007.0), Some(2008.0)));
        assert_eq!(year.domain, None);
        let flag = &s.columns[3];
        assert_eq!(flag.data_type, "bool");
        // `false` is only in the null slot, so it was never seen.
        assert_eq!(flag.domain.as_deref().unwrap(), ["true"]);
        assert!(s.columns.iter().all(|c| c.required));
    }

    #[test]
    fn large_domains_are_dropped_and_slack_is_written() {
        let ids: Vec<String> = (0..5).map(|i| format!("id{i}")).collect();
        let b = Batch::from_columns(vec![
            Column::new("id", ColumnData::String(ids)),
            Column::new("x", ColumnData::F32(vec![1.5, 2.5, 3.0, 0.25, 1.0])),
        ])
        .unwrap();
        let options = InferOptions {
            max_domain_size: 4,
            range_slack: 0.1,
        };
        let s = infer(&b, &options);
        assert_eq!(
            (s.columns[0].domain.as_ref(), s.columns[0].range_slack),
            (None, 0.0)
        );
        assert_eq!(s.columns[0].min_domain_share, None);
        assert_eq!(s.columns[1].data_type, "f32");
        assert_eq!(
            (s.columns[1].min, s.columns[1].max),
            (Some(0.25), Some(3.0))
        );
        assert_eq!(s.columns[1].range_slack, 0.1);
        // Exactly max_domain_size distinct values still make a domain.
        let options = InferOptions {
            max_domain_size: 5,
            ..InferOptions::default()
        };
        assert_eq!(
            infer(&b, &options).columns[0]
                .domain
                .as_ref()
                .unwrap()
                .len(),
            5
        );
    }

    #[test]
    fn profiling_in_batches_equals_inferring_at_once() {
        let r = reference();
        let mut p = Profiler::new(InferOptions::default());
        for start in [0, 2, 5] {
            p.observe(&r.slice(start, start + if start == 2 { 3 } else { 2 }))
                .unwrap();
        }
        assert_eq!(p.rows(), 6);
        assert_eq!(p.finish(), infer(&r, &InferOptions::default()));

        let mut p = Profiler::new(InferOptions::default());
        p.observe(&r).unwrap();
        let mut other = r.clone();
        other.remove("year");
        let e = p.observe(&other).unwrap_err();
        assert_eq!(e.to_string(), "column `year` is missing");
        let mut retyped = r.clone();
        retyped
            .set(Column::new("year", ColumnData::F64(vec![0.0; 6])))
            .unwrap();
        let e = p.observe(&retyped).unwrap_err();
        assert_eq!(e.to_string(), "column `year` is f64, expected s64");
    }

    #[test]
    fn schema_round_trips_through_toml_and_json() {
        let mut s = infer(&reference(), &InferOptions::default());
        // Numbers with long shortest forms survive too.
        s.columns[0].min = Some(0.1 + 0.2);
        s.columns[0].max = Some(1e300);
        s.columns[0].range_slack = 0.05;
        s.columns[2].required = false;
        let text = toml::to_string(&s).unwrap();
        assert!(
            text.contains("[[columns]]\nname = \"len\"\ntype = \"f64\""),
            "{text}"
        );
        assert!(
            text.contains("domain = [\"Biscoe\", \"Dream\", \"Torgersen\"]"),
            "{text}"
        );
        assert!(text.contains("required = false"), "{text}");
        assert_eq!(text.matches("required").count(), 1, "{text}");
        let back: Schema = toml::from_str(&text).unwrap();
        assert_eq!(back, s);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Schema>(&json).unwrap(), s);
        // A hand-written schema: integers for floats, defaults for the rest.
        let hand: Schema =
            toml::from_str("[[columns]]\nname = \"n\"\ntype = \"int\"\nmin = 0\nmax = 10\n")
                .unwrap();
        assert_eq!(hand.columns[0].min, Some(0.0));
        assert!(hand.columns[0].required);
        assert!(DataQuality::new(Some(hand), None).is_ok());
    }

    #[test]
    fn clean_data_gives_no_finding() {
        let v = validator();
        // The reference itself (its NaN aside) passes its own schema.
        let r = reference();
        let clean = r.filter(&[true, true, true, false, true, true]);
        assert!(v.validate(&clean).is_empty(), "{:?}", v.validate(&clean));
        assert!(v.validate(&r.slice(0, 0)).is_empty());
    }

    #[test]
    fn each_row_violation_is_reported_with_its_row() {
        let v = validator();
        let b = Batch::from_columns(vec![
            Column::from_opt_f64(
                "len",
                &[Some(52.0), Some(10.0), Some(75.0), Some(f64::INFINITY)],
            ),
            Column::from_opt_str(
                "island",
                &[Some("Atlantis"), Some("Dream"), None, Some("Biscoe")],
            ),
            Column::new("year", ColumnData::S64(vec![2007, 2008, 2008, 2007])),
            Column::new("flag", ColumnData::Bool(vec![true, true, true, true])),
        ])
        .unwrap();
        let f = v.validate(&b);
        use Severity::*;
        assert_eq!(
            short(&f),
            [
                (DOMAIN_SHARE, Some("island"), None, Warning),
                (OUT_OF_RANGE, Some("len"), Some(0), Warning),
                (UNSEEN_CATEGORY, Some("island"), Some(0), Warning),
                (OUT_OF_RANGE, Some("len"), Some(1), Warning),
                (OUT_OF_RANGE, Some("len"), Some(2), Error),
                (UNEXPECTED_NULL, Some("island"), Some(2), Error),
                (OUT_OF_RANGE, Some("len"), Some(3), Error),
            ]
        );
        let messages: Vec<_> = f.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "1 of 3 values of `island` are outside the domain: 66.67% inside, below min_domain_share 100%",
                "`len` is 52, above the maximum 50",
                "`island` is `Atlantis`, not in the domain `Biscoe`, `Dream`, `Torgersen`",
                // span 20: 10 is 20 below 30, not more; 75 is 25 above 50.
                "`len` is 10, below the minimum 30",
                "`len` is 75, far above the maximum 50",
                "`island` is null, and the reference has no null",
                "`len` is inf, not a finite number",
            ]
        );
    }

    #[test]
    fn far_means_more_than_one_span_beyond() {
        let s: Schema = toml::from_str(
            "[[columns]]\nname = \"x\"\ntype = \"f64\"\nmin = 0.0\nmax = 10.0\nrange_slack = 0.5\n",
        )
        .unwrap();
        let v = DataQuality::new(Some(s), None).unwrap();
        let b = Batch::from_columns(vec![Column::new(
            "x",
            ColumnData::F64(vec![-5.0, 15.0, 15.5, 25.0, 25.5, -15.5]),
        )])
        .unwrap();
        // Allowed [-5, 15]; far beyond [-15, 25].
        let f = v.validate(&b);
        use Severity::*;
        assert_eq!(
            f.iter().map(|f| (f.row, f.severity)).collect::<Vec<_>>(),
            [
                (Some(2), Warning),
                (Some(3), Warning),
                (Some(4), Error),
                (Some(5), Error)
            ]
        );
        // A constant column: far means more than the value's magnitude.
        let s: Schema =
            toml::from_str("[[columns]]\nname = \"x\"\ntype = \"f64\"\nmin = 4.0\nmax = 4.0\n")
                .unwrap();
        let v = DataQuality::new(Some(s), None).unwrap();
        let b = Batch::from_columns(vec![Column::new(
            "x",
            ColumnData::F64(vec![4.0, 8.0, 8.5, 0.0, -0.5]),
        )])
        .unwrap();
        let f = v.validate(&b);
        assert_eq!(
            f.iter().map(|f| (f.row, f.severity)).collect::<Vec<_>>(),
            [
                (Some(1), Warning),
                (Some(2), Error),
                (Some(3), Warning),
                (Some(4), Error)
            ]
        );
    }

    /// A batch of `rows` values of `x`, the first `nulls` of them null.
    fn with_nulls(rows: usize, nulls: usize) -> Batch {
        let values: Vec<Option<f64>> = (0..rows).map(|i| (i >= nulls).then_some(1.0)).collect();
        Batch::from_columns(vec![Column::from_opt_f64("x", &values)]).unwrap()
    }

    #[test]
    fn null_rate_jump_is_a_batch_warning_with_the_numbers() {
        let s: Schema = toml::from_str(
            "[[columns]]\nname = \"x\"\ntype = \"f64\"\nnull_rate = 0.02\nmax_null_rate = 0.05\n",
        )
        .unwrap();
        let v = DataQuality::new(Some(s), None).unwrap();
        let f = v.validate(&with_nulls(40, 10));
        assert_eq!(short(&f), [(NULL_RATE, Some("x"), None, Severity::Warning)]);
        assert_eq!(
            f[0].message,
            "`x` is null in 10 of 40 rows (25%), more than max_null_rate 5% explains (chance < 0.01%; reference 2%)"
        );
        // Above the limit but within chance: 4 of 40 (P = 13.8%), and the
        // single null of a small tail batch.
        assert!(v.validate(&with_nulls(40, 4)).is_empty());
        assert!(v.validate(&with_nulls(11, 1)).is_empty());
        // 6 of 40 is 1.39% likely at 5%, not significant; 7 of 40 (0.34%) is.
        assert!(v.validate(&with_nulls(40, 6)).is_empty());
        let f = v.validate(&with_nulls(40, 7));
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("(chance 0.34%;"), "{}", f[0].message);
        // The inferred default: 1/6 of `len` null in the reference allows
        // 62.32%; 3 of 4 nulls (75%) is well within chance of that.
        let b = Batch::from_columns(vec![
            Column::from_opt_f64("len", &[None, None, Some(31.0), None]),
            Column::from_opt_str(
                "island",
                &[Some("Dream"), Some("Dream"), Some("Dream"), Some("Dream")],
            ),
            Column::new("year", ColumnData::S64(vec![2007; 4])),
            Column::new("flag", ColumnData::Bool(vec![true; 4])),
        ])
        .unwrap();
        assert!(validator().validate(&b).is_empty());
    }

    #[test]
    fn binomial_tail_matches_direct_sums() {
        let direct = |n: u64, k: u64, q: f64| -> f64 {
            let choose = |n: u64, j: u64| {
                (1..=j)
                    .map(|i| (n - j + i) as f64 / i as f64)
                    .product::<f64>()
            };
            (k..=n)
                .map(|j| choose(n, j) * q.powi(j as i32) * (1.0 - q).powi((n - j) as i32))
                .sum()
        };
        for (n, k, q) in [
            (11, 1, 0.0545),
            (40, 7, 0.05),
            (64, 12, 0.0858),
            (10, 10, 0.5),
            (30, 2, 0.01),
        ] {
            let got = binomial_tail(n, k, q);
            let want = direct(n as u64, k as u64, q);
            assert!(
                (got - want).abs() < 1e-12 * want.max(1e-300),
                "{n} {k} {q}: {got} vs {want}"
            );
        }
        assert!((binomial_tail(11, 1, 0.0545) - (1.0 - 0.9455f64.powi(11))).abs() < 1e-12);
        assert_eq!(binomial_tail(5, 0, 0.3), 1.0);
        assert_eq!(binomial_tail(5, 6, 0.3), 0.0);
        assert_eq!(binomial_tail(5, 1, 0.0), 0.0);
        // Large batches: no overflow, a vanishing but finite chance.
        let p = binomial_tail(1_000_000, 200_000, 0.1);
        assert!((0.0..1e-100).contains(&p), "{p}");
        let p = binomial_tail(1_000_000, 100_300, 0.1);
        assert!((0.1..0.2).contains(&p), "{p}"); // 1 sd above the mean: about 16%
    }

    #[test]
    fn missing_and_wrong_typed_columns_are_batch_errors() {
        let v = validator();
        let b = Batch::from_columns(vec![
            Column::new("len", ColumnData::S64(vec![1, 2])),
            Column::new("flag", ColumnData::Bool(vec![true, false])),
        ])
        .unwrap();
        let f = v.validate(&b);
        use Severity::*;
        assert_eq!(
            short(&f),
            [
                (WRONG_TYPE, Some("len"), None, Error),
                (MISSING_COLUMN, Some("island"), None, Error),
                (MISSING_COLUMN, Some("year"), None, Error),
                (DOMAIN_SHARE, Some("flag"), None, Warning),
                (UNSEEN_CATEGORY, Some("flag"), Some(1), Warning),
            ]
        );
        assert_eq!(f[0].message, "column `len` is s64, expected f64");
        assert_eq!(f[1].message, "column `island` is missing");
        assert_eq!(f[4].message, "`flag` is `false`, not in the domain `true`");
    }

    #[test]
    fn optional_columns_soft_domains_and_integer_domains() {
        let s: Schema = toml::from_str(
            r#"
[[columns]]
name = "gone"
type = "string"
required = false

[[columns]]
name = "c"
type = "string"
domain = ["a", "b"]
min_domain_share = 0.5

[[columns]]
name = "n"
type = "s64"
domain = ["1", "2"]
"#,
        )
        .unwrap();
        let v = DataQuality::new(Some(s), None).unwrap();
        let b = Batch::from_columns(vec![
            Column::new(
                "c",
                ColumnData::String(vec!["a".into(), "z".into(), "b".into()]),
            ),
            Column::new("n", ColumnData::S64(vec![1, 2, 3])),
        ])
        .unwrap();
        let f = v.validate(&b);
        // 2 of 3 in the domain passes min_domain_share 0.5; the row is still named.
        assert_eq!(
            short(&f),
            [
                (DOMAIN_SHARE, Some("n"), None, Severity::Warning),
                (UNSEEN_CATEGORY, Some("c"), Some(1), Severity::Warning),
                (UNSEEN_CATEGORY, Some("n"), Some(2), Severity::Warning),
            ]
        );
        assert_eq!(f[2].message, "`n` is `3`, not in the domain `1`, `2`");
    }

    fn config_error(toml_text: &str) -> String {
        let s: Schema = toml::from_str(toml_text).unwrap();
        let e = DataQuality::new(Some(s), None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        e.to_string()
    }

    #[test]
    fn config_errors_name_the_key() {
        let col = |rest: &str| format!("[[columns]]\nname = \"x\"\n{rest}\n");
        assert_eq!(
            config_error(&col("type = \"decimal\"")),
            "invalid config `columns.x.type`: unknown type `decimal`; use f64, f32, s64, bool or string"
        );
        assert_eq!(
            config_error(&col("type = \"f64\"\nmin = 2.0\nmax = 1.0")),
            "invalid config `columns.x.min`: 2 is above max 1"
        );
        assert_eq!(
            config_error(&col("type = \"string\"\nmax = 1.0")),
            "invalid config `columns.x.max`: needs a numeric column, but the type is string"
        );
        assert_eq!(
            config_error(&col("type = \"f64\"\nmax_null_rate = 1.5")),
            "invalid config `columns.x.max_null_rate`: 1.5 is not a share between 0 and 1"
        );
        assert_eq!(
            config_error(&col("type = \"f64\"\nmin = 0.0\nrange_slack = 0.1")),
            "invalid config `columns.x.range_slack`: needs both `min` and `max`"
        );
        assert_eq!(
            config_error(&col("type = \"f64\"\ndomain = [\"1\"]")),
            "invalid config `columns.x.domain`: needs a string, bool or s64 column, but the type is f64"
        );
        assert_eq!(
            config_error(&col("type = \"bool\"\ndomain = [\"yes\"]")),
            "invalid config `columns.x.domain`: `yes` is not a bool value written as text"
        );
        assert_eq!(
            config_error(&col("type = \"string\"\ndomain = []")),
            "invalid config `columns.x.domain`: is empty; nothing would pass"
        );
        assert_eq!(
            config_error(&col("type = \"string\"\nmin_domain_share = 0.5")),
            "invalid config `columns.x.min_domain_share`: needs a `domain`"
        );
        assert_eq!(
            config_error(&format!(
                "{}{}",
                col("type = \"f64\""),
                col("type = \"s64\"")
            )),
            "invalid config `columns.x`: appears twice"
        );
        assert_eq!(
            config_error("columns = []"),
            "invalid config `columns`: is empty; list at least one column"
        );
        // serde rejects unknown keys and names them.
        let e = toml::from_str::<Schema>(&col("type = \"f64\"\nmaximum = 3.0")).unwrap_err();
        assert!(e.to_string().contains("unknown field `maximum`"), "{e}");
    }

    #[test]
    fn no_schema_and_no_reference_is_an_error() {
        let e = DataQuality::new(None, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Reference);
        assert!(e.to_string().contains("keel profile"), "{e}");
        let e = DataQuality::new(None, Some(&Batch::default())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Reference);
        // The inferred schema is the one `infer` gives.
        assert_eq!(
            validator().schema(),
            &infer(&reference(), &InferOptions::default())
        );
    }

    #[test]
    fn penguins_reference_profile() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/penguins/reference.csv");
        let r = keel_data::io::read_all(&path, None).unwrap();
        let s = infer(&r, &InferOptions::default());
        let island = s.columns.iter().find(|c| c.name == "island").unwrap();
        assert_eq!(
            island.domain.as_deref().unwrap(),
            ["Biscoe", "Dream", "Torgersen"]
        );
        let mass = s.columns.iter().find(|c| c.name == "body_mass_g").unwrap();
        assert_eq!((mass.min, mass.max), (Some(2700.0), Some(6300.0)));
        assert_eq!(mass.null_rate, 0.004464); // 1 of 224
        // The reference passes its own schema.
        let v = DataQuality::new(Some(s), None).unwrap();
        assert!(v.validate(&r).is_empty(), "{:?}", v.validate(&r));
    }
}
