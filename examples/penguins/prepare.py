#!/usr/bin/env python3
"""Builds reference.csv and current.csv for the Keel penguins example.

Data: the Palmer Penguins table (344 adult Adelie, Chinstrap and Gentoo
penguins, Palmer Archipelago, Antarctica, 2007-2009) as shipped *inside* the
PyPI package `palmerpenguins` (file palmerpenguins/data/penguins.csv). Nothing
is downloaded at run time. Data licence: CC0. See README.md for citations.

The split is deterministic (no randomness):

  reference.csv  every observation from the 2007 and 2008 field seasons
                 (all islands, file order kept)                    -> 224 rows
  current.csv    2009 observations under a simulated shift in
                 sampling effort: all 60 Biscoe nests, but only
                 every 4th Dream / Torgersen record (file order,
                 counted separately per island, starting with the
                 first)                                            -> 75 rows

Biscoe is where all the Gentoo penguins in the data live, and Gentoo are much
heavier, with longer flippers and shallower bills, so over-sampling Biscoe
shifts `island`, `body_mass_g`, `flipper_length_mm` and `bill_depth_mm`
(covariate shift) and the share of Gentoo (prior shift) while every single
row stays a real, unmodified observation.

Missing values are written as empty cells. The four measurement columns are
written as floats (e.g. `181.0`) so readers that infer types see f64; `year`
stays an integer.

Run:  python prepare.py          (writes the two CSVs next to this file and
                                  prints the drift that the split produces)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from palmerpenguins import load_penguins

HERE = Path(__file__).resolve().parent

COLUMNS = [
    "species",
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
    "year",
]
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]

REFERENCE_YEARS = (2007, 2008)
CURRENT_YEAR = 2009
FULLY_SAMPLED_ISLANDS = ("Biscoe",)
THINNING_STEP = 4  # keep every 4th record of the other islands


def load() -> pd.DataFrame:
    df = load_penguins()
    df = df[COLUMNS].copy()
    assert len(df) == 344, f"unexpected row count {len(df)}"
    for c in NUMERIC:
        df[c] = df[c].astype("float64")
    df["year"] = df["year"].astype("int64")
    return df


def split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    reference = df[df["year"].isin(REFERENCE_YEARS)]

    season = df[df["year"] == CURRENT_YEAR]
    # Position of each record among the 2009 records of its island (file order).
    rank = season.groupby("island", sort=False).cumcount()
    keep = season["island"].isin(FULLY_SAMPLED_ISLANDS) | (rank % THINNING_STEP == 0)
    current = season[keep]
    return reference.reset_index(drop=True), current.reset_index(drop=True)


def write(df: pd.DataFrame, path: Path) -> None:
    # na_rep="" -> missing values are empty cells; float64 columns print as
    # e.g. 39.1 / 181.0 (shortest round-trip repr); year stays an int.
    df.to_csv(path, index=False, na_rep="", lineterminator="\n")


# --- drift report (same definitions as documented in README.md) -------------

def psi(ref: pd.Series, cur: pd.Series, bins: int = 10, eps: float = 1e-4) -> float:
    """Population stability index with `bins` quantile bins of the reference.

    Nulls are ignored on both sides. Cut points are the reference's
    1/bins ... (bins-1)/bins quantiles (linear interpolation), de-duplicated;
    the outer bins are open. A value equal to a cut point falls in the lower
    bin (bins are right-closed). Empty bins get proportion `eps`.
    PSI = sum((cur% - ref%) * ln(cur% / ref%)).
    """
    r = ref.dropna().to_numpy(dtype=float)
    c = cur.dropna().to_numpy(dtype=float)
    cuts = np.unique(np.quantile(r, np.arange(1, bins) / bins))
    r_idx = np.searchsorted(cuts, r, side="left")
    c_idx = np.searchsorted(cuts, c, side="left")
    n = len(cuts) + 1
    rp = np.maximum(np.bincount(r_idx, minlength=n) / len(r), eps)
    cp = np.maximum(np.bincount(c_idx, minlength=n) / len(c), eps)
    return float(np.sum((cp - rp) * np.log(cp / rp)))


def linf(ref: pd.Series, cur: pd.Series) -> float:
    """Max absolute difference of category frequencies (nulls ignored)."""
    rf = ref.dropna().value_counts(normalize=True)
    cf = cur.dropna().value_counts(normalize=True)
    cats = rf.index.union(cf.index)
    return float(max(abs(rf.get(k, 0.0) - cf.get(k, 0.0)) for k in cats))


def counts(s: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in s.value_counts().sort_index().items()}


def report(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    print(f"reference: {len(reference)} rows (years {sorted(int(y) for y in reference.year.unique())})")
    print(f"current:   {len(current)} rows (years {sorted(int(y) for y in current.year.unique())})")
    print()
    print("island counts   reference:", counts(reference.island))
    print("                current:  ", counts(current.island))
    print("species counts  reference:", counts(reference.species))
    print("                current:  ", counts(current.species))
    print()
    print("missing cells   reference:", {c: int(v) for c, v in reference.isna().sum().items() if v})
    print("                current:  ", {c: int(v) for c, v in current.isna().sum().items() if v})
    print()
    print(f"{'column':<20}{'ref mean':>10}{'cur mean':>10}{'PSI(10q)':>10}")
    for c in NUMERIC:
        p = psi(reference[c], current[c])
        flag = "  DRIFT (>0.2)" if p > 0.2 else ""
        print(f"{c:<20}{reference[c].mean():>10.2f}{current[c].mean():>10.2f}{p:>10.4f}{flag}")
    print()
    print(f"{'column':<20}{'L-inf':>10}")
    for c in CATEGORICAL:
        d = linf(reference[c], current[c])
        flag = "  DRIFT (>0.1)" if d > 0.1 else ""
        print(f"{c:<20}{d:>10.4f}{flag}")


def main() -> None:
    df = load()
    reference, current = split(df)
    assert set(current.island) == set(reference.island), "islands must be shared"
    write(reference, HERE / "reference.csv")
    write(current, HERE / "current.csv")
    report(reference, current)
    assert not math.isnan(psi(reference["body_mass_g"], current["body_mass_g"]))


if __name__ == "__main__":
    main()
