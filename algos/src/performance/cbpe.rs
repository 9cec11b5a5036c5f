//! Confidence-based performance estimation (CBPE), as NannyML 0.13
//! defines it (`nannyml.performance_estimation.confidence_based`): the
//! performance of a classifier estimated from its own calibrated
//! probabilities, before any label is known.
//!
//! **Fit** on a labelled reference (its unlabelled rows are left out):
//! an isotonic calibrator of the labels on the scores (one per class,
//! one-vs-rest, for multiclass), kept only when [`needs_calibration`] says
//! it lowers the expected calibration error; the sampling-error components
//! of each metric; and [`Bounds`] from the realized metric on the
//! reference's chunks ([`thresholds::from_reference`]).
//!
//! **Estimate**, per chunk, from the calibrated probability `p` of each row
//! and its predicted class: the expected confusion matrix (TP = Σ p over
//! rows predicted positive, FP = Σ (1 − p) over them, FN = Σ p over rows
//! predicted negative, TN = Σ (1 − p) over them) and from it `accuracy`,
//! `precision`, `recall` and `f1` (0 on a zero denominator); `roc_auc` as
//! NannyML's `estimate_roc_auc` (rows by descending raw score, cumulated
//! expected positives and negatives rounded to 5 decimals, trapezoidal area).
//! Multiclass: calibrated columns renormalised to sum to 1 (uniform when
//! they sum to 0); `accuracy` the mean calibrated probability of the
//! predicted class; the others the macro mean of the one-vs-rest binary
//! estimates.
//!
//! **Sampling error** σ: NannyML's formulas (`nannyml.sampling_error`),
//! standard deviations of observation-level outcomes on the reference scaled
//! by `1/√(n · share of relevant rows)`; the band is `estimate ± 3σ`, clipped
//! to `[0, 1]`. A metric **alerts** when its estimate leaves its bounds.

use super::binary::{self, BinaryData};
use super::calibration::{Isotonic, needs_calibration};
use super::chunk::by_size;
use super::multiclass::{self, MulticlassData};
use super::thresholds::{self, Bounds, STD_MULTIPLIER};
use super::{Metrics, metric_range, metrics_of, ratio};
use crate::{AlgoError, Result};
use std::ops::Range;

/// The metrics CBPE estimates, in report order.
pub const ESTIMATED: [&str; 5] = ["accuracy", "precision", "recall", "f1", "roc_auc"];

/// Width of the confidence band in sampling errors (NannyML's `SAMPLING_ERROR_RANGE`).
pub const SAMPLING_ERROR_RANGE: f64 = 3.0;

/// When to calibrate the scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Calibration {
    /// Where [`needs_calibration`] says it helps (NannyML's behaviour).
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never: the scores are taken as probabilities.
    Never,
}

/// How CBPE is fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CbpeOptions {
    /// Rows per reference chunk for the bounds (use the analysis' chunk size).
    pub chunk_size: usize,
    /// When to calibrate.
    pub calibration: Calibration,
    /// Bounds are the reference mean ± this many standard deviations.
    pub std_multiplier: f64,
}

impl CbpeOptions {
    /// NannyML's defaults for a chunk size.
    pub fn new(chunk_size: usize) -> CbpeOptions {
        CbpeOptions {
            chunk_size,
            calibration: Calibration::Auto,
            std_multiplier: STD_MULTIPLIER,
        }
    }
}

/// The estimates of one chunk.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Estimate {
    /// Estimated value per metric of [`ESTIMATED`].
    pub values: Metrics,
    /// Its sampling error σ.
    pub sampling_error: Metrics,
    /// `[estimate − 3σ, estimate + 3σ]` clipped to `[0, 1]`.
    pub confidence: Bounds,
    /// Metrics whose estimate leaves their bounds.
    pub alerts: Vec<String>,
}

/// `(std, share of relevant rows)` of a metric on the reference; σ of a
/// chunk of `n` rows is `std / √(n · share)`.
type Component = (f64, f64);

/// CBPE fitted for a binary classifier.
#[derive(Debug, Clone)]
pub struct BinaryCbpe {
    calibrator: Option<Isotonic>,
    accuracy: f64,
    precision: Component,
    recall: Component,
    f1: Component,
    roc_auc: Component,
    /// Bounds of each estimated metric, from the reference.
    pub bounds: Bounds,
}

