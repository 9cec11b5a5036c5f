//! The performance report and [`analyse`], which builds it: realized
//! metrics overall, per chunk and per segment; CBPE estimates and bounds per
//! chunk when a labelled reference is given; alerts. The report serialises
//! to the JSON of `keel performance --format json`:
//!
//! ```json
//! {"task": "binary",
//!  "overall": {"rows": 10, "labelled": 8, "coverage": 0.8, "realized": {"f1": 0.5}},
//!  "chunks": [{"start": 0, "end": 4, "rows": 5, "labelled": 4, "coverage": 0.8,
//!              "realized": {}, "estimated": {}, "sampling_error": {},
//!              "confidence": {"f1": [0.4, 0.6]}, "bounds": {"f1": [0.45, 0.7]},
//!              "alerts": ["f1"]}],
//!  "segments": {"north": {"rows": 6, "labelled": 5, "coverage": 0.83,
//!                         "judged": true, "realized": {}}}}
//! ```
//!
//! A chunk's metric alerts when it leaves its bounds: its realized value
//! once labels cover at least `realized_coverage` of the chunk, its
//! estimate before that.

use super::binary::{self, BinaryData};
use super::cbpe::{BinaryCbpe, Calibration, CbpeOptions, Estimate, MulticlassCbpe};
use super::chunk::{self, ChunkSpan};
use super::multiclass::{self, MulticlassData};
use super::regression::{self, RegressionData};
use super::thresholds::{self, Bounds, STD_MULTIPLIER};
use super::{Metrics, Task};
use crate::{AlgoError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A model's output and labels, of any task.
#[derive(Debug, Clone, Copy)]
pub enum Data<'a> {
    /// Binary classification.
    Binary(BinaryData<'a>),
    /// Multiclass classification.
    Multiclass(MulticlassData<'a>),
    /// Regression.
    Regression(RegressionData<'a>),
}

impl Data<'_> {
    /// The task.
    pub fn task(&self) -> Task {
        match self {
            Data::Binary(_) => Task::Binary,
            Data::Multiclass(_) => Task::Multiclass,
            Data::Regression(_) => Task::Regression,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            Data::Binary(d) => d.rows(),
            Data::Multiclass(d) => d.rows(),
            Data::Regression(d) => d.rows(),
        }
    }

    /// Checks lengths and values.
    pub fn check(&self) -> Result<()> {
        match self {
            Data::Binary(d) => d.check(),
            Data::Multiclass(d) => d.check(),
            Data::Regression(d) => d.check(),
        }
    }

    /// Realized metrics of `rows` (indices into the data).
    pub fn realized(&self, rows: impl IntoIterator<Item = usize>) -> Realized {
        match self {
            Data::Binary(d) => {
                let r = binary::realized(d, rows);
                Realized {
                    rows: r.rows,
                    labelled: r.labelled,
                    metrics: r.metrics,
                    confusion: Some(r.confusion.iter().map(|row| row.to_vec()).collect()),
                }
            }
            Data::Multiclass(d) => {
                let r = multiclass::realized(d, rows);
                Realized {
                    rows: r.rows,
                    labelled: r.labelled,
                    metrics: r.metrics,
                    confusion: Some(r.confusion),
                }
            }
            Data::Regression(d) => {
                let r = regression::realized(d, rows);
                Realized {
                    rows: r.rows,
                    labelled: r.labelled,
                    metrics: r.metrics,
                    confusion: None,
                }
            }
        }
    }
}

/// A model's output and labels, owned, in the types [`Data`] borrows (the
/// CLI builds them from files, the `performance-monitor` from a window's rows).
#[derive(Debug, Clone, PartialEq)]
pub enum Owned {
    Binary {
        labels: Vec<Option<bool>>,
        predictions: Vec<bool>,
        scores: Option<Vec<f64>>,
    },
    Multiclass {
        labels: Vec<Option<u32>>,
        predictions: Vec<u32>,
        probabilities: Vec<Vec<f64>>,
    },
    Regression {
        labels: Vec<Option<f64>>,
        predictions: Vec<f64>,
        /// Feature columns for DLE (empty: no estimate).
        features: Vec<Vec<f64>>,
    },
}

impl Owned {
    /// The probability columns to pass to [`Owned::data`].
    pub fn columns(&self) -> Vec<&[f64]> {
        match self {
            Owned::Multiclass { probabilities, .. } => {
                probabilities.iter().map(Vec::as_slice).collect()
            }
            Owned::Regression { features, .. } => features.iter().map(Vec::as_slice).collect(),
            _ => Vec::new(),
        }
    }

    /// The data, borrowing `columns` (from [`Owned::columns`]).
    pub fn data<'a>(&'a self, columns: &'a [&'a [f64]]) -> Data<'a> {
        match self {
            Owned::Binary {
                labels,
                predictions,
                scores,
            } => Data::Binary(BinaryData {
                labels,
                predictions,
                scores: scores.as_deref(),
            }),
            Owned::Multiclass {
                labels,
                predictions,
                ..
            } => Data::Multiclass(MulticlassData {
                labels,
                predictions,
                probabilities: columns,
            }),
            Owned::Regression {
                labels,
                predictions,
                ..
            } => Data::Regression(RegressionData {
                labels,
                predictions,
                features: columns,
            }),
        }
    }
}

