"""Golden values for keel-algos' drift statistics (`keel_algos::stats`), computed with scipy.

Run from anywhere: `python3 algos/tests/golden/generate.py` (numpy + scipy, see
requirements.txt). It writes golden.json beside this file; `cargo test -p keel-algos
--test all golden::` compares every case with the Rust functions. CI needs neither Python
nor numpy: the data is generated here from fixed seeds and stored in the JSON, inputs
and outputs alike, because Rust cannot replay numpy's generators.

Inputs of the large samples are rounded to 6 decimals *before* scipy sees them, which
keeps the file small (< 1 MB) without any difference between what scipy computed on and
what the JSON holds. Outputs are written at full (repr) precision.

What each expected value is:
- ks (mode "exact"): scipy.stats.ks_2samp(a, b, method="exact"), with scipy's fallback
  to its asymptotic formula turned into an error, so every value is a lattice-path count.
- ks (mode "asymptotic"): D from scipy.stats.ks_2samp(a, b) and the p-value of
  Kolmogorov's limit, scipy.stats.kstwobign.sf(sqrt(en) * D), en = n1 n2 / (n1 + n2).
  (scipy's own method="asymp" uses kstwo.sf(D, round(en)) instead; Keel does not.)
  `auto` says which path KsMode::Auto must take (exact iff max(n1, n2) <= 10000).
- chi2: scipy.stats.chi2_contingency([reference, current]) (defaults: Yates at dof 1) on
  the table without its all-zero columns, which scipy refuses and Keel drops; a shorter
  row is padded with zeros, as Keel does.
- z: the pooled two-proportion Z statistic (reference minus current) with
  2 * scipy.stats.norm.sf(|z|).
- wasserstein: scipy.stats.wasserstein_distance(a, b), and that divided by
  max(numpy.std(a), 0.001) (Evidently's "normed" variant and its floor).
- distances: scipy.spatial.distance.jensenshannon (base 2 and e); Hellinger, L-inf and
  PSI (epsilon 1e-4) computed with numpy on the normalised vectors (shorter padded).
- special: scipy.stats.norm.sf, chi2.sf and kstwobign.sf at fixed points.
"""
import json
import pathlib
import warnings

import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance

rng = np.random.default_rng(20261122)
MAX_AUTO_N = 10_000


def floats(a):
    return [float(x) for x in a]


def r6(a):
    """Six decimals, applied to the inputs before scipy sees them."""
    return np.round(np.asarray(a, float), 6)