impl BinaryCbpe {
    /// Fits on a reference with scores and labels.
    pub fn fit(reference: &BinaryData, options: &CbpeOptions) -> Result<BinaryCbpe> {
        reference.check().map_err(as_reference)?;
        let scores = reference
            .scores
            .ok_or_else(|| reference_error("CBPE needs the reference's scores"))?;
        let (mut s, mut y, mut pred) = (Vec::new(), Vec::new(), Vec::new());
        for ((label, &score), &p) in reference
            .labels
            .iter()
            .zip(scores)
            .zip(reference.predictions)
        {
            if let Some(label) = *label {
                s.push(score);
                y.push(label);
                pred.push(p);
            }
        }
        if s.is_empty() {
            return Err(reference_error("CBPE needs labelled reference rows"));
        }
        let calibrate = match options.calibration {
            Calibration::Auto => needs_calibration(&s, &y),
            Calibration::Always => true,
            Calibration::Never => false,
        };
        let calibrator = if calibrate {
            Isotonic::fit(&s, &y)
        } else {
            None
        };
        let chunks: Vec<Metrics> = by_size(reference.rows(), options.chunk_size)?
            .iter()
            .map(|c| binary::realized(reference, c.range()).metrics)
            .collect();
        let outcomes = Outcomes::count(y.iter().zip(&pred).map(|(&y, &p)| (y, p)));
        Ok(BinaryCbpe {
            calibrator,
            accuracy: outcomes.accuracy_std(),
            precision: outcomes.precision(false),
            recall: outcomes.recall(false),
            f1: outcomes.f1(true),
            roc_auc: auroc_component(&s, &y, false),
            bounds: thresholds::from_reference(&chunks, &ESTIMATED, options.std_multiplier),
        })
    }

    /// Whether the scores are calibrated before estimating.
    pub fn calibrated(&self) -> bool {
        self.calibrator.is_some()
    }

    /// The calibrated probability of a score.
    pub fn calibrate(&self, score: f64) -> f64 {
        self.calibrator.as_ref().map_or(score, |c| c.predict(score))
    }

    /// Estimates of the chunk `rows` of `data` (labels are not used).
    pub fn estimate(&self, data: &BinaryData, rows: Range<usize>) -> Result<Estimate> {
        let scores = data
            .scores
            .ok_or_else(|| input_error("score", "CBPE needs the scores"))?;
        let s = scores.get(rows.clone()).unwrap_or(&[]);
        let pred = data.predictions.get(rows).unwrap_or(&[]);
        let mut pairs: Vec<(f64, f64)> = s.iter().map(|&x| (x, self.calibrate(x))).collect();
        let cm = Expected::sum(pred.iter().zip(&pairs).map(|(&p, &(_, q))| (p, q)));
        radsort::sort_by_key(&mut pairs, |p| p.0);
        let n = pairs.len() as f64;
        let values = [
            cm.accuracy(),
            cm.precision(),
            cm.recall(),
            cm.f1(),
            estimate_roc_auc(pairs.iter().rev().map(|p| p.1)),
        ];
        let sigma = [
            self.accuracy / n.sqrt(),
            universal(self.precision, n),
            universal(self.recall, n),
            universal(self.f1, n),
            universal(self.roc_auc, n),
        ];
        Ok(finish(&self.bounds, values, sigma, n))
    }
}

/// CBPE fitted for a multiclass classifier.
#[derive(Debug, Clone)]
pub struct MulticlassCbpe {
    calibrators: Vec<Option<Isotonic>>,
    accuracy: f64,
    /// Per class: `(variance, share)`.
    precision: Vec<Component>,
    recall: Vec<Component>,
    f1: Vec<Component>,
    roc_auc: Vec<Component>,
    /// Bounds of each estimated metric, from the reference.
    pub bounds: Bounds,
}

