#!/usr/bin/env python3
"""Trains the penguins example's model and writes it into pipeline.toml.

The model predicts is_gentoo = (species == "Gentoo") from the four body
measurements and a one-hot encoding of `island`. Preprocessing mirrors Keel's
plugins exactly, so the wasm pipeline reproduces sklearn's probabilities:

  imputer          numeric nulls -> median of the reference column (nulls
                   ignored; even count -> mean of the two middle values)
  one-hot-encoder  island -> island_<Category> for every category seen in the
                   reference, sorted; 0.0/1.0; `island` dropped; null or
                   unseen -> all zeros
  standard-scaler  z = (x - mean) / std, mean and population std (ddof=0)
                   fitted on the reference after imputation and one-hot;
                   std 0 -> 1
  logistic-regr.   sklearn LogisticRegression (C=1.0, lbfgs), feature order
                   = `features` in pipeline.toml

Column lists are read from pipeline.toml so the two never disagree.

Outputs:
  pipeline.toml                coefficients / intercept of the `model` stage
                               rewritten with full float precision (repr)
  expected_predictions.csv     row (0-based data row of current.csv, file
                               order), prob_gentoo (sklearn predict_proba)
  stdout                       fitted preprocessing parameters, accuracies

Run:  python train.py          (after prepare.py)
"""

from __future__ import annotations

import csv
import re
import sys
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from prepare import psi  # same PSI definition as the drift report of prepare.py

HERE = Path(__file__).resolve().parent
SPEC = HERE / "pipeline.toml"
LABEL_SOURCE = "species"
POSITIVE = "Gentoo"


def read_csv(path: Path) -> list[dict[str, str]]:
    # The csv module + float() parse exactly as Keel does (empty cell = null).
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(cell: str) -> float:
    return float(cell) if cell != "" else np.nan


def stage(spec: dict, plugin: str) -> dict:
    found = [s for s in spec["stages"] if s["plugin"] == plugin]
    assert len(found) == 1, f"expected one {plugin} stage"
    return found[0]


