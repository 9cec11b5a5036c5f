#!/usr/bin/env python3
"""NannyML's side of `cargo xtask bench-performance`: the work `keel performance`
does on the files of generate.py, timed part by part, with the values for the
comparison written as JSON.

Usage (from the repository root; `cargo xtask bench-performance` does all of it):
    python benches/performance/nannyml_bench.py --dir target/bench-performance \
        --chunk-size 50000 --out target/bench-performance/nannyml.json

What is timed (the same work keel's wall time covers):
  read     pandas.read_csv of analysis.csv, labels.csv and reference.csv
  join     labels left-joined by id onto the predictions (the last label of an id
           counts, as in keel)
  cbpe     CBPE (roc_auc, f1, precision, recall, accuracy: the metrics keel
           estimates) fitted on the reference, estimated on the analysis rows
           in chunks of --chunk-size
  realized PerformanceCalculator (roc_auc, f1, precision, recall, specificity,
           accuracy) fitted on the reference, calculated on the joined analysis
           rows in the same chunks (unlabelled rows dropped per chunk)
  segments the same calculator, one chunk per value of the segment column
Importing nannyml is timed apart and left out of the total (a notebook pays it
once). Keel computes more than this (average precision, log loss, Brier score
and a confusion matrix too): the comparison leaves NannyML the lighter job.
"""
import argparse
import json
import os
import resource
import time
import warnings

# NannyML sends usage statistics unless told not to.
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"
t_import = time.perf_counter()
import nannyml  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

IMPORT_S = time.perf_counter() - t_import
warnings.simplefilter("ignore")

CBPE_METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]
REALIZED_METRICS = ["roc_auc", "f1", "precision", "recall", "specificity", "accuracy"]


def num(x):
    x = float(x)
    return None if np.isnan(x) else x


def per_chunk(result, metrics):
    """[{start, end, metric: value}] of the analysis period, in order."""
    data = result.filter(period="analysis").data
    out = []
    for _, row in data.iterrows():
        c = {"start": int(row[("chunk", "start_index")]), "end": int(row[("chunk", "end_index")])}
        for m in metrics:
            c[m] = num(row[(m, "value")])
        out.append(c)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="target/bench-performance")
    ap.add_argument("--chunk-size", type=int, default=50_000)
    ap.add_argument("--segment-column", default="region")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    parts = {}
    common = dict(y_pred_proba="score", y_pred="prediction", y_true="y",
                  problem_type="classification_binary")

    t0 = time.perf_counter()
    analysis = pd.read_csv(os.path.join(a.dir, "analysis.csv"))
    labels = pd.read_csv(os.path.join(a.dir, "labels.csv"))
    reference = pd.read_csv(os.path.join(a.dir, "reference.csv"))
    parts["read"] = time.perf_counter() - t0

    t = time.perf_counter()
    labels = labels.drop_duplicates("id", keep="last")
    joined = analysis.merge(labels, on="id", how="left", validate="many_to_one")
    parts["join"] = time.perf_counter() - t

    t = time.perf_counter()
    chunker = nannyml.chunk.SizeBasedChunker(chunk_size=a.chunk_size, incomplete="keep")
    cbpe = nannyml.CBPE(metrics=CBPE_METRICS, chunker=chunker, **common)
    cbpe.fit(reference)
    estimated = cbpe.estimate(analysis)
    parts["cbpe"] = time.perf_counter() - t

    t = time.perf_counter()
    chunker = nannyml.chunk.SizeBasedChunker(chunk_size=a.chunk_size, incomplete="keep")
    calc = nannyml.PerformanceCalculator(metrics=REALIZED_METRICS, chunker=chunker, **common)
    calc.fit(reference)
    realized = calc.calculate(joined)
    parts["realized"] = time.perf_counter() - t

    t = time.perf_counter()
    seg_calc = nannyml.PerformanceCalculator(metrics=REALIZED_METRICS, chunk_number=1, **common)
    seg_calc.fit(reference)
    segments = {}
    for value, rows in joined.groupby(a.segment_column, sort=True):
        segments[str(value)] = per_chunk(seg_calc.calculate(rows), REALIZED_METRICS)[0]
    parts["segments"] = time.perf_counter() - t
    total = time.perf_counter() - t0

    out = {
        "versions": {"nannyml": nannyml.__version__, "pandas": pd.__version__, "numpy": np.__version__},
        "import_s": IMPORT_S,
        "total_s": total,
        "parts_s": parts,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "estimated": per_chunk(estimated, CBPE_METRICS),
        "realized": per_chunk(realized, REALIZED_METRICS),
        "segments": segments,
    }
    with open(a.out, "w") as f:
        json.dump(out, f)
    print(f"nannyml {nannyml.__version__}: {total:.2f} s (" +
          ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()) + f"; import {IMPORT_S:.2f} s apart)")


if __name__ == "__main__":
    main()
