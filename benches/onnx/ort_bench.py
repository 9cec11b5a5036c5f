#!/usr/bin/env python3
"""onnxruntime's side of `cargo xtask bench-onnx`: the same model, the same
rows (the f32 file the Rust side wrote), the same batch sizes, one thread
(Keel's stage runs on one thread too). Prints one JSON object per measurement.

Run:  python ort_bench.py MODEL.onnx DATA.f32
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

FEATURES = 7
LATENCY_CALLS = 5_000


def main() -> None:
    model, data = sys.argv[1], sys.argv[2]
    x = np.fromfile(data, dtype="<f4").reshape(-1, FEATURES)
    rows = x.shape[0]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    s = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    for batch in (1024, 16384):
        chunks = [np.ascontiguousarray(x[i : i + batch]) for i in range(0, rows, batch)]
        times = []
        for _ in range(3):
            t = time.perf_counter()
            for c in chunks:
                s.run(None, {"features": c})
            times.append(time.perf_counter() - t)
        d = statistics.median(times)
        print(json.dumps({"what": f"onnxruntime {ort.__version__} (Python)", "batch": batch,
                          "rows": rows, "seconds": d, "rows_per_s": rows / d}))
    one = [np.ascontiguousarray(x[i : i + 1]) for i in range(LATENCY_CALLS)]
    lat = []
    for c in one:
        t = time.perf_counter()
        s.run(None, {"features": c})
        lat.append((time.perf_counter() - t) * 1e6)
    lat.sort()
    pick = lambda p: lat[round((len(lat) - 1) * p)]
    print(json.dumps({"what": f"onnxruntime {ort.__version__} (Python)", "batch": 1,
                      "calls": LATENCY_CALLS, "p50_us": pick(0.5), "p99_us": pick(0.99)}))


if __name__ == "__main__":
    main()