/// Realized metrics of some rows, of any task.
#[derive(Debug, Clone, PartialEq)]
pub struct Realized {
    /// Rows looked at.
    pub rows: usize,
    /// Of which labelled.
    pub labelled: usize,
    /// Metrics by name.
    pub metrics: Metrics,
    /// A classifier's confusion matrix, rows the truth, columns the prediction.
    pub confusion: Option<Vec<Vec<u64>>>,
}

/// How [`analyse`] groups rows and judges them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerformanceOptions {
    /// Rows per chunk, in row order.
    pub chunk_size: usize,
    /// Labelled rows a segment needs before its metrics are reported.
    pub min_segment_labelled: usize,
    /// Share of labelled rows from which a chunk's realized value, rather
    /// than its estimate, decides its alerts.
    pub realized_coverage: f64,
    /// When CBPE calibrates scores.
    pub calibration: Calibration,
    /// Bounds are the reference mean ± this many standard deviations.
    pub std_multiplier: f64,
}

impl PerformanceOptions {
    /// Defaults for a chunk size: segments judged from 30 labelled rows,
    /// realized values trusted from 50 % coverage, NannyML's calibration
    /// rule and ±3 standard deviations.
    pub fn new(chunk_size: usize) -> PerformanceOptions {
        PerformanceOptions {
            chunk_size,
            min_segment_labelled: 30,
            realized_coverage: 0.5,
            calibration: Calibration::Auto,
            std_multiplier: STD_MULTIPLIER,
        }
    }
}

/// Rows, labels and realized metrics of the whole data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Rows.
    pub rows: usize,
    /// Rows with a label.
    pub labelled: usize,
    /// `labelled / rows` (0 without rows).
    pub coverage: f64,
    /// Realized metrics.
    pub realized: Metrics,
    /// Confusion matrix of a classifier, rows the truth, columns the prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Vec<Vec<u64>>>,
}

/// One chunk of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkReport {
    /// First row.
    pub start: usize,
    /// Last row (inclusive).
    pub end: usize,
    /// Rows.
    pub rows: usize,
    /// Rows with a label.
    pub labelled: usize,
    /// `labelled / rows`.
    pub coverage: f64,
    /// Realized metrics of the labelled rows.
    pub realized: Metrics,
    /// CBPE estimates (classification with a labelled reference).
    #[serde(default, skip_serializing_if = "Metrics::is_empty")]
    pub estimated: Metrics,
    /// Sampling error σ of each estimate.
    #[serde(default, skip_serializing_if = "Metrics::is_empty")]
    pub sampling_error: Metrics,
    /// `estimate ± 3σ`, clipped to the metric's range.
    #[serde(default, skip_serializing_if = "Bounds::is_empty")]
    pub confidence: Bounds,
    /// Alert bounds from the reference.
    #[serde(default)]
    pub bounds: Bounds,
    /// Metrics out of their bounds.
    #[serde(default)]
    pub alerts: Vec<String>,
}

