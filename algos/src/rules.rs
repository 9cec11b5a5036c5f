//! Rule validator: per-column checks (type, presence, range, not-null,
//! allowed values) that turn each violation into a [`Finding`].
//!
//! Rule ids (stable; the host and audit records use them): `missing-column`,
//! `type`, `not-null`, `min`, `max`, `not-finite`, `allowed`.
//!
//! Severities: without a `severity` in the config, `not-null` findings are
//! warnings (a null is often expected and imputed later, so it should not
//! drop rows under a `reject` policy by default) and every other rule gives
//! errors. With `severity` set, every finding gets that severity.
//!
//! Findings come in a fixed order: batch-level ones (`missing-column`,
//! `type`, with no row) first in config order, then row findings by row, and
//! within a row in config order.

use crate::util::quote_list;
use crate::{AlgoError, Result};
use keel_data::{Batch, Column, ColumnData, DataType};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use std::collections::HashSet;

/// A column the batch lacks.
pub const MISSING_COLUMN: &str = "missing-column";
/// A column of the wrong type (or one a rule cannot apply to).
pub const TYPE: &str = "type";
/// A null where `not_null` is set.
pub const NOT_NULL: &str = "not-null";
/// A value below `min`.
pub const MIN: &str = "min";
/// A value above `max`.
pub const MAX: &str = "max";
/// NaN or ±∞ in a column with `min` or `max`.
pub const NOT_FINITE: &str = "not-finite";
/// A string outside `allowed`.
pub const ALLOWED: &str = "allowed";

/// How serious a finding is (the WIT `severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Suspicious; never blocks data.
    Warning,
    /// A violation; a `reject` policy drops the row.
    Error,
}

/// One violation.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Rule id, one of the constants of this module.
    pub rule: &'static str,
    /// The column concerned.
    pub column: Option<String>,
    /// Zero-based row in the batch; `None` for batch-level findings.
    pub row: Option<usize>,
    /// How serious it is.
    pub severity: Severity,
    /// What is wrong, quoting the value.
    pub message: String,
}

/// Configuration of the rule validator.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Rules per column, in the order given.
    pub columns: ColumnRules,
    /// Overrides the severity of every finding.
    #[serde(default)]
    pub severity: Option<Severity>,
}

/// Column rules in config order (a JSON object whose order is kept).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ColumnRules(pub Vec<(String, ColumnRule)>);

impl<'de> Deserialize<'de> for ColumnRules {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> core::result::Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = ColumnRules;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a map from column name to its rules")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> core::result::Result<ColumnRules, A::Error> {
                let mut rules: Vec<(String, ColumnRule)> = Vec::new();
                while let Some((name, rule)) = map.next_entry::<String, ColumnRule>()? {
                    if rules.iter().any(|(n, _)| *n == name) {
                        return Err(serde::de::Error::custom(format!(
                            "column `{name}` appears twice"
                        )));
                    }
                    rules.push((name, rule));
                }
                Ok(ColumnRules(rules))
            }
        }
        deserializer.deserialize_map(Ordered)
    }
}

/// The rules of one column; every one is optional. A column with no rule
/// at all must still be present.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    /// Required type: a type name (`f64`, `s64`, `string`, `bool`, `f32` or
    /// their aliases) or `numeric` for any of f64, f32, s64.
    #[serde(default, rename = "type")]
    pub data_type: Option<String>,
    /// Smallest allowed value (numeric columns).
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest allowed value (numeric columns).
    #[serde(default)]
    pub max: Option<f64>,
    /// Whether nulls are reported.
    #[serde(default)]
    pub not_null: bool,
    /// The allowed values (string columns).
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Exact(DataType),
    Numeric,
}

