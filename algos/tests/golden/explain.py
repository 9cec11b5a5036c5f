"""Golden values for keel-algos' Shapley values (`keel_algos::explain`), from the shap package.

Run: make a venv with requirements-explain.txt (pinned), then
`python algos/tests/golden/explain.py`. It writes explain.json beside this file;
`cargo test -p keel-algos --test all explain::` compares every case with the Rust code.
Inputs are generated here from fixed seeds, rounded to 6 decimals before shap sees
them, and stored in the JSON with the expected values.

Cases:
- kernel: `shap.KernelExplainer(f, background, link=..., nsamples=2**M - 2, l1_reg=False)`,
  which enumerates every coalition, so its values are the exact interventional Shapley
  values. `f` is the non-linear model below, with interactions and a logistic:
      z = intercept + Σ linear[i]·x[i] + Σ pairs (i, j, c): c·x[i]·x[j] + square[i]·x[i]²
      f = 1 / (1 + exp(-z))
  Its coefficients are in the JSON so the Rust test evaluates the same function.
  Cases use link="identity" and link="logit".
- linear: `shap.LinearExplainer((coef, intercept), background,
  feature_perturbation="interventional")` for a scikit-learn LogisticRegression. It
  explains the model's margin (the log-odds `intercept + coef·x`), so the Rust test
  explains that margin with the identity link.
"""
import json
import pathlib
import warnings

import numpy as np
import shap
import sklearn
from sklearn.linear_model import LogisticRegression

warnings.simplefilter("ignore")
rng = np.random.default_rng(20261207)


def r6(a):
    return np.round(np.asarray(a, float), 6)


def model(spec):
    linear = np.asarray(spec["linear"])
    square = np.asarray(spec["square"])

    def f(x):
        x = np.asarray(x, float)
        z = spec["intercept"] + x @ linear + (x**2) @ square
        for i, j, c in spec["pairs"]:
            z = z + c * x[:, i] * x[:, j]
        return 1.0 / (1.0 + np.exp(-z))

    return f


def kernel_case(name, m, n_background, n_rows, link):
    spec = {
        "intercept": float(r6(rng.normal(0, 0.3))),
        "linear": r6(rng.normal(0, 0.8, m)).tolist(),
        "square": r6(rng.normal(0, 0.2, m)).tolist(),
        "pairs": [[0, 1, float(r6(rng.normal(0, 0.7)))], [1, m - 1, float(r6(rng.normal(0, 0.7)))],
                  [2, 3, float(r6(rng.normal(0, 0.7)))]],
    }
    background = r6(rng.normal(0, 1, (n_background, m)))
    rows = r6(rng.normal(0, 1.2, (n_rows, m)))
    f = model(spec)
    explainer = shap.KernelExplainer(f, background, link=link)
    values = explainer.shap_values(rows, nsamples=2**m - 2, l1_reg=False, silent=True)
    return {
        "name": name,
        "model": spec,
        "link": link,
        "background": background.tolist(),
        "rows": rows.tolist(),
        "base_value": float(np.asarray(explainer.expected_value).reshape(-1)[0]),
        "predictions": f(rows).tolist(),
        "shap": np.asarray(values).tolist(),
    }


def linear_case(name, m, n_train, n_background, n_rows):
    x = r6(rng.normal(0, 1, (n_train, m)))
    true = rng.normal(0, 1, m)
    y = (x @ true + rng.normal(0, 0.5, n_train)) > 0
    lr = LogisticRegression().fit(x, y)
    coef, intercept = r6(lr.coef_[0]), float(r6(lr.intercept_[0]))
    background = r6(rng.normal(0.2, 1, (n_background, m)))
    rows = r6(rng.normal(0, 1.3, (n_rows, m)))
    explainer = shap.LinearExplainer((coef, intercept), background,
                                     feature_perturbation="interventional")
    values = explainer.shap_values(rows)
    return {
        "name": name,
        "coefficients": coef.tolist(),
        "intercept": intercept,
        "background": background.tolist(),
        "rows": rows.tolist(),
        "base_value": float(np.asarray(explainer.expected_value).reshape(-1)[0]),
        "shap": np.asarray(values).tolist(),
    }


golden = {
    "versions": {"shap": shap.__version__, "numpy": np.__version__, "sklearn": sklearn.__version__},
    "kernel": [
        kernel_case("four-features-identity", 4, 20, 3, "identity"),
        kernel_case("five-features-logit", 5, 25, 3, "logit"),
        kernel_case("seven-features-logit", 7, 30, 2, "logit"),
    ],
    "linear": [
        linear_case("logistic-regression-five", 5, 400, 40, 4),
    ],
}
out = pathlib.Path(__file__).with_name("explain.json")
out.write_text(json.dumps(golden, indent=1) + "\n")
print(f"wrote {out}")
