//! The drift statistics against scipy: every case in `golden/golden.json`
//! (written by `golden/generate.py` with scipy) must agree to 1e-6.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keel_algos::stats::{self, KsMode};
use serde_json::Value;

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f).collect()
}

fn ints(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn sorted(v: &Value) -> Vec<f64> {
    let mut x = floats(v);
    stats::sort_values(&mut x);
    x
}

/// Absolute 1e-6 for values in [0, 1] (p-values, distances), relative 1e-6 for larger statistics.
fn close(case: &str, what: &str, got: f64, want: f64) {
    let tol = 1e-6 * want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tol,
        "{case}: {what} = {got}, scipy says {want}"
    );
}

#[test]
fn kolmogorov_smirnov() {
    let g = golden();
    for c in g["ks"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let mode = match c["mode"].as_str().unwrap() {
            "exact" => KsMode::Exact,
            _ => KsMode::Asymptotic,
        };
        let r = stats::ks_2samp(&sorted(&c["a"]), &sorted(&c["b"]), mode);
        close(name, "D", r.statistic, f(&c["statistic"]));
        close(name, "p", r.p_value, f(&c["p_value"]));
        // Auto takes the exact path at these sizes, the asymptotic one above 10,000.
        if mode == KsMode::Exact {
            let auto = stats::ks_2samp(&sorted(&c["a"]), &sorted(&c["b"]), KsMode::Auto);
            assert_eq!(auto, r, "{name}");
        }
    }
}

#[test]
fn chi_square() {
    let g = golden();
    for c in g["chi2"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let r = stats::chi2_contingency(&ints(&c["reference"]), &ints(&c["current"]));
        close(name, "statistic", r.statistic, f(&c["statistic"]));
        close(name, "p", r.p_value, f(&c["p_value"]));
        assert_eq!(r.dof as u64, c["dof"].as_u64().unwrap(), "{name}");
    }
}

#[test]
fn two_proportion_z() {
    let g = golden();
    for c in g["z"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let u = |k: &str| c[k].as_u64().unwrap();
        let r = stats::z_test_proportions(u("x_ref"), u("n_ref"), u("x_cur"), u("n_cur"));
        close(name, "z", r.statistic, f(&c["statistic"]));
        close(name, "p", r.p_value, f(&c["p_value"]));
    }
}

#[test]
fn wasserstein() {
    let g = golden();
    for c in g["wasserstein"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (a, b) = (sorted(&c["a"]), sorted(&c["b"]));
        close(
            name,
            "distance",
            stats::wasserstein(&a, &b),
            f(&c["distance"]),
        );
        let normed = f(&c["normed"]);
        if normed.is_finite() {
            close(name, "normed", stats::wasserstein_normed(&a, &b), normed);
        }
    }
}

#[test]
fn distances_between_frequencies() {
    let g = golden();
    for c in g["distances"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (p, q) = (floats(&c["p"]), floats(&c["q"]));
        close(
            name,
            "js base 2",
            stats::jensen_shannon(&p, &q, 2.0),
            f(&c["jensenshannon_base2"]),
        );
        close(
            name,
            "js base e",
            stats::jensen_shannon(&p, &q, std::f64::consts::E),
            f(&c["jensenshannon_base_e"]),
        );
        close(
            name,
            "hellinger",
            stats::hellinger(&p, &q),
            f(&c["hellinger"]),
        );
        close(name, "linf", stats::linf(&p, &q), f(&c["linf"]));
        close(name, "psi", stats::psi(&p, &q, 1e-4), f(&c["psi"]));
    }
}

#[test]
fn special_functions() {
    let g = golden();
    for c in g["special"].as_array().unwrap() {
        let x = f(&c["x"]);
        let (name, got) = match c["fn"].as_str().unwrap() {
            "normal_sf" => ("normal_sf", stats::normal_sf(x)),
            "chi2_sf" => ("chi2_sf", stats::chi2_sf(x, f(&c["dof"]))),
            _ => ("kolmogorov_sf", stats::kolmogorov_sf(x)),
        };
        close(&format!("{name}({x})"), "value", got, f(&c["value"]));
    }
}

#[test]
fn degenerate_inputs_are_explicit() {
    let r = stats::ks_2samp(&[], &[1.0], KsMode::Auto);
    assert_eq!((r.statistic, r.p_value), (0.0, 1.0));
    let r = stats::chi2_contingency(&[5], &[7]);
    assert_eq!((r.statistic, r.p_value, r.dof), (0.0, 1.0, 0));
    let r = stats::z_test_proportions(0, 10, 0, 10);
    assert_eq!((r.statistic, r.p_value), (0.0, 1.0));
    assert!(stats::wasserstein(&[], &[1.0]).is_nan());
    // A constant reference: the raw distance.
    assert_eq!(stats::wasserstein_normed(&[2.0, 2.0], &[3.0]), 1.0);
}