/// One segment of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentReport {
    /// Rows.
    pub rows: usize,
    /// Rows with a label.
    pub labelled: usize,
    /// `labelled / rows`.
    pub coverage: f64,
    /// Whether the segment has enough labelled rows to be judged; its
    /// `realized` is empty when not.
    pub judged: bool,
    /// Realized metrics.
    pub realized: Metrics,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceReport {
    /// The task.
    pub task: Task,
    /// All rows.
    pub overall: Summary,
    /// Chunks in row order.
    pub chunks: Vec<ChunkReport>,
    /// Segments by value (empty without a segment column).
    #[serde(default)]
    pub segments: BTreeMap<String, SegmentReport>,
}

/// Builds the report of `data`: realized metrics overall, per chunk of
/// `options.chunk_size` rows and per value of `segments` (row-aligned; a
/// `None` value belongs to no segment); with a `reference` of the same task,
/// bounds from its chunks and, for classifiers with scores, CBPE estimates.
pub fn analyse(
    data: &Data,
    reference: Option<&Data>,
    segments: Option<&[Option<&str>]>,
    options: &PerformanceOptions,
) -> Result<PerformanceReport> {
    data.check()?;
    let task = data.task();
    let spans = chunk::by_size(data.rows(), options.chunk_size)?;
    let fitted = match reference {
        Some(r) => Fitted::fit(r, task, options)?,
        None => Fitted::default(),
    };
    let all = data.realized(0..data.rows());
    let overall = Summary {
        rows: all.rows,
        labelled: all.labelled,
        coverage: share(all.labelled, all.rows),
        realized: all.metrics,
        confusion: all.confusion,
    };
    let chunks = spans
        .iter()
        .map(|span| fitted.chunk(data, *span, options))
        .collect::<Result<Vec<_>>>()?;
    let mut by_segment = BTreeMap::new();
    if let Some(values) = segments {
        if values.len() != data.rows() {
            return Err(AlgoError::Input {
                column: "segment".into(),
                row: None,
                message: format!("has {} rows, the data {}", values.len(), data.rows()),
            });
        }
        for (value, rows) in chunk::segments(values) {
            let r = data.realized(rows.iter().copied());
            let judged = r.labelled >= options.min_segment_labelled.max(1);
            by_segment.insert(
                value,
                SegmentReport {
                    rows: r.rows,
                    labelled: r.labelled,
                    coverage: share(r.labelled, r.rows),
                    judged,
                    realized: if judged { r.metrics } else { Metrics::new() },
                },
            );
        }
    }
    Ok(PerformanceReport {
        task,
        overall,
        chunks,
        segments: by_segment,
    })
}

/// A fitted estimator of either classification task.
#[derive(Debug, Clone)]
enum Estimator {
    Binary(BinaryCbpe),
    Multiclass(MulticlassCbpe),
    /// DLE's loss models (not `Clone`: shared).
    #[cfg(feature = "dle")]
    Regression(std::sync::Arc<super::dle::Dle>),
}

/// What a labelled reference gives the chunks of an analysis: the bounds of
/// every metric and, for classifiers with scores, CBPE fitted on it. Built
/// once by [`Fitted::fit`], then asked for one chunk at a time by
/// [`Fitted::chunk`]: [`analyse`] does that for each chunk of a file, the
/// `performance-monitor` plugin for each window the host closes.
#[derive(Debug, Clone, Default)]
pub struct Fitted {
    /// Alert bounds per metric (empty without a reference); a caller may
    /// replace entries with fixed bounds before judging chunks.
    pub bounds: Bounds,
    estimator: Option<Estimator>,
}

