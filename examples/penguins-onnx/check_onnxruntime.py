#!/usr/bin/env python3
"""Checks Keel's predictions against onnxruntime's on the same inputs.

Reads the CSV `keel run` wrote for pipeline.toml (it holds the scaled
features the model stage received, and its predictions), runs the same
.onnx file with onnxruntime on those features, and compares P(Gentoo) and
the label row by row. Prints a JSON summary; exits 1 when any probability
differs by more than 1e-5 or any label differs.

Run:  python check_onnxruntime.py MODEL.onnx KEEL_OUTPUT.csv
"""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import onnxruntime as ort

FEATURES = [
    "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
    "island_Biscoe", "island_Dream", "island_Torgersen",
]
TOLERANCE = 1e-5


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: check_onnxruntime.py MODEL.onnx KEEL_OUTPUT.csv")
    with open(sys.argv[2], newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[c]) for c in FEATURES] for r in rows], dtype=np.float32)
    keel_prob = np.array([float(r["prob_gentoo"]) for r in rows])
    keel_label = np.array([r["is_gentoo"] == "true" for r in rows])
    session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    label, prob = session.run(["label", "probabilities"], {"features": x})
    diff = np.abs(prob[:, 1].astype(np.float64) - keel_prob)
    labels_differ = int(np.sum((label != 0) != keel_label))
    summary = {
        "rows": len(rows),
        "max_abs_diff": float(diff.max()) if len(rows) else 0.0,
        "worst_row": int(diff.argmax()) if len(rows) else None,
        "labels_differ": labels_differ,
        "gentoo_rows": int(np.sum(label != 0)),
        "tolerance": TOLERANCE,
        "onnxruntime": ort.__version__,
    }
    print(json.dumps(summary))
    if summary["max_abs_diff"] > TOLERANCE or labels_differ:
        sys.exit(1)


if __name__ == "__main__":
    main()
