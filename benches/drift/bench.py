"""Drift over 1,000,000 rows x 50 mixed columns: Keel vs Evidently, same files, one run.

Usage (from the repository root; `cargo xtask bench-drift` does all of it):
    python3 benches/drift/bench.py --keel target/release/keel [--rows 1000000] [--skip-evidently]

Writes reference and current Parquet files (25 float, 10 integer, 10 string,
5 bool columns; drift in 12 of them) to target/bench-drift/, then times
  - `keel drift REF CUR --format json` (reads both files, chooses the method
    per column, compares, prints JSON), and
  - Evidently's DataDriftPreset on the same files (pandas.read_parquet + report),
and prints both times and the ratio. Both use their automatic method choice
(for references over 1000 rows: normalised Wasserstein for numeric columns,
Jensen-Shannon otherwise).
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time

import numpy as np
import pandas as pd


def make(rows: int, seed: int, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {}
    for i in range(25):
        shift = 0.25 if drift and i < 6 else 0.0
        cols[f"f{i:02}"] = rng.normal(shift + i, 1.0 + i / 10, rows)
    for i in range(10):
        lam = 3.0 + i + (1.5 if drift and i < 3 else 0.0)
        cols[f"i{i:02}"] = rng.poisson(lam, rows).astype("int64")
    cats = [f"cat_{k:02}" for k in range(20)]
    base = np.linspace(1.0, 2.0, 20)
    for i in range(10):
        p = base.copy()
        if drift and i < 2:
            p[:5] *= 2.0
        p /= p.sum()
        cols[f"s{i:02}"] = pd.Categorical(rng.choice(cats, rows, p=p)).astype(str)
    for i in range(5):
        q = 0.3 + 0.1 * i + (0.1 if drift and i < 1 else 0.0)
        cols[f"b{i:02}"] = rng.random(rows) < q
    return pd.DataFrame(cols)


def evidently_report(ref: pd.DataFrame, cur: pd.DataFrame):
    try:  # evidently >= 0.7
        from evidently import Report
        from evidently.presets import DataDriftPreset
        return Report([DataDriftPreset()]).run(reference_data=ref, current_data=cur)
    except ImportError:  # evidently 0.4 - 0.6
        from evidently.metric_preset import DataDriftPreset
        from evidently.report import Report
        report = Report(metrics=[DataDriftPreset()])
        report.run(reference_data=ref, current_data=cur)
        return report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keel", required=True)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dir", default="target/bench-drift")
    ap.add_argument("--skip-evidently", action="store_true")
    args = ap.parse_args()
    out = pathlib.Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    ref_path, cur_path = out / f"reference-{args.rows}.parquet", out / f"current-{args.rows}.parquet"
    if not (ref_path.exists() and cur_path.exists()):
        print(f"writing {args.rows:,} x 50 reference and current Parquet files to {out}/", flush=True)
        make(args.rows, 1, False).to_parquet(ref_path, index=False)
        make(args.rows, 2, True).to_parquet(cur_path, index=False)

    # Median of three runs: the first after writing the files may still be
    # paging them in.
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        res = subprocess.run([args.keel, "drift", str(ref_path), str(cur_path), "--format", "json", "-q"],
                             capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if res.returncode != 0:
            sys.exit(f"keel drift failed: {res.stderr}")
    keel_s = sorted(times)[1]
    report = json.loads(res.stdout)
    drifted = sorted(c["column"] for c in report["columns"] if c["drift"])
    methods = sorted({c["method"] for c in report["columns"]})
    print(f"keel drift:  {keel_s:7.2f} s  median of {', '.join(f'{t:.2f}' for t in times)} "
          f"({len(drifted)} of {len(report['columns'])} columns drifted: "
          f"{', '.join(drifted)}; methods {', '.join(methods)})", flush=True)

    if args.skip_evidently:
        return
    import evidently
    t0 = time.perf_counter()
    ref = pd.read_parquet(ref_path)
    cur = pd.read_parquet(cur_path)
    evidently_report(ref, cur)
    ev_s = time.perf_counter() - t0
    print(f"evidently {evidently.__version__}: {ev_s:7.2f} s  (pandas.read_parquet + DataDriftPreset)")
    print(f"ratio evidently / keel: {ev_s / keel_s:.1f}x")


if __name__ == "__main__":
    main()