impl Fitted {
    /// Bounds of every metric of `task` from the reference's chunks of
    /// `options.chunk_size` rows, and CBPE fitted on it where it applies.
    pub fn fit(reference: &Data, task: Task, options: &PerformanceOptions) -> Result<Fitted> {
        if reference.task() != task {
            return Err(AlgoError::Reference {
                column: None,
                message: format!(
                    "the reference is {:?}, the data {:?}",
                    reference.task(),
                    task
                ),
            });
        }
        reference.check().map_err(|e| AlgoError::Reference {
            column: e.column().map(str::to_owned),
            message: e.to_string(),
        })?;
        let chunks: Vec<Metrics> = chunk::by_size(reference.rows(), options.chunk_size)?
            .iter()
            .map(|c| reference.realized(c.range()).metrics)
            .collect();
        let bounds = thresholds::from_reference(&chunks, task.metrics(), options.std_multiplier);
        let cbpe = CbpeOptions {
            chunk_size: options.chunk_size,
            calibration: options.calibration,
            std_multiplier: options.std_multiplier,
        };
        let estimator = match reference {
            Data::Binary(r) if r.scores.is_some() => {
                Some(Estimator::Binary(BinaryCbpe::fit(r, &cbpe)?))
            }
            Data::Multiclass(r) => Some(Estimator::Multiclass(MulticlassCbpe::fit(r, &cbpe)?)),
            #[cfg(feature = "dle")]
            Data::Regression(r) if !r.features.is_empty() => Some(Estimator::Regression(
                std::sync::Arc::new(super::dle::Dle::fit(r, r.features, options.chunk_size)?),
            )),
            _ => None,
        };
        Ok(Fitted { bounds, estimator })
    }

    /// Whether CBPE estimates chunks (a classifier's reference with scores).
    pub fn estimates(&self) -> bool {
        self.estimator.is_some()
    }

    /// The report of the rows `span` of `data`: realized metrics of its
    /// labelled rows, CBPE estimates of all its rows, bounds and alerts.
    pub fn chunk(
        &self,
        data: &Data,
        span: ChunkSpan,
        options: &PerformanceOptions,
    ) -> Result<ChunkReport> {
        let Realized {
            rows,
            labelled,
            metrics: realized,
            ..
        } = data.realized(span.range());
        let estimate = match (&self.estimator, data) {
            (Some(Estimator::Binary(e)), Data::Binary(d)) if d.scores.is_some() => {
                e.estimate(d, span.range())?
            }
            (Some(Estimator::Multiclass(e)), Data::Multiclass(d)) => e.estimate(d, span.range())?,
            #[cfg(feature = "dle")]
            (Some(Estimator::Regression(e)), Data::Regression(d)) if !d.features.is_empty() => {
                e.estimate(d, d.features, span.range())?
            }
            _ => Estimate::default(),
        };
        let coverage = share(labelled, rows);
        let alerts = data
            .task()
            .metrics()
            .iter()
            .filter(|&&m| {
                let Some(&b) = self.bounds.get(m) else {
                    return false;
                };
                judged(m, &realized, &estimate.values, coverage, options)
                    .is_some_and(|j| thresholds::outside(b, j.value()))
            })
            .map(|&m| m.to_owned())
            .collect();
        Ok(ChunkReport {
            start: span.start,
            end: span.end,
            rows,
            labelled,
            coverage,
            realized,
            estimated: estimate.values,
            sampling_error: estimate.sampling_error,
            confidence: estimate.confidence,
            bounds: self.bounds.clone(),
            alerts,
        })
    }
}

/// The value of a chunk's metric that decides its alert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Judged {
    /// The realized value: labels cover at least `realized_coverage` of the
    /// chunk (or there is no estimate to fall back on).
    Realized(f64),
    /// The estimate: too few labels yet.
    Estimated(f64),
}

impl Judged {
    /// The value judged.
    pub fn value(self) -> f64 {
        match self {
            Judged::Realized(v) | Judged::Estimated(v) => v,
        }
    }
}

