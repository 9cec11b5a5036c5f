#!/usr/bin/env python3
"""The shap side of `cargo xtask bench-explain`: shap.KernelExplainer on the penguins-onnx
model run by onnxruntime, over the same six raw columns, background rows and row that keel
explained, with every coalition (nsamples = 2**6 - 2, l1_reg=False: exact).

The model shap calls is the whole pipeline written in numpy, as Keel's stages compute it:
median imputer, one-hot `island` (categories sorted, null or unseen = all zeros), standard
scaler (population std, 0 -> 1), all fitted on the reference; then the ONNX graph in
onnxruntime. `island` and `sex` are given to shap as category codes (it needs numbers).

Run: python shap_bench.py MODEL.onnx REFERENCE.csv BACKGROUND.csv ROW.csv KEEL.json
Prints one JSON object: the timings (median of 5 runs, one thread), shap's values and the
largest difference from keel's.
"""
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import pandas as pd  # noqa: E402
import shap  # noqa: E402

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
FEATURES = ["island"] + NUMERIC + ["sex"]
RUNS = 5


def main():
    model, reference, background, row, keel = sys.argv[1:6]
    ref = pd.read_csv(reference)
    islands = sorted(ref["island"].dropna().unique())
    sexes = sorted(ref["sex"].dropna().unique())
    medians = {c: float(np.median(ref[c].dropna())) for c in NUMERIC}

    def encode(df):
        x = np.empty((len(df), len(FEATURES)))
        x[:, 0] = [islands.index(v) if v in islands else -1 for v in df["island"]]
        for j, c in enumerate(NUMERIC):
            x[:, j + 1] = df[c].astype(float)
        x[:, 5] = [sexes.index(v) if v in sexes else -1 for v in df["sex"]]
        return x

    def features(x):
        cols = [np.where(np.isnan(x[:, j + 1]), medians[c], x[:, j + 1]) for j, c in enumerate(NUMERIC)]
        cols += [(x[:, 0] == k).astype(float) for k in range(len(islands))]
        return np.column_stack(cols)

    fitted = features(encode(ref))
    mean = fitted.mean(axis=0)
    std = fitted.std(axis=0)
    std[std == 0] = 1.0
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def f(x):
        z = ((features(x) - mean) / std).astype(np.float32)
        return session.run(["probabilities"], {"features": z})[0][:, 1].astype(np.float64)

    bg = encode(pd.read_csv(background))
    x = encode(pd.read_csv(row))
    whole, values_only, values = [], [], None
    for _ in range(RUNS):
        t0 = time.perf_counter()
        explainer = shap.KernelExplainer(f, bg)
        t1 = time.perf_counter()
        values = explainer.shap_values(x, nsamples=2 ** len(FEATURES) - 2, l1_reg=False, silent=True)
        t2 = time.perf_counter()
        whole.append(t2 - t0)
        values_only.append(t2 - t1)
    values = np.asarray(values).reshape(-1)
    k = json.load(open(keel))
    ours = np.array(k["shap"])
    print(json.dumps({
        "what": f"shap {shap.__version__} KernelExplainer + onnxruntime {ort.__version__}",
        "rows_through_model": int((2 ** len(FEATURES)) * len(bg)),
        "median_ms": float(np.median(whole) * 1e3),
        "shap_values_median_ms": float(np.median(values_only) * 1e3),
        "base_value": float(np.asarray(explainer.expected_value).reshape(-1)[0]),
        "shap": values.tolist(),
        "max_abs_diff_vs_keel": float(np.max(np.abs(values - ours))),
        "base_diff_vs_keel": float(abs(np.asarray(explainer.expected_value).reshape(-1)[0] - k["base_value"])),
    }))


main()
