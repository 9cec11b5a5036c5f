"""Golden values for keel-algos' drift statistics, computed with scipy.

Run from the repository root: `python3 algos/tests/golden/generate.py`
(numpy + scipy; see requirements.txt). Writes golden.json beside this file;
`cargo test -p keel-algos --test golden` compares every case to 1e-6.
The data is fixed (seeded generators) and stored in the JSON, so the Rust
side needs neither Python nor numpy's generators.
"""
import json
import pathlib

import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance

rng = np.random.default_rng(20261122)
cases = {"scipy": scipy.__version__, "ks": [], "chi2": [], "z": [], "wasserstein": [],
         "distances": [], "special": []}


def floats(a):
    return [float(x) for x in a]


# Two-sample KS: exact path (small samples, ties, equal and unequal sizes).
ks_samples = [
    ("equal_sizes_shifted", rng.normal(0, 1, 40), rng.normal(0.5, 1, 40)),
    ("unequal_sizes", rng.normal(0, 1, 73), rng.normal(0.3, 1.2, 120)),
    ("ties", rng.integers(0, 6, 50).astype(float), rng.integers(1, 7, 61).astype(float)),
    ("identical", np.arange(30.0), np.arange(30.0)),
    ("disjoint_tiny_p", rng.uniform(0, 1, 200), rng.uniform(2, 3, 150)),
    ("one_value", np.array([1.0]), rng.normal(0, 1, 9)),
    ("medium", rng.normal(0, 1, 900), rng.normal(0.1, 1, 700)),
]
for name, a, b in ks_samples:
    r = stats.ks_2samp(a, b, method="exact")
    cases["ks"].append({"name": name, "mode": "exact", "a": floats(a), "b": floats(b),
                        "statistic": float(r.statistic), "p_value": float(r.pvalue)})
# Asymptotic path: Kolmogorov's limit at sqrt(en) * D (scipy.stats.kstwobign).
for name, a, b in [
    ("asymptotic_close", rng.normal(0, 1, 6000), rng.normal(0.02, 1, 5000)),
    ("asymptotic_shifted", rng.normal(0, 1, 3000), rng.normal(0.15, 1, 4000)),
]:
    d = float(stats.ks_2samp(a, b).statistic)
    en = len(a) * len(b) / (len(a) + len(b))
    cases["ks"].append({"name": name, "mode": "asymptotic", "a": floats(a), "b": floats(b),
                        "statistic": d, "p_value": float(stats.kstwobign.sf(np.sqrt(en) * d))})

# Chi-square of homogeneity on 2 x k tables (Yates when dof == 1; zero columns dropped).
for name, ref, cur in [
    ("three_categories", [108, 80, 36], [60, 11, 4]),
    ("two_categories_yates", [30, 70], [45, 55]),
    ("zero_column_dropped", [10, 0, 20, 5], [12, 0, 9, 30]),
    ("unseen_category", [50, 50, 0], [40, 40, 20]),
    ("identical", [10, 20, 30], [10, 20, 30]),
    ("many", list(rng.integers(5, 100, 12)), list(rng.integers(5, 100, 12))),
]:
    # scipy refuses a category with 0 in both rows (zero expected count);
    # Keel drops it, so the golden value is scipy's on the remaining columns.
    table = np.array([ref, cur], float)
    r = stats.chi2_contingency(table[:, table.sum(axis=0) > 0])
    cases["chi2"].append({"name": name, "reference": [int(x) for x in ref], "current": [int(x) for x in cur],
                          "statistic": float(r.statistic), "p_value": float(r.pvalue), "dof": int(r.dof)})

# Pooled two-proportion Z test.
for name, x1, n1, x2, n2 in [("stable", 107, 216, 41, 72), ("shift", 300, 1000, 380, 1000),
                             ("tiny_p", 10, 500, 200, 500)]:
    p = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    cases["z"].append({"name": name, "x_ref": x1, "n_ref": n1, "x_cur": x2, "n_cur": n2,
                       "statistic": float(z), "p_value": float(2 * stats.norm.sf(abs(z)))})

# Wasserstein-1 between samples, raw and divided by the reference's population std.
for name, a, b in [("normal_shift", rng.normal(0, 1, 500), rng.normal(0.4, 1.5, 300)),
                   ("ties", rng.integers(0, 5, 100).astype(float), rng.integers(0, 7, 80).astype(float)),
                   ("identical", np.arange(10.0), np.arange(10.0))]:
    w = float(stats.wasserstein_distance(a, b))
    cases["wasserstein"].append({"name": name, "a": floats(a), "b": floats(b), "distance": w,
                                 "normed": w / float(np.std(a))})

# Distances between frequency vectors (counts; each normalised to 1).
for name, p, q in [("categories", [108, 80, 36], [60, 11, 4]),
                   ("with_zero", [10, 0, 20, 5], [0, 12, 9, 30]),
                   ("identical", [1, 2, 3], [2, 4, 6]),
                   ("bins", list(rng.integers(1, 50, 10)), list(rng.integers(1, 50, 10)))]:
    P = np.array(p, float) / sum(p)
    Q = np.array(q, float) / sum(q)
    eps = 1e-4
    Pe, Qe = np.maximum(P, eps), np.maximum(Q, eps)
    cases["distances"].append({
        "name": name, "p": [float(x) for x in p], "q": [float(x) for x in q],
        "jensenshannon_base2": float(distance.jensenshannon(p, q, base=2)),
        "jensenshannon_base_e": float(distance.jensenshannon(p, q)),
        "hellinger": float(np.sqrt(np.sum((np.sqrt(P) - np.sqrt(Q)) ** 2)) / np.sqrt(2)),
        "linf": float(np.max(np.abs(P - Q))),
        "psi": float(np.sum((Qe - Pe) * np.log(Qe / Pe))),
    })

for x in [0.0, 0.5, 1.0, 1.96, 3.0, 5.0, 8.0, -1.5]:
    cases["special"].append({"fn": "normal_sf", "x": x, "value": float(stats.norm.sf(x))})
for x, k in [(0.5, 1), (3.84, 1), (23.12, 2), (10.0, 5), (50.0, 11), (0.01, 3), (200.0, 30)]:
    cases["special"].append({"fn": "chi2_sf", "x": x, "dof": k, "value": float(stats.chi2.sf(x, k))})
for x in [0.2, 0.5, 0.8, 1.0, 1.18, 1.36, 2.0, 3.0]:
    cases["special"].append({"fn": "kolmogorov_sf", "x": x, "value": float(stats.kstwobign.sf(x))})

out = pathlib.Path(__file__).with_name("golden.json")
out.write_text(json.dumps(cases, indent=1) + "\n")
print(f"wrote {out} (scipy {scipy.__version__})")