/// Which value of `metric` a chunk with label `coverage` is judged on: its
/// realized value once labels cover `options.realized_coverage` of it, its
/// estimate before that (or when the realized value is undefined); `None`
/// when neither is there.
pub fn judged(
    metric: &str,
    realized: &Metrics,
    estimated: &Metrics,
    coverage: f64,
    options: &PerformanceOptions,
) -> Option<Judged> {
    let trust_realized = coverage > 0.0 && coverage >= options.realized_coverage;
    let realized = realized.get(metric).copied().flatten();
    let estimated = estimated.get(metric).copied().flatten();
    match (trust_realized, realized, estimated) {
        (true, Some(v), _) => Some(Judged::Realized(v)),
        (_, None, Some(v)) | (false, _, Some(v)) => Some(Judged::Estimated(v)),
        _ => None,
    }
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Deterministic scores in (0, 1) and labels drawn from them, with the
    /// model getting worse (labels flipped) from row `worse_from` on.
    fn binary(n: usize, worse_from: usize) -> (Vec<f64>, Vec<bool>, Vec<Option<bool>>) {
        let mut s = 0x9e37_79b9_u64;
        let mut uniform = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let scores: Vec<f64> = (0..n).map(|_| uniform()).collect();
        let labels = scores
            .iter()
            .enumerate()
            .map(|(i, &p)| Some((uniform() < p) != (i >= worse_from)))
            .collect();
        let predictions = scores.iter().map(|&p| p >= 0.5).collect();
        (scores, predictions, labels)
    }

    #[test]
    fn report_has_the_issue_shape_and_alerts_on_a_drop() {
        let (rs, rp, rl) = binary(4000, usize::MAX);
        let (s, p, mut l) = binary(3000, 2000);
        // The first chunk has no labels yet: only estimates there.
        l[..1000].fill(None);
        let reference = Data::Binary(BinaryData {
            labels: &rl,
            predictions: &rp,
            scores: Some(&rs),
        });
        let data = Data::Binary(BinaryData {
            labels: &l,
            predictions: &p,
            scores: Some(&s),
        });
        let region: Vec<Option<&str>> = (0..3000)
            .map(|i| match i % 4 {
                0 | 1 => Some("north"),
                2 => Some("south"),
                _ => None,
            })
            .collect();
        let mut options = PerformanceOptions::new(1000);
        options.min_segment_labelled = 700;
        let report = analyse(&data, Some(&reference), Some(&region), &options).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["task"], "binary");
        assert_eq!(json["overall"]["rows"], 3000);
        assert_eq!(json["overall"]["labelled"], 2000);
        let chunks = json["chunks"].as_array().unwrap();
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            (chunks[2]["start"].as_u64(), chunks[2]["end"].as_u64()),
            (Some(2000), Some(2999))
        );
        assert!(chunks[0]["realized"]["f1"].is_null());
        assert!(chunks[0]["estimated"]["f1"].is_number());
        assert!(chunks[0]["bounds"]["accuracy"].as_array().unwrap().len() == 2);
        // Flipped labels: the realized accuracy collapses and alerts.
        let accuracy = "accuracy".to_owned();
        assert!(
            !report.chunks[1].alerts.contains(&accuracy),
            "{:?}",
            report.chunks[1]
        );
        assert!(report.chunks[2].alerts.contains(&accuracy));
        // 500 labelled rows of 750 in "south": below 700, not judged.
        let south = &report.segments["south"];
        assert_eq!(
            (south.rows, south.labelled, south.judged),
            (750, 500, false)
        );
        assert!(south.realized.is_empty());
        assert!(report.segments["north"].judged);
        assert!(!report.segments.contains_key(""));
        // Round trip.
        let back: PerformanceReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn mismatched_reference_and_segments_are_errors() {
        let (s, p, l) = binary(10, usize::MAX);
        let data = Data::Binary(BinaryData {
            labels: &l,
            predictions: &p,
            scores: Some(&s),
        });
        let y: Vec<Option<f64>> = vec![Some(1.0); 10];
        let x = vec![1.0; 10];
        let reg = Data::Regression(RegressionData {
            labels: &y,
            predictions: &x,
            features: &[],
        });
        let options = PerformanceOptions::new(5);
        let e = analyse(&data, Some(&reg), None, &options).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Reference);
        let e = analyse(&data, None, Some(&[Some("a")]), &options).unwrap_err();
        assert_eq!(e.column(), Some("segment"));
        let report = analyse(&reg, None, None, &options).unwrap();
        assert_eq!(report.chunks.len(), 2);
        assert!(report.chunks[0].estimated.is_empty());
    }
}
