//! Shapley values of a black-box model's output with respect to its raw
//! input columns, by the interventional definition the `shap` package uses.
//!
//! A coalition S keeps the explained row's values for the features in S and
//! takes the others from each background row; `v(S) = link(mean over the
//! background of the output)`; φ are the Shapley values of `v`, so
//! `base_value + Σ φ = link(prediction)` exactly (`base_value = v(∅)`).
//!
//! The model is a callback that evaluates coalitions: it gets the coalitions
//! of one explained row (each a mask over the features, `true` = the row's
//! value) and returns the output of every coalition × background row,
//! coalition-major, in one call — so a pipeline runs them as one batch.
//! [`coalition_batch`] builds those rows from a [`keel_data::Batch`] for
//! columns of any type.
//!
//! - [`Method::Exact`] evaluates all `2^M` coalitions and weighs them with the
//!   Shapley weights `|S|! (M − |S| − 1)! / M!`.
//! - [`Method::Kernel`] is KernelSHAP as `shap.KernelExplainer` does it:
//!   shap's kernel weights, whole subset sizes enumerated while the budget
//!   allows, the rest sampled with their complements from a seeded generator
//!   (the same seed gives the same values), and the weighted least squares
//!   constrained so the values add up to `link(prediction) − base_value`.
//! - [`Method::Auto`] is exact up to [`EXACT_MAX`] features, kernel above.

mod coalition;
mod exact;
mod kernel;
mod rng;

pub use coalition::{coalition_batch, sample_rows};

use crate::AlgoError;

/// Exact Shapley values up to this many features under [`Method::Auto`]
/// (`2^14` coalitions × 100 background rows is 1.6 million evaluations).
pub const EXACT_MAX: usize = 14;

/// The most features `exact` takes when asked for by name: 2^20 coalitions
/// × 100 background rows is already 10^8 evaluation rows.
pub const EXACT_LIMIT: usize = 20;

/// How the values are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Every coalition.
    Exact,
    /// KernelSHAP: sampled coalitions, weighted least squares.
    Kernel,
    /// Exact up to [`EXACT_MAX`] features, kernel above.
    Auto,
}

impl Method {
    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Kernel => "kernel",
            Method::Auto => "auto",
        }
    }

    /// The method called `name`.
    pub fn parse(name: &str) -> Option<Method> {
        [Method::Exact, Method::Kernel, Method::Auto]
            .into_iter()
            .find(|m| m.name() == name)
    }

    /// What `Auto` becomes for `features` features.
    pub fn resolve(self, features: usize) -> Method {
        match self {
            Method::Auto if features <= EXACT_MAX => Method::Exact,
            Method::Auto => Method::Kernel,
            m => m,
        }
    }
}

/// The space the values are additive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The output itself.
    Identity,
    /// Log-odds of a probability output: `ln(p / (1 − p))`.
    Logit,
}

impl Link {
    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Link::Identity => "identity",
            Link::Logit => "logit",
        }
    }

    /// The link called `name`.
    pub fn parse(name: &str) -> Option<Link> {
        [Link::Identity, Link::Logit]
            .into_iter()
            .find(|l| l.name() == name)
    }

    /// The link of `x`; an error when the logit of `x` is not finite.
    pub fn apply(self, x: f64) -> crate::Result<f64> {
        let y = match self {
            Link::Identity => x,
            Link::Logit => (x / (1.0 - x)).ln(),
        };
        if y.is_finite() {
            Ok(y)
        } else {
            Err(AlgoError::Input {
                column: String::new(),
                row: None,
                message: format!(
                    "the {} link of the mean output {x} is not finite{}",
                    self.name(),
                    match self {
                        Link::Logit => " (the logit needs a probability strictly between 0 and 1)",
                        Link::Identity => "",
                    }
                ),
            })
        }
    }
}

/// How to explain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub method: Method,
    pub link: Link,
    /// Coalitions KernelSHAP evaluates (besides the empty and the full one);
    /// `None` is shap's default, `2M + 2048`. Capped at `2^M − 2`.
    pub nsamples: Option<usize>,
    /// Seeds KernelSHAP's sampler.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            method: Method::Auto,
            link: Link::Identity,
            nsamples: None,
            seed: 0,
        }
    }
}

/// The explanation of one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The method used (`Auto` resolved).
    pub method: Method,
    /// `v(∅)`: the link of the mean output over the background.
    pub base_value: f64,
    /// The model's output for the row (not linked).
    pub prediction: f64,
    /// One value per feature, in feature order.
    pub shap: Vec<f64>,
    /// Coalitions evaluated, the empty and the full one included.
    pub coalitions: usize,
}

/// The coalitions' linked values from the outputs of each coalition ×
/// background row; `outputs` must hold `masks × background` values.
fn values(outputs: &[f64], masks: usize, background: usize, link: Link) -> crate::Result<Vec<f64>> {
    if outputs.len() != masks * background {
        return Err(AlgoError::Input {
            column: String::new(),
            row: None,
            message: format!(
                "the model returned {} outputs for {masks} coalitions × {background} background rows",
                outputs.len()
            ),
        });
    }
    outputs
        .chunks(background)
        .map(|c| link.apply(c.iter().sum::<f64>() / background as f64))
        .collect()
}

/// Explains one row of a model with `features` features against
/// `background` background rows. `evaluate` gets the coalitions (masks over
/// the features, `true` = the explained row's value) and returns the output
/// of each coalition × background row, coalition-major.
pub fn explain<E: From<AlgoError>>(
    features: usize,
    background: usize,
    options: &Options,
    evaluate: impl FnOnce(&[Vec<bool>]) -> Result<Vec<f64>, E>,
) -> Result<Explanation, E> {
    if features == 0 {
        return Err(AlgoError::config("features", "no features to explain").into());
    }
    if background == 0 {
        return Err(AlgoError::Reference {
            column: None,
            message: "the background has no rows".into(),
        }
        .into());
    }
    let method = options.method.resolve(features);
    if method == Method::Exact && features > EXACT_LIMIT {
        return Err(AlgoError::config(
            "method",
            format!(
                "exact needs 2^{features} coalitions × {background} background rows; \
                 use kernel for more than {EXACT_LIMIT} features"
            ),
        )
        .into());
    }
    match method {
        Method::Exact => exact::explain(features, background, options.link, evaluate),
        _ => kernel::explain(features, background, options, evaluate),
    }
}
