#!/usr/bin/env python3
"""Writes the small `keel performance` example (standard library only, seeded,
so the files are the same on every run):

- reference.csv: 3,000 scored loan applications whose outcome is known
  (id, region, score, prediction, defaulted);
- analysis.csv: 3,000 later applications, scored the same way, no outcome
  (id, region, score, prediction); from row 2,000 on the world changes and
  the model is often wrong;
- labels.csv: outcomes that arrived later (id, defaulted), in random order:
  the first 2,500 analysis rows (the last 500 applications are still open),
  with 20 corrections (an id sent twice; the last value counts) and 15 ids
  that match no application.

Run from anywhere: python3 examples/performance/generate.py
"""

import csv
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
REGIONS = ["north", "south", "east", "west"]


def application(rng, i, prefix):
    score = min(max(rng.betavariate(1.2, 2.0), 0.0), 1.0)
    return {
        "id": f"{prefix}{i:05d}",
        "region": rng.choice(REGIONS),
        "score": round(score, 4),
        "prediction": int(score >= 0.5),
    }


def outcome(rng, score, changed):
    # Calibrated before the change; afterwards the score says less.
    p = 0.35 + 0.3 * score if changed else score
    return int(rng.random() < p)


def write(name, rows, fields):
    with open(os.path.join(HERE, name), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def main():
    rng = random.Random(20)
    reference = []
    for i in range(3000):
        r = application(rng, i, "R")
        r["defaulted"] = outcome(rng, r["score"], False)
        reference.append(r)
    analysis = [application(rng, i, "A") for i in range(3000)]
    labels = [
        {"id": a["id"], "defaulted": outcome(rng, a["score"], i >= 2000)}
        for i, a in enumerate(analysis[:2500])
    ]
    # Corrections: an earlier label sent again with the other value.
    corrections = [dict(l) for l in rng.sample(labels, 20)]
    for c in corrections:
        c["defaulted"] = 1 - c["defaulted"]
    rng.shuffle(labels)
    labels += corrections
    labels += [{"id": f"X{i:05d}", "defaulted": rng.randint(0, 1)} for i in range(15)]
    fields = ["id", "region", "score", "prediction"]
    write("reference.csv", reference, fields + ["defaulted"])
    write("analysis.csv", analysis, fields)
    write("labels.csv", labels, ["id", "defaulted"])


if __name__ == "__main__":
    main()
