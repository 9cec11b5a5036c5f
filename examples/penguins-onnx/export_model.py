#!/usr/bin/env python3
"""Trains the penguins-onnx example's model and exports it to ONNX.

Same task as examples/penguins (is_gentoo from four measurements and a
one-hot `island`), but the logistic regression runs as an ONNX graph on the
host (wasi:nn, tract) instead of as a wasm plugin. Keel's own plugins do the
preprocessing (imputer, one-hot encoder, standard scaler), so the model is
fitted on the reference data exactly as those stages hand it over: the
preprocessing below mirrors them (see examples/penguins/train.py, which
checks the same definitions against scikit-learn's).

The graph takes one float32 tensor `features` [N, 7] (columns in FEATURES
order) and gives `label` (int64 [N]) and `probabilities` (float32 [N, 2]:
P(not Gentoo), P(Gentoo)); skl2onnx's ZipMap is off so both are plain tensors.

Run:  python export_model.py OUT.onnx [C]
(C: the inverse regularisation strength, 1.0 by default; another C makes
another model version, for trying a candidate with `keel replay --with`.)
"""

from __future__ import annotations

import csv
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parent / "penguins" / "reference.csv"
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
ISLANDS = ["Biscoe", "Dream", "Torgersen"]
FEATURES = NUMERIC + [f"island_{c}" for c in ISLANDS]


def median(values: list[float]) -> float:
    v = sorted(x for x in values if not np.isnan(x))
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def reference_features() -> tuple[np.ndarray, np.ndarray]:
    with open(REFERENCE, newline="") as f:
        rows = list(csv.DictReader(f))
    num = np.array(
        [[float(r[c]) if r[c] != "" else np.nan for c in NUMERIC] for r in rows], dtype=np.float64
    )
    for j in range(num.shape[1]):  # imputer: median of the reference column
        col = num[:, j]
        col[np.isnan(col)] = median(list(col))
    onehot = np.array([[1.0 if r["island"] == c else 0.0 for c in ISLANDS] for r in rows])
    x = np.column_stack([num, onehot])
    std = x.std(axis=0, ddof=0)  # standard scaler: population std, 0 -> 1
    std[std == 0.0] = 1.0
    x = (x - x.mean(axis=0)) / std
    y = np.array([r["species"] == "Gentoo" for r in rows], dtype=np.int64)
    return x, y


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: export_model.py OUT.onnx [C]")
    c = float(sys.argv[2]) if len(sys.argv) == 3 else 1.0
    x, y = reference_features()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = LogisticRegression(C=c, solver="lbfgs").fit(x, y)
    onx = convert_sklearn(
        model,
        initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onx.doc_string = "penguins is_gentoo logistic regression; features: " + ",".join(FEATURES)
    out = Path(sys.argv[1])
    out.write_bytes(onx.SerializeToString())
    acc = float(np.mean(model.predict(x) == y))
    print(f"wrote {out} ({out.stat().st_size} bytes); reference accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