impl Expect {
    fn matches(self, t: DataType) -> bool {
        match self {
            Expect::Exact(e) => e == t,
            Expect::Numeric => t.is_numeric(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Expect::Exact(t) => t.as_str(),
            Expect::Numeric => "numeric",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Checks {
    column: String,
    expect: Option<Expect>,
    min: Option<f64>,
    max: Option<f64>,
    not_null: bool,
    allowed: Option<(HashSet<String>, String)>,
}

/// A configured rule validator; stateless across batches.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleValidator {
    checks: Vec<Checks>,
    severity: Option<Severity>,
}

impl RuleValidator {
    /// Checks the config and builds the validator.
    pub fn new(config: RulesConfig) -> Result<RuleValidator> {
        let checks = config
            .columns
            .0
            .into_iter()
            .map(|(column, rule)| compile(column, rule))
            .collect::<Result<_>>()?;
        Ok(RuleValidator {
            checks,
            severity: config.severity,
        })
    }

    /// Checks one batch; an empty list means it is clean.
    pub fn validate(&self, batch: &Batch) -> Vec<Finding> {
        let mut batch_level = Vec::new();
        let mut by_row = Vec::new();
        for c in &self.checks {
            let Some(col) = batch.column(&c.column) else {
                batch_level.push(self.finding(
                    MISSING_COLUMN,
                    c,
                    None,
                    format!("column `{}` is missing", c.column),
                ));
                continue;
            };
            let mut type_reported = false;
            if let Some(expect) = c.expect
                && !expect.matches(col.data_type())
            {
                let message = format!(
                    "column `{}` is {}, expected {}",
                    c.column,
                    col.data_type(),
                    expect.name()
                );
                batch_level.push(self.finding(TYPE, c, None, message));
                type_reported = true;
            }
            if c.not_null {
                for i in (0..batch.rows()).filter(|i| !col.is_valid(*i)) {
                    by_row.push(self.finding(
                        NOT_NULL,
                        c,
                        Some(i),
                        format!("`{}` is null", c.column),
                    ));
                }
            }
            if c.min.is_some() || c.max.is_some() {
                match col.as_f64() {
                    Some(values) => self.check_range(c, col, &values, &mut by_row),
                    None if !type_reported => {
                        let message = format!(
                            "column `{}` is {}; `min` and `max` need a numeric column",
                            c.column,
                            col.data_type()
                        );
                        batch_level.push(self.finding(TYPE, c, None, message));
                        type_reported = true;
                    }
                    None => {}
                }
            }
            if let Some((allowed, listed)) = &c.allowed {
                match &col.data {
                    ColumnData::String(values) => {
                        for (i, v) in values.iter().enumerate() {
                            if col.is_valid(i) && !allowed.contains(v) {
                                let message =
                                    format!("`{}` is `{v}`, not one of {listed}", c.column);
                                by_row.push(self.finding(ALLOWED, c, Some(i), message));
                            }
                        }
                    }
                    _ if !type_reported => {
                        let message = format!(
                            "column `{}` is {}; `allowed` needs a string column",
                            c.column,
                            col.data_type()
                        );
                        batch_level.push(self.finding(TYPE, c, None, message));
                    }
                    _ => {}
                }
            }
        }
        // Stable: findings of one row keep config order.
        by_row.sort_by_key(|f| f.row);
        batch_level.extend(by_row);
        batch_level
    }

    fn check_range(&self, c: &Checks, col: &Column, values: &[f64], out: &mut Vec<Finding>) {
        for (i, &x) in values.iter().enumerate() {
            if !col.is_valid(i) {
                continue;
            }
            let name = &c.column;
            if !x.is_finite() {
                out.push(self.finding(
                    NOT_FINITE,
                    c,
                    Some(i),
                    format!("`{name}` is {x}, not a finite number"),
                ));
            } else if let Some(min) = c.min.filter(|m| x < *m) {
                out.push(self.finding(
                    MIN,
                    c,
                    Some(i),
                    format!("`{name}` is {x}, below the minimum {min}"),
                ));
            } else if let Some(max) = c.max.filter(|m| x > *m) {
                out.push(self.finding(
                    MAX,
                    c,
                    Some(i),
                    format!("`{name}` is {x}, above the maximum {max}"),
                ));
            }
        }
    }

    fn finding(
        &self,
        rule: &'static str,
        c: &Checks,
        row: Option<usize>,
        message: String,
    ) -> Finding {
        let default = if rule == NOT_NULL {
            Severity::Warning
        } else {
            Severity::Error
        };
        Finding {
            rule,
            column: Some(c.column.clone()),
            row,
            severity: self.severity.unwrap_or(default),
            message,
        }
    }
}

fn compile(column: String, rule: ColumnRule) -> Result<Checks> {
    let key = |k: &str| format!("columns.{column}.{k}");
    let expect = match rule.data_type.as_deref() {
        None => None,
        Some("numeric") => Some(Expect::Numeric),
        Some(name) => Some(Expect::Exact(DataType::parse(name).ok_or_else(|| {
            AlgoError::config(
                &key("type"),
                format!("unknown type `{name}`; use f64, f32, s64, bool, string or numeric"),
            )
        })?)),
    };
    for (k, v) in [("min", rule.min), ("max", rule.max)] {
        if v.is_some_and(f64::is_nan) {
            return Err(AlgoError::config(&key(k), "is NaN"));
        }
    }
    if let (Some(min), Some(max)) = (rule.min, rule.max)
        && min > max
    {
        return Err(AlgoError::config(
            &key("min"),
            format!("{min} is above max {max}"),
        ));
    }
    let allowed = match rule.allowed {
        None => None,
        Some(list) if list.is_empty() => {
            return Err(AlgoError::config(
                &key("allowed"),
                "is empty; nothing would pass",
            ));
        }
        Some(list) => Some((list.iter().cloned().collect(), quote_list(&list))),
    };
    Ok(Checks {
        column,
        expect,
        min: rule.min,
        max: rule.max,
        not_null: rule.not_null,
        allowed,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn validator(json: &str) -> RuleValidator {
        RuleValidator::new(serde_json::from_str(json).unwrap()).unwrap()
    }

    fn batch() -> Batch {
        Batch::from_columns(vec![
            Column::from_opt_f64(
                "len",
                &[Some(30.0), Some(12.5), None, Some(f64::NAN), Some(71.0)],
            ),
            Column::from_opt_str(
                "island",
                &[
                    Some("Dream"),
                    None,
                    Some("Atlantis"),
                    Some("Biscoe"),
                    Some("Dream"),
                ],
            ),
            Column::new("n", ColumnData::S64(vec![1, 2, 3, 4, 5])),
        ])
        .unwrap()
    }

    fn short(f: &[Finding]) -> Vec<(&str, Option<&str>, Option<usize>, Severity)> {
        f.iter()
            .map(|f| (f.rule, f.column.as_deref(), f.row, f.severity))
            .collect()
    }

    #[test]
    fn range_null_and_allowed_findings_in_row_order() {
        let v = validator(
            r#"{"columns":{
                "len":{"type":"f64","min":25,"max":70,"not_null":true},
                "island":{"type":"string","allowed":["Biscoe","Dream","Torgersen"],"not_null":true}
            }}"#,
        );
        let f = v.validate(&batch());
        use Severity::*;
        assert_eq!(
            short(&f),
            [
                (MIN, Some("len"), Some(1), Error),
                (NOT_NULL, Some("island"), Some(1), Warning),
                (NOT_NULL, Some("len"), Some(2), Warning),
                (ALLOWED, Some("island"), Some(2), Error),
                (NOT_FINITE, Some("len"), Some(3), Error),
                (MAX, Some("len"), Some(4), Error),
            ]
        );
        let messages: Vec<_> = f.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`len` is 12.5, below the minimum 25",
                "`island` is null",
                "`len` is null",
                "`island` is `Atlantis`, not one of `Biscoe`, `Dream`, `Torgersen`",
                "`len` is NaN, not a finite number",
                "`len` is 71, above the maximum 70",
            ]
        );
    }

    #[test]
    fn missing_and_type_findings_are_batch_level() {
        let v = validator(
            r#"{"columns":{"gone":{},"n":{"type":"f64","min":0},"island":{"min":0},"len":{"allowed":["x"]}},"severity":"warning"}"#,
        );
        let f = v.validate(&batch());
        use Severity::Warning;
        assert_eq!(
            short(&f),
            [
                (MISSING_COLUMN, Some("gone"), None, Warning),
                (TYPE, Some("n"), None, Warning),
                (TYPE, Some("island"), None, Warning),
                (TYPE, Some("len"), None, Warning),
            ]
        );
        assert_eq!(f[1].message, "column `n` is s64, expected f64");
        assert_eq!(
            f[2].message,
            "column `island` is string; `min` and `max` need a numeric column"
        );
        // `numeric` accepts s64; infinity is not finite
        let v = validator(r#"{"columns":{"n":{"type":"numeric","max":4}}}"#);
        assert_eq!(
            short(&v.validate(&batch())),
            [(MAX, Some("n"), Some(4), Severity::Error)]
        );
        let b = Batch::from_columns(vec![Column::new(
            "x",
            ColumnData::F64(vec![f64::NEG_INFINITY]),
        )])
        .unwrap();
        let f = validator(r#"{"columns":{"x":{"max":1}}}"#).validate(&b);
        assert_eq!(f[0].message, "`x` is -inf, not a finite number");
    }

    #[test]
    fn clean_and_empty_batches_give_nothing() {
        let v = validator(r#"{"columns":{"n":{"type":"s64","min":1,"max":5,"not_null":true}}}"#);
        assert!(v.validate(&batch()).is_empty());
        assert!(v.validate(&batch().slice(0, 0)).is_empty());
    }

    #[test]
    fn config_errors_name_the_key() {
        let e = RuleValidator::new(
            serde_json::from_str(r#"{"columns":{"x":{"type":"decimal"}}}"#).unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config `columns.x.type`: unknown type `decimal`; use f64, f32, s64, bool, string or numeric"
        );
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = RuleValidator::new(
            serde_json::from_str(r#"{"columns":{"x":{"min":2,"max":1}}}"#).unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config `columns.x.min`: 2 is above max 1"
        );
        assert!(
            RuleValidator::new(
                serde_json::from_str(r#"{"columns":{"x":{"allowed":[]}}}"#).unwrap()
            )
            .is_err()
        );
        assert!(serde_json::from_str::<RulesConfig>(r#"{"columns":{"x":{"maximum":1}}}"#).is_err());
        assert!(serde_json::from_str::<RulesConfig>(r#"{"columns":{"x":{},"x":{}}}"#).is_err());
        assert!(
            serde_json::from_str::<RulesConfig>(r#"{"columns":{},"severity":"fatal"}"#).is_err()
        );
    }

    #[test]
    fn long_allowed_lists_are_cut() {
        let list: Vec<String> = (0..12).map(|i| i.to_string()).collect();
        assert_eq!(
            quote_list(&list),
            "`0`, `1`, `2`, `3`, `4`, `5`, `6`, `7`, `8`, `9` and 2 more"
        );
    }
}