impl MulticlassCbpe {
    /// Fits on a reference with probabilities and labels.
    pub fn fit(reference: &MulticlassData, options: &CbpeOptions) -> Result<MulticlassCbpe> {
        reference.check().map_err(as_reference)?;
        let k = reference.classes();
        let rows: Vec<(usize, usize)> = reference
            .labels
            .iter()
            .enumerate()
            .filter_map(|(i, y)| y.map(|y| (i, y as usize)))
            .collect();
        if rows.is_empty() {
            return Err(reference_error("CBPE needs labelled reference rows"));
        }
        let chunks: Vec<Metrics> = by_size(reference.rows(), options.chunk_size)?
            .iter()
            .map(|c| multiclass::realized(reference, c.range()).metrics)
            .collect();
        let pred = |i: usize| reference.predictions[i] as usize;
        let mut cbpe = MulticlassCbpe {
            calibrators: Vec::with_capacity(k),
            accuracy: Outcomes::count(rows.iter().map(|&(i, y)| (true, y == pred(i))))
                .accuracy_std(),
            precision: Vec::with_capacity(k),
            recall: Vec::with_capacity(k),
            f1: Vec::with_capacity(k),
            roc_auc: Vec::with_capacity(k),
            bounds: thresholds::from_reference(&chunks, &ESTIMATED, options.std_multiplier),
        };
        for (c, column) in reference.probabilities.iter().enumerate() {
            let s: Vec<f64> = rows.iter().map(|&(i, _)| column[i]).collect();
            let y: Vec<bool> = rows.iter().map(|&(_, y)| y == c).collect();
            let calibrate = match options.calibration {
                Calibration::Auto => needs_calibration(&s, &y),
                Calibration::Always => true,
                Calibration::Never => false,
            };
            cbpe.calibrators.push(if calibrate {
                Isotonic::fit(&s, &y)
            } else {
                None
            });
            let outcomes = Outcomes::count(rows.iter().map(|&(i, y)| (y == c, pred(i) == c)));
            cbpe.precision.push(outcomes.precision(true));
            cbpe.recall.push(outcomes.recall(true));
            cbpe.f1.push(outcomes.f1(false));
            cbpe.roc_auc.push(auroc_component(&s, &y, true));
        }
        Ok(cbpe)
    }

    /// Which classes' probabilities are calibrated before estimating.
    pub fn calibrated(&self) -> Vec<bool> {
        self.calibrators.iter().map(Option::is_some).collect()
    }

    /// Calibrated probabilities of the rows `rows`, one column per class,
    /// renormalised to sum to 1 per row (uniform where they sum to 0).
    pub fn calibrate(&self, data: &MulticlassData, rows: Range<usize>) -> Vec<Vec<f64>> {
        let k = self.calibrators.len();
        let mut columns: Vec<Vec<f64>> = data
            .probabilities
            .iter()
            .zip(&self.calibrators)
            .map(|(column, cal)| {
                let raw = column.get(rows.clone()).unwrap_or(&[]);
                match cal {
                    Some(cal) => cal.predict_all(raw),
                    None => raw.to_vec(),
                }
            })
            .collect();
        let n = columns.iter().map(Vec::len).min().unwrap_or(0);
        for i in 0..n {
            let sum: f64 = columns.iter().map(|c| c[i]).sum();
            for c in columns.iter_mut() {
                c[i] = if sum != 0.0 {
                    c[i] / sum
                } else {
                    1.0 / k as f64
                };
            }
        }
        columns
    }

    /// Estimates of the chunk `rows` of `data` (labels are not used).
    pub fn estimate(&self, data: &MulticlassData, rows: Range<usize>) -> Result<Estimate> {
        let k = self.calibrators.len();
        if data.classes() != k {
            return Err(input_error(
                "probabilities",
                format!(
                    "{} probability columns, the reference had {k}",
                    data.classes()
                ),
            ));
        }
        let calibrated = self.calibrate(data, rows.clone());
        let pred = data.predictions.get(rows.clone()).unwrap_or(&[]);
        let n = pred.len() as f64;
        let accuracy = pred
            .iter()
            .enumerate()
            .map(|(i, &p)| calibrated.get(p as usize).map_or(0.0, |c| c[i]))
            .sum::<f64>()
            / n;
        let (mut precision, mut recall, mut f1, mut auc) = (0.0, 0.0, 0.0, 0.0);
        let mut pairs = Vec::with_capacity(pred.len());
        for (c, (column, raw)) in calibrated.iter().zip(data.probabilities).enumerate() {
            let cm = Expected::sum(pred.iter().zip(column).map(|(&p, &q)| (p as usize == c, q)));
            precision += cm.precision();
            recall += cm.recall();
            f1 += cm.f1();
            pairs.clear();
            let raw = raw.get(rows.clone()).unwrap_or(&[]);
            pairs.extend(raw.iter().copied().zip(column.iter().copied()));
            radsort::sort_by_key(&mut pairs, |p| p.0);
            auc += estimate_roc_auc(pairs.iter().rev().map(|p| p.1));
        }
        let kf = k as f64;
        let values = [accuracy, precision / kf, recall / kf, f1 / kf, auc / kf];
        let sigma = [
            self.accuracy / n.sqrt(),
            of_variances(&self.precision, n),
            of_variances(&self.recall, n),
            of_variances(&self.f1, n),
            of_variances(&self.roc_auc, n) * 1.2,
        ];
        Ok(finish(&self.bounds, values, sigma, n))
    }
}

