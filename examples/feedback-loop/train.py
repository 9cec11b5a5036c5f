#!/usr/bin/env python3
"""Trains the feedback-loop example's model on a labelled CSV and exports it
to ONNX for Keel's `onnx-model` stage.

A scikit-learn logistic regression on the three features as the pipeline's
`scale` stage hands them over (standard-scaled with the *reference's* mean and
population standard deviation, as Keel's standard-scaler fits them), exported
with skl2onnx: one float32 input `features` [N, 3], outputs `label` (int64
[N]) and `probabilities` (float32 [N, 2]).

Run:  python train.py DATA.csv OUT.onnx
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType

HERE = Path(__file__).resolve().parent
FEATURES = ["income_k", "debt_ratio", "years_employed"]


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[c]) for c in FEATURES] for r in rows], dtype=np.float64)
    y = np.array([int(r["defaulted"]) for r in rows], dtype=np.int64)
    return x, y


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: train.py DATA.csv OUT.onnx")
    ref, _ = load(HERE / "reference.csv")
    mean, std = ref.mean(axis=0), ref.std(axis=0, ddof=0)
    x, y = load(Path(sys.argv[1]))
    model = LogisticRegression(C=1.0, solver="lbfgs").fit((x - mean) / std, y)
    onx = convert_sklearn(
        model,
        initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onx.doc_string = "loan default logistic regression; features: " + ",".join(FEATURES)
    out = Path(sys.argv[2])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(onx.SerializeToString())
    acc = float(np.mean(model.predict((x - mean) / std) == y))
    print(f"wrote {out} ({out.stat().st_size} bytes); training accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
