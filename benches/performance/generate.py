#!/usr/bin/env python3
"""Files for timing `keel performance` (standard library only; nothing here is
committed data): 1,000,000 binary predictions (id, region, score,
prediction), 800,000 of their labels in random order (id, y) and a
100,000-row labelled reference, as CSV in target/bench-performance/.

Usage (from the repository root; `cargo xtask bench-performance` writes them when
missing and times keel against NannyML on them):
    python3 benches/performance/generate.py [--rows 1000000] [--out target/bench-performance]
    /usr/bin/time -v target/release/keel performance target/bench-performance/analysis.csv \
        --labels target/bench-performance/labels.csv \
        --reference target/bench-performance/reference.csv \
        --id-column id --label-column y --score-column score --prediction-column prediction \
        --chunk-size 50000 --segment-column region --format json -o /dev/null
"""
import argparse
import os
import random

REGIONS = ["north", "south", "east", "west", "centre"]


def rows(rng, n, prefix, labelled, drift_from):
    for i in range(n):
        score = rng.betavariate(1.2, 2.0)
        p = 0.35 + 0.3 * score if i >= drift_from else score
        yield (
            f"{prefix}{i:07d}",
            rng.choice(REGIONS),
            f"{score:.5f}",
            int(score >= 0.5),
            int(rng.random() < p) if labelled else None,
        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", default="target/bench-performance")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(1)
    with open(os.path.join(a.out, "reference.csv"), "w") as f:
        f.write("id,region,score,prediction,y\n")
        for r in rows(rng, a.rows // 10, "R", True, a.rows):
            f.write("%s,%s,%s,%d,%d\n" % r)
    labels = []
    with open(os.path.join(a.out, "analysis.csv"), "w") as f:
        f.write("id,region,score,prediction\n")
        for r in rows(rng, a.rows, "A", True, a.rows * 7 // 10):
            f.write("%s,%s,%s,%d\n" % r[:4])
            labels.append((r[0], r[4]))
    rng.shuffle(labels)
    with open(os.path.join(a.out, "labels.csv"), "w") as f:
        f.write("id,y\n")
        for id_, y in labels[: a.rows * 8 // 10]:
            f.write("%s,%d\n" % (id_, y))


if __name__ == "__main__":
    main()
