#!/usr/bin/env python3
"""Writes the feedback-loop example's data (standard library only, seeded, so
the files are the same on every run).

Loan applications with three numeric features and a region; the outcome
(`defaulted`, 0/1) arrives weeks after the decision. The model is trained on
`reference.csv`. Then the world changes under it: the inputs look the same,
but debt now weighs much more and income much less (concept drift — no input
drift monitor can see it; only the labels can).

- reference.csv: 2,000 applications with their outcome (the training data);
- traffic.csv:   2,000 later applications, no outcome, in time order; the
                 change starts at row 1,000;
- labels.csv:    the outcomes of all 2,000 (id, defaulted), in time order as
                 they would come in;
- recent.csv:    the last 1,000 applications with their outcome: what the
                 stand-in retraining script (retrain.sh) learns from.

Run from anywhere: python3 examples/feedback-loop/generate.py
"""

import csv
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
REGIONS = ["north", "south", "east", "west"]
FEATURES = ["income_k", "debt_ratio", "years_employed"]


def application(rng, i, prefix):
    return {
        "id": f"{prefix}{i:05d}",
        "region": rng.choice(REGIONS),
        "income_k": round(max(rng.gauss(60.0, 20.0), 8.0), 2),
        "debt_ratio": round(min(max(rng.gauss(0.35, 0.15), 0.0), 1.2), 4),
        "years_employed": round(max(rng.gauss(6.0, 4.0), 0.0), 1),
    }


def outcome(rng, a, changed):
    z_income = (a["income_k"] - 60.0) / 20.0
    z_debt = (a["debt_ratio"] - 0.35) / 0.15
    z_years = (a["years_employed"] - 6.0) / 4.0
    if changed:  # rates went up: debt is what matters now
        logit = -0.6 + 2.8 * z_debt + 0.1 * z_income - 0.2 * z_years
    else:
        logit = -1.0 + 0.6 * z_debt - 1.6 * z_income - 0.5 * z_years
    return int(rng.random() < 1.0 / (1.0 + math.exp(-logit)))


def write(name, rows, fields):
    with open(os.path.join(HERE, name), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def main():
    rng = random.Random(29)
    reference = [application(rng, i, "R") for i in range(2000)]
    for a in reference:
        a["defaulted"] = outcome(rng, a, False)
    traffic = [application(rng, i, "T") for i in range(2000)]
    for i, a in enumerate(traffic):
        a["defaulted"] = outcome(rng, a, i >= 1000)
    fields = ["id", "region"] + FEATURES
    write("reference.csv", reference, fields + ["defaulted"])
    write("traffic.csv", traffic, fields)
    write("labels.csv", traffic, ["id", "defaulted"])
    write("recent.csv", traffic[1000:], fields + ["defaulted"])


if __name__ == "__main__":
    main()
