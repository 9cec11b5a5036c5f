"""Golden values for keel-algos' direct loss estimation (`keel_algos::performance::dle`):
NannyML's DLE on a generated regression set whose error grows with a feature.

Run with the venv of requirements-performance.txt (NannyML brings LightGBM):
`python algos/tests/golden/dle.py`. It writes dle.json beside this file, inputs (rounded
to 4 decimals before NannyML sees them) and outputs together; `cargo test -p keel-algos
--features dle --test all performance::dle` compares.

The data: three features; the truth is 20 + 3·x1 + 2·x2 + noise whose size grows with
|x3|; the model predicts 20 + 3·x1 + 2·x2 (the conditional mean), so its error depends
on x3 only. In the analysis set |x3| grows from chunk to chunk, the inputs drift and the
model's losses with them: DLE must see that from x3 alone.

Keel's loss models are forust-ml trees, NannyML's LightGBM ones: different trees, so the
test allows a tolerance (stated there) instead of 1e-6. The realized metrics of each
chunk are stored too, so the test also checks how close both estimators come to truth.
"""
import json
import os
import pathlib
import warnings

os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"

import nannyml  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

warnings.simplefilter("ignore")
rng = np.random.default_rng(20261208)
CHUNK = 500


def regression_set(n, spread):
    x1, x2 = rng.normal(0, 1, n), rng.normal(0, 1, n)
    x3 = rng.normal(0, 1, n) * spread
    pred = 20 + 3 * x1 + 2 * x2
    truth = pred + rng.normal(0, 1, n) * (0.5 + 1.5 * np.abs(x3))
    r4 = lambda a: np.round(a, 4)  # noqa: E731
    return pd.DataFrame({"x1": r4(x1), "x2": r4(x2), "x3": r4(x3), "pred": r4(pred), "y": r4(truth)})


ref = regression_set(2000, 1.0)
ana = pd.concat([regression_set(CHUNK, s) for s in (1.0, 1.0, 1.6, 2.2)], ignore_index=True)
est = nannyml.DLE(feature_column_names=["x1", "x2", "x3"], y_pred="pred", y_true="y",
                  metrics=["mae", "rmse", "mape"],
                  chunker=nannyml.chunk.SizeBasedChunker(chunk_size=CHUNK, incomplete="keep"))
est.fit(ref)
res = est.estimate(ana.drop(columns=["y"])).filter(period="analysis").to_df()
chunks = []
for i in range(len(res)):
    part = ana.iloc[i * CHUNK:(i + 1) * CHUNK]
    c = {"start": int(res[("chunk", "start_index")].iloc[i]), "end": int(res[("chunk", "end_index")].iloc[i])}
    for m in ["mae", "rmse", "mape"]:
        c[m] = {
            "value": float(res[(m, "value")].iloc[i]),
            "sampling_error": float(res[(m, "sampling_error")].iloc[i]),
            "lower_threshold": float(res[(m, "lower_threshold")].iloc[i]),
            "upper_threshold": float(res[(m, "upper_threshold")].iloc[i]),
        }
    c["realized"] = {
        "mae": float(skm.mean_absolute_error(part.y, part.pred)),
        "rmse": float(np.sqrt(skm.mean_squared_error(part.y, part.pred))),
        "mape": float(skm.mean_absolute_percentage_error(part.y, part.pred)),
    }
    chunks.append(c)

cols = lambda d: {k: d[k].tolist() for k in ["x1", "x2", "x3", "pred", "y"]}  # noqa: E731
out = {
    "versions": {"nannyml": nannyml.__version__},
    "chunk_size": CHUNK,
    "reference": cols(ref),
    "analysis": cols(ana),
    "chunks": chunks,
}
path = pathlib.Path(__file__).with_name("dle.json")
path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
print(f"wrote {path}")
