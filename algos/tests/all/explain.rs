//! Shapley values of `keel_algos::explain` against the shap package: every
//! case in `golden/explain.json` (written by `golden/explain.py`) to 1e-6 —
//! `KernelExplainer` with every coalition against both our exact and our
//! kernel method, `LinearExplainer` of a logistic regression's margin against
//! our exact method — and KernelSHAP's sampling: reproducible by seed, its
//! error shrinking as `nsamples` grows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::{Check, cases, f, floats, golden, name, within};
use keel_algos::AlgoError;
use keel_algos::explain::{Explanation, Link, Method, Options, explain};
use serde_json::Value;

fn matrix(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

/// The golden script's model: a logistic of a polynomial with interactions.
struct Model {
    intercept: f64,
    linear: Vec<f64>,
    square: Vec<f64>,
    pairs: Vec<(usize, usize, f64)>,
}

impl Model {
    fn from(v: &Value) -> Model {
        Model {
            intercept: f(&v["intercept"]),
            linear: floats(&v["linear"]),
            square: floats(&v["square"]),
            pairs: v["pairs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (f(&p[0]) as usize, f(&p[1]) as usize, f(&p[2])))
                .collect(),
        }
    }

    fn eval(&self, x: &[f64]) -> f64 {
        let mut z = self.intercept;
        for (i, xi) in x.iter().enumerate() {
            z += self.linear[i] * xi + self.square[i] * xi * xi;
        }
        for (i, j, c) in &self.pairs {
            z += c * x[*i] * x[*j];
        }
        1.0 / (1.0 + (-z).exp())
    }
}

/// Explains `row` of a numeric model: the evaluation rows built from the
/// masks exactly as the callback contract says (coalition-major).
fn run(
    model: impl Fn(&[f64]) -> f64,
    row: &[f64],
    background: &[Vec<f64>],
    options: &Options,
) -> Explanation {
    explain::<AlgoError>(row.len(), background.len(), options, |masks| {
        let mut out = Vec::with_capacity(masks.len() * background.len());
        for mask in masks {
            for b in background {
                let x: Vec<f64> = (0..row.len())
                    .map(|i| if mask[i] { row[i] } else { b[i] })
                    .collect();
                out.push(model(&x));
            }
        }
        Ok(out)
    })
    .unwrap()
}

fn link_of(c: &Value) -> Link {
    Link::parse(c["link"].as_str().unwrap()).unwrap()
}

#[test]
fn kernel_explainer_with_every_coalition() {
    let g = golden("explain.json");
    let mut check = Check::default();
    for c in cases(&g, "kernel") {
        let model = Model::from(&c["model"]);
        let background = matrix(&c["background"]);
        let link = link_of(c);
        let want_shap = matrix(&c["shap"]);
        let preds = floats(&c["predictions"]);
        for (r, row) in matrix(&c["rows"]).iter().enumerate() {
            let m = row.len();
            for method in [Method::Exact, Method::Kernel] {
                let options = Options {
                    method,
                    link,
                    nsamples: Some((1 << m) - 2),
                    seed: 1,
                };
                let e = run(|x| model.eval(x), row, &background, &options);
                let what = format!("{} row {r} {}", name(c), method.name());
                check.that(e.method == method, || format!("{what}: ran {:?}", e.method));
                check.that(within(e.base_value, f(&c["base_value"]), 1e-6), || {
                    format!("{what}: base {} vs {}", e.base_value, c["base_value"])
                });
                check.that(within(e.prediction, preds[r], 1e-12), || {
                    format!("{what}: prediction {} vs {}", e.prediction, preds[r])
                });
                for (i, (got, want)) in e.shap.iter().zip(&want_shap[r]).enumerate() {
                    check.that(within(*got, *want, 1e-6), || {
                        format!("{what}: φ[{i}] = {got}, shap says {want}")
                    });
                }
                let sum = e.base_value + e.shap.iter().sum::<f64>();
                let linked = link.apply(e.prediction).unwrap();
                check.that(within(sum, linked, 1e-12), || {
                    format!("{what}: base + Σφ = {sum}, link(prediction) = {linked}")
                });
            }
        }
    }
    check.done("kernel");
}

#[test]
fn linear_explainer_of_a_logistic_regression() {
    let g = golden("explain.json");
    let mut check = Check::default();
    for c in cases(&g, "linear") {
        let coef = floats(&c["coefficients"]);
        let intercept = f(&c["intercept"]);
        let margin = |x: &[f64]| intercept + x.iter().zip(&coef).map(|(a, b)| a * b).sum::<f64>();
        let background = matrix(&c["background"]);
        let want = matrix(&c["shap"]);
        for (r, row) in matrix(&c["rows"]).iter().enumerate() {
            let options = Options {
                method: Method::Auto,
                ..Options::default()
            };
            let e = run(margin, row, &background, &options);
            check.that(within(e.base_value, f(&c["base_value"]), 1e-6), || {
                format!(
                    "{} row {r}: base {} vs {}",
                    name(c),
                    e.base_value,
                    c["base_value"]
                )
            });
            for (i, (got, w)) in e.shap.iter().zip(&want[r]).enumerate() {
                check.that(within(*got, *w, 1e-6), || {
                    format!("{} row {r}: φ[{i}] = {got}, shap says {w}", name(c))
                });
            }
        }
    }
    check.done("linear");
}

/// Mean absolute error of kernel's values against the exact ones over seeds.
fn kernel_error(model: &Model, row: &[f64], background: &[Vec<f64>], nsamples: usize) -> f64 {
    let exact = run(
        |x| model.eval(x),
        row,
        background,
        &Options {
            method: Method::Exact,
            link: Link::Logit,
            ..Options::default()
        },
    );
    let seeds = 8;
    let mut total = 0.0;
    for seed in 0..seeds {
        let options = Options {
            method: Method::Kernel,
            link: Link::Logit,
            nsamples: Some(nsamples),
            seed,
        };
        let e = run(|x| model.eval(x), row, background, &options);
        let sum = e.base_value + e.shap.iter().sum::<f64>();
        assert!(
            (sum - Link::Logit.apply(e.prediction).unwrap()).abs() < 1e-9,
            "the constraint holds at every nsamples"
        );
        total += e
            .shap
            .iter()
            .zip(&exact.shap)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            / row.len() as f64;
    }
    total / seeds as f64
}

#[test]
fn kernel_sampling_is_seeded_and_converges() {
    // Ten features: 1022 coalitions, so small budgets must sample.
    let m = 10;
    let model = Model {
        intercept: 0.2,
        linear: (0..m).map(|i| 0.3 * (i as f64 - 4.5) / 4.5).collect(),
        square: (0..m).map(|i| 0.05 * (i % 3) as f64).collect(),
        pairs: vec![(0, 1, 0.6), (2, 7, -0.8), (4, 9, 0.5), (3, 5, 0.4)],
    };
    let mut rng = crate::common::Rng(42);
    let background: Vec<Vec<f64>> = (0..30)
        .map(|_| (0..m).map(|_| rng.uniform() * 2.0 - 1.0).collect())
        .collect();
    let row: Vec<f64> = (0..m).map(|i| 1.5 - 0.3 * i as f64).collect();

    let options = |seed| Options {
        method: Method::Kernel,
        link: Link::Logit,
        nsamples: Some(60),
        seed,
    };
    let a = run(|x| model.eval(x), &row, &background, &options(3));
    let b = run(|x| model.eval(x), &row, &background, &options(3));
    let c = run(|x| model.eval(x), &row, &background, &options(4));
    assert_eq!(a.shap, b.shap, "the same seed gives the same values");
    assert_ne!(a.shap, c.shap, "another seed draws other coalitions");

    let errors: Vec<f64> = [40, 150, 500, 1022]
        .iter()
        .map(|&n| kernel_error(&model, &row, &background, n))
        .collect();
    for w in errors.windows(2) {
        assert!(w[1] < w[0], "the error shrinks with nsamples: {errors:?}");
    }
    assert!(errors[3] < 1e-9, "every coalition is exact: {errors:?}");
    assert!(
        errors[0] > 1e-4,
        "40 coalitions of 1022 are not exact: {errors:?}"
    );
}

#[test]
fn clear_errors() {
    let bg = [vec![0.0, 1.0]];
    let e = explain::<AlgoError>(
        2,
        1,
        &Options {
            link: Link::Logit,
            ..Options::default()
        },
        |masks| Ok(vec![1.0; masks.len()]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("logit"), "{e}");
    let e =
        explain::<AlgoError>(2, bg.len(), &Options::default(), |_| Ok(vec![0.0; 3])).unwrap_err();
    assert!(
        e.to_string()
            .contains("returned 3 outputs for 4 coalitions"),
        "{e}"
    );
    let exact = Options {
        method: Method::Exact,
        ..Options::default()
    };
    let e = explain::<AlgoError>(21, 100, &exact, |_| Ok(vec![])).unwrap_err();
    assert!(
        e.to_string()
            .contains("use kernel for more than 20 features"),
        "{e}"
    );
    let e = explain::<AlgoError>(0, 1, &Options::default(), |_| Ok(vec![])).unwrap_err();
    assert!(e.to_string().contains("no features"), "{e}");
}