fn finish(bounds: &Bounds, values: [f64; 5], sigma: [f64; 5], n: f64) -> Estimate {
    finish_named(&ESTIMATED, bounds, &values, &sigma, n)
}

/// An [`Estimate`] from per-metric values and sampling errors: the band is
/// `value ± 3σ` clipped to the metric's range, an alert where the value
/// leaves its bounds; no rows, no values.
pub(super) fn finish_named(
    names: &[&str],
    bounds: &Bounds,
    values: &[f64],
    sigma: &[f64],
    n: f64,
) -> Estimate {
    let mut estimate = Estimate::default();
    if n == 0.0 {
        let none: Vec<(&str, Option<f64>)> = names.iter().map(|m| (*m, None)).collect();
        estimate.values = metrics_of(&none);
        return estimate;
    }
    for ((name, &v), &s) in names.iter().zip(values).zip(sigma) {
        let name = (*name).to_owned();
        estimate
            .values
            .insert(name.clone(), Some(v).filter(|v| v.is_finite()));
        estimate
            .sampling_error
            .insert(name.clone(), Some(s).filter(|s| s.is_finite()));
        if !v.is_finite() {
            continue;
        }
        if s.is_finite() {
            let band = SAMPLING_ERROR_RANGE * s;
            let (low, high) = metric_range(&name);
            estimate
                .confidence
                .insert(name.clone(), [(v - band).max(low), (v + band).min(high)]);
        }
        if bounds
            .get(&name)
            .is_some_and(|&b| thresholds::outside(b, v))
        {
            estimate.alerts.push(name);
        }
    }
    estimate
}

/// The expected confusion matrix of `(predicted positive, probability of
/// positive)` rows.
#[derive(Debug, Default)]
struct Expected {
    tp: f64,
    fp: f64,
    fn_: f64,
    tn: f64,
}

impl Expected {
    fn sum(rows: impl Iterator<Item = (bool, f64)>) -> Expected {
        let mut e = Expected::default();
        for (predicted, p) in rows {
            if predicted {
                e.tp += p;
                e.fp += 1.0 - p;
            } else {
                e.fn_ += p;
                e.tn += 1.0 - p;
            }
        }
        e
    }

    fn accuracy(&self) -> f64 {
        (self.tp + self.tn) / (self.tp + self.fp + self.fn_ + self.tn)
    }

    fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    fn f1(&self) -> f64 {
        ratio(self.tp, self.tp + 0.5 * (self.fp + self.fn_))
    }
}

/// NannyML's `estimate_roc_auc` of calibrated probabilities in descending
/// order of the raw scores.
fn estimate_roc_auc(calibrated_desc: impl Iterator<Item = f64>) -> f64 {
    let round5 = |x: f64| (x * 1e5).round_ties_even() / 1e5;
    let (mut tps, mut points) = (0.0, vec![(0.0, 0.0)]);
    for (i, p) in calibrated_desc.enumerate() {
        tps += p;
        points.push((round5(tps), round5((i + 1) as f64 - tps)));
    }
    let Some(&(p, n)) = points.last() else {
        return f64::NAN;
    };
    let mut area = 0.0;
    for w in points.windows(2) {
        area += (w[1].1 - w[0].1) / n * (w[1].0 + w[0].0) / p / 2.0;
    }
    area
}

/// Counts of observation-level outcomes on the reference.
#[derive(Debug, Default)]
struct Outcomes {
    tp: f64,
    fp: f64,
    fn_: f64,
    tn: f64,
}

