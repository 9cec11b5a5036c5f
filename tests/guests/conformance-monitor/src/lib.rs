//! The conformance monitor (tests/conformance/README.md), in Rust: every
//! other language's version must report the same on the shared vectors.
//!
//! For each numeric reference column: `mean-shift` = |mean of observed valid,
//! non-NaN values - the reference's mean|, alerting above `threshold`, and
//! `null-share` of the observed rows; then `share-drifted` over the columns.

use keel_sdk::{Batch, ColumnData, Config, Error, Info, Metric, Monitor, Report, Result};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Cfg {
    #[serde(default = "tenth")]
    threshold: f64,
}

fn tenth() -> f64 {
    0.1
}

#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct Acc {
    sum: f64,
    count: u64,
    nulls: u64,
}

struct Conformance {
    threshold: f64,
    /// (column, reference mean), numeric columns in reference order.
    columns: Vec<(String, f64)>,
    rows: u64,
    acc: Vec<Acc>,
}

/// Adds the valid, non-NaN values of `data` to `acc`, in row order (so the
/// floating-point sum is the same in every language).
fn accumulate(acc: &mut Acc, data: &ColumnData, validity: Option<&Vec<bool>>) -> bool {
    let ok = |i: usize| validity.is_none_or(|v| v[i]);
    let mut add = |i: usize, x: f64| {
        if !ok(i) {
            acc.nulls += 1;
        } else if !x.is_nan() {
            acc.sum += x;
            acc.count += 1;
        }
    };
    match data {
        ColumnData::F64(v) => v.iter().enumerate().for_each(|(i, x)| add(i, *x)),
        ColumnData::F32(v) => v
            .iter()
            .enumerate()
            .for_each(|(i, x)| add(i, f64::from(*x))),
        ColumnData::S64(v) => v.iter().enumerate().for_each(|(i, x)| add(i, *x as f64)),
        _ => return false,
    }
    true
}

impl Monitor for Conformance {
    fn info() -> Info {
        Info::new(
            "conformance-monitor",
            "0.1.0",
            "The cross-language conformance monitor (Rust).",
        )
        .schema(r#"{"type":"object","properties":{"threshold":{"type":"number"}},"additionalProperties":false}"#)
    }

    fn create(config: Config, reference: Batch) -> Result<Self> {
        let cfg: Cfg = config.parse()?;
        if reference.rows() == 0 {
            return Err(Error::reference("the reference has no rows"));
        }
        let mut columns = Vec::new();
        for c in reference.columns() {
            let mut acc = Acc::default();
            if accumulate(&mut acc, &c.data, c.validity.as_ref()) {
                let mean = if acc.count == 0 {
                    0.0
                } else {
                    acc.sum / acc.count as f64
                };
                columns.push((c.name.clone(), mean));
            }
        }
        let acc = vec![Acc::default(); columns.len()];
        Ok(Conformance {
            threshold: cfg.threshold,
            columns,
            rows: 0,
            acc,
        })
    }

    fn observe(&mut self, input: &Batch) -> Result<()> {
        for ((name, _), acc) in self.columns.iter().zip(&mut self.acc) {
            let c = input.require(name)?;
            if !accumulate(acc, &c.data, c.validity.as_ref()) {
                return Err(
                    Error::input(format!("column `{name}` is not numeric")).in_column(name.clone())
                );
            }
        }
        self.rows += input.rows() as u64;
        Ok(())
    }

    fn report(&self) -> Result<Report> {
        let mut metrics = Vec::new();
        let mut shifted = Vec::new();
        for ((name, mean), acc) in self.columns.iter().zip(&self.acc) {
            let shift = if acc.count == 0 {
                0.0
            } else {
                (acc.sum / acc.count as f64 - mean).abs()
            };
            let alert = shift > self.threshold;
            if alert {
                shifted.push(name.as_str());
            }
            let share = if self.rows == 0 {
                0.0
            } else {
                acc.nulls as f64 / self.rows as f64
            };
            metrics.push(metric(
                Some(name),
                "mean-shift",
                shift,
                Some(self.threshold),
                alert,
            ));
            metrics.push(metric(Some(name), "null-share", share, None, false));
        }
        let share = if self.columns.is_empty() {
            0.0
        } else {
            shifted.len() as f64 / self.columns.len() as f64
        };
        let alert = !shifted.is_empty();
        metrics.push(metric(None, "share-drifted", share, None, alert));
        let mut summary = format!(
            "{} of {} columns shifted",
            shifted.len(),
            self.columns.len()
        );
        if alert {
            summary.push_str(": ");
            summary.push_str(&shifted.join(", "));
        }
        Ok(Report {
            rows: self.rows,
            alert,
            metrics,
            summary,
        })
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(&(self.rows, &self.acc)).map_err(|e| Error::internal(e.to_string()))
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let (rows, acc): (u64, Vec<Acc>) = serde_json::from_slice(state)
            .map_err(|e| Error::state(format!("not a conformance-monitor snapshot: {e}")))?;
        if acc.len() != self.columns.len() {
            return Err(Error::state("the snapshot is of another reference"));
        }
        self.rows = rows;
        self.acc = acc;
        Ok(())
    }
}

fn metric(
    column: Option<&str>,
    name: &str,
    value: f64,
    threshold: Option<f64>,
    alert: bool,
) -> Metric {
    Metric {
        column: column.map(str::to_string),
        name: name.into(),
        value,
        threshold,
        p_value: None,
        alert,
    }
}

keel_sdk::export_monitor!(Conformance);