def median(values: list[float]) -> float:
    v = sorted(x for x in values if not np.isnan(x))
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def main() -> None:
    spec = tomllib.loads(SPEC.read_text())
    impute_cols = stage(spec, "imputer")["config"]["columns"]
    assert stage(spec, "imputer")["config"]["strategy"] == "median"
    (cat_col,) = stage(spec, "one-hot-encoder")["config"]["columns"]
    scale_cols = stage(spec, "standard-scaler")["config"]["columns"]
    model_cfg = stage(spec, "logistic-regression")["config"]
    features = model_cfg["features"]
    threshold = model_cfg["threshold"]

    ref_rows = read_csv(HERE / spec["reference"])
    cur_rows = read_csv(HERE / "current.csv")

    categories = sorted({r[cat_col] for r in ref_rows if r[cat_col] != ""})
    onehot_cols = [f"{cat_col}_{c}" for c in categories]
    assert sorted(scale_cols) == sorted(impute_cols + onehot_cols), scale_cols
    assert features == scale_cols, "model features must be the scaled columns, same order"

    def raw(rows: list[dict[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        x_num = np.array([[num(r[c]) for c in impute_cols] for r in rows], dtype=np.float64)
        x_cat = np.array([[r[cat_col] if r[cat_col] != "" else None] for r in rows], dtype=object)
        return x_num, x_cat

    ref_num, ref_cat = raw(ref_rows)
    cur_num, cur_cat = raw(cur_rows)
    y_ref = np.array([r[LABEL_SOURCE] == POSITIVE for r in ref_rows], dtype=int)
    y_cur = np.array([r[LABEL_SOURCE] == POSITIVE for r in cur_rows], dtype=int)

    # --- sklearn preprocessing, built to match Keel's plugins --------------
    imputer = SimpleImputer(strategy="median").fit(ref_num)
    encoder = OneHotEncoder(
        categories=[categories], handle_unknown="ignore", sparse_output=False, dtype=np.float64
    ).fit(ref_cat)

    def encode(x_num: np.ndarray, x_cat: np.ndarray) -> dict[str, np.ndarray]:
        cols = dict(zip(impute_cols, imputer.transform(x_num).T))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown/null category -> zeros
            cols.update(zip(onehot_cols, encoder.transform(x_cat).T))
        return cols

    def matrix(cols: dict[str, np.ndarray]) -> np.ndarray:
        return np.column_stack([cols[c] for c in scale_cols])

    ref_pre = matrix(encode(ref_num, ref_cat))
    cur_pre = matrix(encode(cur_num, cur_cat))
    scaler = StandardScaler().fit(ref_pre)  # population std; zero std -> 1

    # Cross-check against the plain definitions Keel implements.
    manual_medians = [median(list(ref_num[:, j])) for j in range(len(impute_cols))]
    assert imputer.statistics_.tolist() == manual_medians, (imputer.statistics_, manual_medians)
    mean = ref_pre.mean(axis=0)
    std = ref_pre.std(axis=0, ddof=0)
    std[std == 0.0] = 1.0
    assert np.allclose(scaler.mean_, mean, rtol=0, atol=1e-12)
    assert np.allclose(scaler.scale_, std, rtol=1e-14, atol=0)

    ref_x = scaler.transform(ref_pre)
    cur_x = scaler.transform(cur_pre)

    # --- model ---------------------------------------------------------------
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = LogisticRegression(C=1.0, solver="lbfgs").fit(ref_x, y_ref)
    # Feature order of the fitted model must be the spec's feature order:
    # the columns of ref_x are scale_cols == features.
    coef = [float(c) for c in model.coef_[0]]
    intercept = float(model.intercept_[0])

    p_ref = model.predict_proba(ref_x)[:, 1]
    p_cur = model.predict_proba(cur_x)[:, 1]
    # Same formula Keel's logistic-regression plugin evaluates.
    z = cur_x @ np.array(coef) + intercept
    assert np.allclose(p_cur, 1.0 / (1.0 + np.exp(-z)), rtol=0, atol=1e-12)

    acc_ref = float(np.mean((p_ref >= threshold) == y_ref))
    acc_cur = float(np.mean((p_cur >= threshold) == y_cur))

    # --- outputs -------------------------------------------------------------
    write_model(coef, intercept)
    with open(HERE / "expected_predictions.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["row", "prob_gentoo"])
        for i, p in enumerate(p_cur):
            w.writerow([i, repr(float(p))])

    print(f"reference rows: {len(ref_rows)}   current rows: {len(cur_rows)}")
    print("imputer medians:")
    for c, m in zip(impute_cols, manual_medians):
        print(f"  {c:<20} {float(m)!r}")
    print(f"one-hot categories of {cat_col}: {categories}")
    print("scaler (mean, population std):")
    for c, m, s in zip(scale_cols, scaler.mean_, scaler.scale_):
        print(f"  {c:<20} {float(m)!r:<24} {float(s)!r}")
    print("model:")
    for c, b in zip(features, coef):
        print(f"  {c:<20} {b!r}")
    print(f"  {'intercept':<20} {intercept!r}")
    print(f"accuracy on reference (train): {acc_ref:.4f}  ({int(round(acc_ref * len(y_ref)))}/{len(y_ref)})")
    print(f"accuracy on current:           {acc_cur:.4f}  ({int(round(acc_cur * len(y_cur)))}/{len(y_cur)})")
    wrong = [i for i in range(len(y_cur)) if (p_cur[i] >= threshold) != y_cur[i]]
    for i in wrong:
        r = cur_rows[i]
        print(f"  misclassified current row {i}: {r[LABEL_SOURCE]} on {r[cat_col]}, prob_gentoo={p_cur[i]:.4f}")
    print(f"mean prob_gentoo: reference {p_ref.mean():.4f}, current {p_cur.mean():.4f}")
    print(f"PSI(10q) of prob_gentoo, current vs reference: {psi(pd.Series(p_ref), pd.Series(p_cur)):.4f}")
    print(f"wrote {SPEC.name} (model stage) and expected_predictions.csv")


def write_model(coef: list[float], intercept: float) -> None:
    """Rewrites `coefficients` and `intercept` inside the model stage only."""
    text = SPEC.read_text()
    start = text.index('plugin = "logistic-regression"')
    end = text.find("\n[[", start)
    end = len(text) if end == -1 else end
    block = text[start:end]
    coef_line = "coefficients = [" + ", ".join(repr(c) for c in coef) + "]"
    block, n1 = re.subn(r"(?m)^coefficients = \[[^\]]*\]", coef_line, block)
    block, n2 = re.subn(r"(?m)^intercept = \S+", f"intercept = {intercept!r}", block)
    if (n1, n2) != (1, 1):
        sys.exit("pipeline.toml: could not find coefficients/intercept in the model stage")
    new = text[:start] + block + text[end:]
    parsed = stage(tomllib.loads(new), "logistic-regression")["config"]
    assert parsed["coefficients"] == coef and parsed["intercept"] == intercept
    SPEC.write_text(new)


if __name__ == "__main__":
    main()
