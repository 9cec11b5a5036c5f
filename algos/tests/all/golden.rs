//! The drift statistics of `keel_algos::stats` against scipy: every case in
//! `golden/golden.json` (inputs and scipy's outputs, written by
//! `golden/generate.py`) must agree.
//!
//! Tolerance: 1e-6 absolute for values in [0, 1] (p-values, distances),
//! 1e-6 relative for larger statistics. Probabilities are held to more: the
//! p-values and survival functions must also agree to 1e-6 *relative* down
//! to 1e-300, so a tiny p-value (1e-80 for clearly disjoint samples) has to
//! be right, not merely close to 0. Every mismatch is collected and the test
//! fails once, naming each case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::{Check, cases, f, floats, golden, name, within};
use keel_algos::stats::{self, KsMode};
use serde_json::Value;

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

/// Checks against scipy's values.
trait Scipy {
    fn value(&mut self, case: &str, what: &str, got: f64, want: f64);
    fn probability(&mut self, case: &str, what: &str, got: f64, want: f64);
}

impl Scipy for Check {
    /// Absolute 1e-6 for values in [0, 1], relative 1e-6 above.
    fn value(&mut self, case: &str, what: &str, got: f64, want: f64) {
        let tol = 1e-6 * want.abs().max(1.0);
        if !within(got, want, tol) {
            self.0
                .push(format!("{case}: {what} = {got:e}, scipy says {want:e}"));
        }
    }

    /// A probability: as [`Check::value`], and 1e-6 relative while scipy's
    /// value is above 1e-300.
    fn probability(&mut self, case: &str, what: &str, got: f64, want: f64) {
        self.value(case, what, got, want);
        if want > 1e-300 && !within(got, want, 1e-6 * want) {
            self.0.push(format!(
                "{case}: {what} = {got:e}, scipy says {want:e} (relative error {:e})",
                ((got - want) / want).abs()
            ));
        }
    }
}

#[test]
fn kolmogorov_smirnov() {
    let g = golden("golden.json");
    let mut check = Check::default();
    for c in cases(&g, "ks") {
        let name = name(c);
        let (a, b) = (sorted(&c["a"]), sorted(&c["b"]));
        let mode = match c["mode"].as_str().unwrap() {
            "exact" => KsMode::Exact,
            "asymptotic" => KsMode::Asymptotic,
            other => panic!("{name}: unknown mode {other}"),
        };
        let r = stats::ks_2samp(&a, &b, mode);
        check.value(name, "D", r.statistic, f(&c["statistic"]));
        check.probability(name, "p", r.p_value, f(&c["p_value"]));
        // Auto must take the path scipy's rule gives (exact iff max(n1, n2) <= 10,000).
        let auto = stats::ks_2samp(&a, &b, KsMode::Auto);
        let auto_path = match c["auto"].as_str().unwrap() {
            "exact" => KsMode::Exact,
            _ => KsMode::Asymptotic,
        };
        let want = stats::ks_2samp(&a, &b, auto_path);
        check.that(auto == want, || {
            format!("{name}: Auto gave {auto:?}, the {auto_path:?} path {want:?}")
        });
        // The test is symmetric in its samples.
        let swapped = stats::ks_2samp(&b, &a, mode);
        check.that(swapped == r, || {
            format!("{name}: swapping the samples gave {swapped:?} instead of {r:?}")
        });
    }
    check.done("ks_2samp");
}

#[test]
fn chi_square() {
    let g = golden("golden.json");
    let mut check = Check::default();
    for c in cases(&g, "chi2") {
        let name = name(c);
        let r = stats::chi2_contingency(&ints(&c["reference"]), &ints(&c["current"]));
        check.value(name, "statistic", r.statistic, f(&c["statistic"]));
        check.probability(name, "p", r.p_value, f(&c["p_value"]));
        let dof = c["dof"].as_u64().unwrap();
        check.that(r.dof as u64 == dof, || {
            format!("{name}: dof = {}, scipy says {dof}", r.dof)
        });
    }
    check.done("chi2_contingency");
}

#[test]
fn two_proportion_z() {
    let g = golden("golden.json");
    let mut check = Check::default();
    for c in cases(&g, "z") {
        let name = name(c);
        let u = |k: &str| c[k].as_u64().unwrap();
        let r = stats::z_test_proportions(u("x_ref"), u("n_ref"), u("x_cur"), u("n_cur"));
        check.value(name, "z", r.statistic, f(&c["statistic"]));
        check.probability(name, "p", r.p_value, f(&c["p_value"]));
        let counts = stats::z_test_counts(
            &[u("x_ref"), u("n_ref") - u("x_ref")],
            &[u("x_cur"), u("n_cur") - u("x_cur")],
        );
        check.that(counts == r, || {
            format!("{name}: z_test_counts gave {counts:?}, z_test_proportions {r:?}")
        });
    }
    check.done("z_test_proportions");
}

#[test]
fn wasserstein() {
    let g = golden("golden.json");
    let mut check = Check::default();
    for c in cases(&g, "wasserstein") {
        let name = name(c);
        let (a, b) = (sorted(&c["a"]), sorted(&c["b"]));
        check.value(
            name,
            "distance",
            stats::wasserstein(&a, &b),
            f(&c["distance"]),
        );
        check.value(
            name,
            "normed",
            stats::wasserstein_normed(&a, &b),
            f(&c["normed"]),
        );
    }
    check.done("wasserstein");
}

#[test]
fn distances_between_frequencies() {
    let g = golden("golden.json");
    let mut check = Check::default();
    for c in cases(&g, "distances") {
        let name = name(c);
        let (p, q) = (floats(&c["p"]), floats(&c["q"]));
        let pairs = [
            (
                "jensenshannon base 2",
                stats::jensen_shannon(&p, &q, 2.0),
                "jensenshannon_base2",
            ),
            (
                "jensenshannon base e",
                stats::jensen_shannon(&p, &q, std::f64::consts::E),
                "jensenshannon_base_e",
            ),
            ("hellinger", stats::hellinger(&p, &q), "hellinger"),
            ("linf", stats::linf(&p, &q), "linf"),
            ("psi", stats::psi(&p, &q, 1e-4), "psi"),
        ];
        for (what, got, key) in pairs {
            check.value(name, what, got, f(&c[key]));
        }
    }
    check.done("frequency distances");
}

#[test]
fn special_functions() {
    let g = golden("golden.json");
    let mut check = Check::default();
    for c in cases(&g, "special") {
        let x = f(&c["x"]);
        let (case, got) = match c["fn"].as_str().unwrap() {
            "normal_sf" => (format!("normal_sf({x})"), stats::normal_sf(x)),
            "chi2_sf" => {
                let dof = f(&c["dof"]);
                (format!("chi2_sf({x}, {dof})"), stats::chi2_sf(x, dof))
            }
            "kolmogorov_sf" => (format!("kolmogorov_sf({x})"), stats::kolmogorov_sf(x)),
            other => panic!("unknown function {other}"),
        };
        check.probability(&case, "value", got, f(&c["value"]));
    }
    check.done("special functions");
}