def ks_exact(a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return stats.ks_2samp(a, b, method="exact")


out = {"scipy": scipy.__version__, "numpy": np.__version__}

# ---------------------------------------------------------------- two-sample KS
ks = []
for name, a, b in [
    ("equal_sizes_shifted", rng.normal(0, 1, 40), rng.normal(0.5, 1, 40)),
    ("unequal_sizes", rng.normal(0, 1, 73), rng.normal(0.3, 1.2, 120)),
    ("ties", rng.integers(0, 6, 50).astype(float), rng.integers(1, 7, 61).astype(float)),
    ("identical", np.arange(30.0), np.arange(30.0)),
    ("same_values_other_order", np.arange(12.0), np.arange(12.0)[::-1].copy()),
    ("disjoint_tiny_p", rng.uniform(0, 1, 200), rng.uniform(2, 3, 150)),
    ("interleaved_disjoint_halves", np.arange(0.0, 100.0), np.arange(100.0, 180.0)),
    ("one_value_vs_nine", np.array([1.0]), rng.normal(0, 1, 9)),
    ("two_vs_three", np.array([0.5, 2.0]), np.array([1.0, 1.5, 3.0])),
    ("medium", r6(rng.normal(0, 1, 900)), r6(rng.normal(0.1, 1, 700))),
    ("common_divisor_600_400", r6(rng.normal(0, 1, 600)), r6(rng.normal(0.12, 1, 400))),
    ("large_equal_3000", r6(rng.normal(0, 1, 3000)), r6(rng.normal(0.05, 1, 3000))),
    ("large_unequal_2500_1999", r6(rng.normal(0, 1, 2500)), r6(rng.standard_t(5, 1999))),
    ("large_equal_tiny_p", r6(rng.normal(0, 1, 2000)), r6(rng.normal(0.3, 1, 2000))),
]:
    r = ks_exact(a, b)
    ks.append({"name": name, "mode": "exact", "auto": "exact", "a": floats(a), "b": floats(b),
               "statistic": float(r.statistic), "p_value": float(r.pvalue)})
for name, a, b in [
    # Above 10,000 values on one side: KsMode::Auto takes this path.
    ("asymptotic_auto_10050_vs_400", r6(rng.normal(0, 1, 10_050)), r6(rng.normal(0.1, 1, 400))),
    ("asymptotic_close", r6(rng.normal(0, 1, 4000)), r6(rng.normal(0.02, 1, 3000))),
    ("asymptotic_tiny_p", r6(rng.normal(0, 1, 1500)), r6(rng.normal(0.4, 1, 1500))),
    ("asymptotic_ties", rng.integers(0, 20, 2000).astype(float),
     rng.integers(0, 21, 2500).astype(float)),
]:
    d = float(stats.ks_2samp(a, b).statistic)
    en = len(a) * len(b) / (len(a) + len(b))
    ks.append({"name": name, "mode": "asymptotic",
               "auto": "exact" if max(len(a), len(b)) <= MAX_AUTO_N else "asymptotic",
               "a": floats(a), "b": floats(b), "statistic": d,
               "p_value": float(stats.kstwobign.sf(np.sqrt(en) * d))})
out["ks"] = ks

# ---------------------------------------------------------------- chi-square
chi2 = []
for name, ref, cur in [
    ("three_categories", [108, 80, 36], [60, 11, 4]),
    ("two_categories_yates", [30, 70], [45, 55]),
    ("yates_smaller_than_half", [10, 11], [10, 10]),
    ("yates_tiny_p", [900, 100], [100, 900]),
    ("zero_column_dropped", [10, 0, 20, 5], [12, 0, 9, 30]),
    ("unseen_category", [50, 50, 0], [40, 40, 20]),
    ("current_shorter", [50, 30, 20], [45, 55]),
    ("identical", [10, 20, 30], [10, 20, 30]),
    ("proportional", [10, 20, 30], [20, 40, 60]),
    ("many", [int(x) for x in rng.integers(5, 100, 12)], [int(x) for x in rng.integers(5, 100, 12)]),
    ("forty_categories_some_empty",
     [int(x) for x in rng.poisson(3, 41)], [int(x) for x in rng.poisson(3.5, 41)]),
    ("large_counts_tiny_p", [200_000, 150_000, 90_000], [180_000, 170_000, 60_000]),
]:
    k = max(len(ref), len(cur))
    table = np.array([ref + [0] * (k - len(ref)), cur + [0] * (k - len(cur))], float)
    r = stats.chi2_contingency(table[:, table.sum(axis=0) > 0])
    chi2.append({"name": name, "reference": ref, "current": cur,
                 "statistic": float(r.statistic), "p_value": float(r.pvalue), "dof": int(r.dof)})
out["chi2"] = chi2

# ---------------------------------------------------------------- Z test
z_cases = []
for name, x1, n1, x2, n2 in [("stable", 107, 216, 41, 72), ("shift", 300, 1000, 380, 1000),
                             ("tiny_p", 10, 500, 200, 500), ("none_in_reference", 0, 40, 5, 60),
                             ("large", 512_345, 1_000_000, 509_876, 1_000_000)]:
    p = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    z_cases.append({"name": name, "x_ref": x1, "n_ref": n1, "x_cur": x2, "n_cur": n2,
                    "statistic": float(z), "p_value": float(2 * stats.norm.sf(abs(z)))})
out["z"] = z_cases

# ---------------------------------------------------------------- Wasserstein
wass = []
for name, a, b in [
    ("normal_shift", rng.normal(0, 1, 500), rng.normal(0.4, 1.5, 300)),
    ("ties", rng.integers(0, 5, 100).astype(float), rng.integers(0, 7, 80).astype(float)),
    ("identical", np.arange(10.0), np.arange(10.0)),
    ("disjoint", rng.uniform(0, 1, 50), rng.uniform(10, 11, 70)),
    ("one_value_each", np.array([3.0]), np.array([-1.5])),
    ("constant_reference", np.full(20, 2.5), rng.normal(2.5, 0.1, 30)),
    ("large_3000_2000", r6(rng.lognormal(0, 1, 3000)), r6(rng.lognormal(0.1, 1, 2000))),
]:
    w = float(stats.wasserstein_distance(a, b))
    wass.append({"name": name, "a": floats(a), "b": floats(b), "distance": w,
                 "normed": w / max(float(np.std(a)), 0.001)})
out["wasserstein"] = wass

# ---------------------------------------------------------------- frequency distances
dist = []
for name, p, q in [
    ("categories", [108, 80, 36], [60, 11, 4]),
    ("with_zero", [10, 0, 20, 5], [0, 12, 9, 30]),
    ("identical_after_normalising", [1, 2, 3], [2, 4, 6]),
    ("disjoint", [1, 1, 0, 0], [0, 0, 3, 1]),
    ("probabilities", [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]),
    ("current_shorter", [5, 5, 5], [7, 3]),
    ("bins", [int(x) for x in rng.integers(1, 50, 10)], [int(x) for x in rng.integers(1, 50, 10)]),
    ("many_bins_empty_ones", [int(x) for x in rng.poisson(2, 60)], [int(x) for x in rng.poisson(2.4, 60)]),
]:
    k = max(len(p), len(q))
    pp = np.array(list(p) + [0] * (k - len(p)), float)
    qq = np.array(list(q) + [0] * (k - len(q)), float)
    P, Q = pp / pp.sum(), qq / qq.sum()
    eps = 1e-4
    Pe, Qe = np.maximum(P, eps), np.maximum(Q, eps)
    dist.append({
        "name": name, "p": [float(x) for x in p], "q": [float(x) for x in q],
        "jensenshannon_base2": float(distance.jensenshannon(pp, qq, base=2)),
        "jensenshannon_base_e": float(distance.jensenshannon(pp, qq)),
        "hellinger": float(np.sqrt(np.sum((np.sqrt(P) - np.sqrt(Q)) ** 2)) / np.sqrt(2)),
        "linf": float(np.max(np.abs(P - Q))),
        "psi": float(np.sum((Qe - Pe) * np.log(Qe / Pe))),
    })
out["distances"] = dist

# ---------------------------------------------------------------- special functions
special = []
for x in [0.0, 0.5, 1.0, 1.96, 3.0, 5.0, 8.0, 10.0, 20.0, 30.0, 37.5, -1.5, -6.0]:
    special.append({"fn": "normal_sf", "x": x, "value": float(stats.norm.sf(x))})
for x, k in [(0.5, 1), (3.84, 1), (23.12, 2), (10.0, 5), (50.0, 11), (0.01, 3), (200.0, 30),
             (1e-6, 1), (0.7, 0.5), (4.0, 2.5), (900.0, 1000), (1100.0, 1000), (1500.0, 1000),
             (5000.0, 39), (9.0e4, 1.0e5)]:
    special.append({"fn": "chi2_sf", "x": x, "dof": k, "value": float(stats.chi2.sf(x, k))})
for x in [0.05, 0.2, 0.3, 0.5, 0.8, 0.819, 0.821, 1.0, 1.18, 1.36, 2.0, 3.0, 5.0, 8.0]:
    special.append({"fn": "kolmogorov_sf", "x": x, "value": float(stats.kstwobign.sf(x))})
out["special"] = special

# One case per line: small diffs when a case changes, and a file that stays readable.
lines = ["{"]
lines.append(f' "scipy": {json.dumps(out["scipy"])},')
lines.append(f' "numpy": {json.dumps(out["numpy"])},')
groups = [k for k in out if k not in ("scipy", "numpy")]
for gi, key in enumerate(groups):
    lines.append(f' "{key}": [')
    for ci, case in enumerate(out[key]):
        comma = "," if ci + 1 < len(out[key]) else ""
        lines.append("  " + json.dumps(case, separators=(",", ":")) + comma)
    lines.append(" ]" + ("," if gi + 1 < len(groups) else ""))
lines.append("}")
path = pathlib.Path(__file__).with_name("golden.json")
path.write_text("\n".join(lines) + "\n")
json.loads(path.read_text())
print(f"wrote {path} ({path.stat().st_size} bytes, scipy {scipy.__version__})")