impl Outcomes {
    /// From `(truth, prediction)` pairs.
    fn count(rows: impl Iterator<Item = (bool, bool)>) -> Outcomes {
        let mut o = Outcomes::default();
        for (y, p) in rows {
            match (y, p) {
                (true, true) => o.tp += 1.0,
                (false, true) => o.fp += 1.0,
                (true, false) => o.fn_ += 1.0,
                (false, false) => o.tn += 1.0,
            }
        }
        o
    }

    fn n(&self) -> f64 {
        self.tp + self.fp + self.fn_ + self.tn
    }

    /// Population std of the accuracy's 0/1 outcomes (`count` is given
    /// `(true, correct)` for multiclass, so `tp` counts the correct rows).
    fn accuracy_std(&self) -> f64 {
        bernoulli_std(self.tp + self.tn, self.n())
    }

    /// TP as 1s, FP as 0s; the share is of rows predicted positive.
    fn precision(&self, variance: bool) -> Component {
        let s = bernoulli_std(self.tp, self.tp + self.fp);
        (
            if variance { s * s } else { s },
            (self.tp + self.fp) / self.n(),
        )
    }

    /// TP as 1s, FN as 0s; the share is of rows truly positive.
    fn recall(&self, variance: bool) -> Component {
        let s = bernoulli_std(self.tp, self.tp + self.fn_);
        (
            if variance { s * s } else { s },
            (self.tp + self.fn_) / self.n(),
        )
    }

    /// TP as 1s, FN and FP as 0s. Binary (`corrected`): scaled by
    /// `len / (TP + (FN + FP) / 2)` and given as a std; multiclass: the
    /// plain variance.
    fn f1(&self, corrected: bool) -> Component {
        let len = self.tp + self.fp + self.fn_;
        let s = bernoulli_std(self.tp, len);
        let share = len / self.n();
        if corrected {
            (s * len / (0.5 * (self.fn_ + self.fp) + self.tp), share)
        } else {
            (s * s, share)
        }
    }
}

/// Population std of `ones` 1s among `n` values (NaN when `n` is 0, as `np.std([])`).
fn bernoulli_std(ones: f64, n: f64) -> f64 {
    let q = ones / n;
    (q * (1.0 - q)).sqrt()
}

/// NannyML's `auroc_sampling_error_components`: with positives in the
/// majority, classes and scores are flipped; rows sorted by score; for the
/// i-th positive at rank r > 0 (a positive at rank 0 is skipped, as
/// `np.unique(...)[1:]` does), `(r − i) / negatives`; the std (or variance,
/// multiclass) of those, and the share of positives.
fn auroc_component(scores: &[f64], labels: &[bool], variance: bool) -> Component {
    let n = labels.len() as f64;
    let positives = labels.iter().filter(|&&y| y).count() as f64;
    let flip = positives / n > 0.5;
    let mut pairs: Vec<(f64, bool)> = scores
        .iter()
        .zip(labels)
        .map(|(&s, &y)| if flip { (1.0 - s, !y) } else { (s, y) })
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n_pos = pairs.iter().filter(|p| p.1).count() as f64;
    let n_neg = n - n_pos;
    let ser: Vec<f64> = pairs
        .iter()
        .enumerate()
        .filter(|(r, p)| p.1 && *r > 0)
        .enumerate()
        .map(|(i, (r, _))| (r - i) as f64 / n_neg)
        .collect();
    let m = ser.len() as f64;
    let mean = ser.iter().sum::<f64>() / m;
    let var = ser.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / m;
    (if variance { var } else { var.sqrt() }, n_pos / n)
}

/// `std / √(n · share)`.
fn universal((std, share): Component, n: f64) -> f64 {
    std / (n * share).sqrt()
}

/// Multiclass: `√(Σ variance / (n · share)) / k`.
fn of_variances(components: &[Component], n: f64) -> f64 {
    let sum: f64 = components.iter().map(|&(v, share)| v / (n * share)).sum();
    sum.sqrt() / components.len() as f64
}

pub(super) fn reference_error(message: &str) -> AlgoError {
    AlgoError::Reference {
        column: None,
        message: message.into(),
    }
}

pub(super) fn input_error(column: &str, message: impl Into<String>) -> AlgoError {
    AlgoError::Input {
        column: column.into(),
        row: None,
        message: message.into(),
    }
}

pub(super) fn as_reference(e: AlgoError) -> AlgoError {
    match e {
        AlgoError::Input {
            column, message, ..
        } => AlgoError::Reference {
            column: Some(column),
            message,
        },
        other => other,
    }
}
