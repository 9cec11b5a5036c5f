"""Golden values for keel-algos' performance metrics (`keel_algos::performance`):
realized metrics from scikit-learn, CBPE estimates from NannyML.

Run: make a venv with requirements-performance.txt (pinned), then
`python algos/tests/golden/performance.py`. It writes performance.json beside this
file; `cargo test -p keel-algos --test all performance::` compares every case with the Rust
code. CI needs neither Python nor NannyML: inputs are generated here from fixed seeds and
stored in the JSON with the outputs, inputs rounded to 6 decimals before any library
sees them.

What each expected value is:
- binary: sklearn.metrics on the labelled rows (unlabelled rows are `null` in `labels`
  and dropped first): accuracy_score, precision_score, recall_score, f1_score,
  recall_score(pos_label=0) as specificity (default zero_division, warnings silenced),
  roc_auc_score (null where sklearn raises: one class present), average_precision_score,
  log_loss(labels=[0, 1]), brier_score_loss(pos_label=1), confusion_matrix(labels=[0, 1]).
  A case without labelled rows expects every metric null.
- multiclass: accuracy; precision/recall/f1 with average="macro" and "weighted",
  labels=range(k); roc_auc_score(multi_class="ovr", average="macro", labels=range(k))
  (null where sklearn raises); log_loss(labels=range(k)); confusion_matrix.
- regression: mean_absolute_error, root_mean_squared_error,
  mean_absolute_percentage_error, r2_score (null for NaN below 2 rows), mean of
  prediction - truth, max_error.
- cbpe_binary / cbpe_multiclass: nannyml.CBPE fitted on a generated reference and run on a
  generated analysis set (chunks of `chunk_size` rows, SizeBasedChunker(incomplete="keep")):
  per analysis chunk and metric the estimated value, sampling error, lower and upper
  threshold, confidence band and alert; and whether NannyML calibrates (per class for
  multiclass).
"""
import json
import os
import pathlib
import warnings

# NannyML sends usage statistics unless told not to.
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"

import nannyml  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sklearn  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

warnings.simplefilter("ignore")
rng = np.random.default_rng(20261207)


def r6(a):
    return np.round(np.asarray(a, float), 6)


def num(x):
    """A float for JSON, None for NaN/None."""
    if x is None:
        return None
    x = float(x)
    return None if np.isnan(x) else x


def safe(f):
    try:
        return num(f())
    except ValueError:
        return None


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# ---------------------------------------------------------------- binary
def binary_case(name, labels, scores, predictions=None):
    scores = r6(scores)
    if predictions is None:
        predictions = scores >= 0.5
    predictions = np.asarray(predictions, bool)
    mask = np.array([y is not None for y in labels])
    y = np.array([int(v) for v in labels if v is not None], int)
    p, s = predictions[mask].astype(int), scores[mask]
    exp = {}
    if len(y) == 0:
        exp = {m: None for m in ["accuracy", "precision", "recall", "f1", "specificity",
                                 "roc_auc", "average_precision", "log_loss", "brier"]}
        cm = [[0, 0], [0, 0]]
    else:
        exp["accuracy"] = num(skm.accuracy_score(y, p))
        exp["precision"] = num(skm.precision_score(y, p, labels=[0, 1]))
        exp["recall"] = num(skm.recall_score(y, p, labels=[0, 1]))
        exp["f1"] = num(skm.f1_score(y, p, labels=[0, 1]))
        exp["specificity"] = num(skm.recall_score(y, p, pos_label=0, labels=[0, 1]))
        exp["roc_auc"] = safe(lambda: skm.roc_auc_score(y, s))
        exp["average_precision"] = safe(lambda: skm.average_precision_score(y, s))
        exp["log_loss"] = safe(lambda: skm.log_loss(y, s, labels=[0, 1]))
        exp["brier"] = safe(lambda: skm.brier_score_loss(y, s, pos_label=1))
        cm = skm.confusion_matrix(y, p, labels=[0, 1]).tolist()
    return {
        "name": name,
        "labels": [None if v is None else bool(v) for v in labels],
        "predictions": [bool(v) for v in predictions],
        "scores": [float(v) for v in scores],
        "expected": exp,
        "confusion": cm,
    }


def labels_of(p):
    return [int(v) for v in rng.binomial(1, p)]


binary = []
s = rng.uniform(0, 1, 500)
binary.append(binary_case("random_500", labels_of(s), s))
s = np.round(rng.uniform(0, 1, 400), 1)
binary.append(binary_case("ties_one_decimal", labels_of(s), s))
s = rng.uniform(0, 1, 50)
binary.append(binary_case("all_negative", [0] * 50, s))
binary.append(binary_case("all_positive", [1] * 50, s))
s = rng.uniform(0, 1, 300)
lab = labels_of(s)
binary.append(binary_case("with_nulls", [None if rng.uniform() < 0.3 else v for v in lab], s))
binary.append(binary_case("no_labels", [None] * 20, s[:20]))
s = np.concatenate([rng.uniform(0, 1, 100), [0.0, 1.0, 0.0, 1.0]])
binary.append(binary_case("extreme_scores", labels_of(s[:100]) + [1, 0, 0, 1], s))
s = rng.uniform(0, 0.4, 120)
binary.append(binary_case("no_positive_predictions", labels_of(s), s, np.zeros(120, bool)))
s = sigmoid(rng.normal(0, 2, 5000))
binary.append(binary_case("large_5000", labels_of(s), s))

# ---------------------------------------------------------------- multiclass
MC_METRICS = ["accuracy", "precision", "recall", "f1", "precision_weighted",
              "recall_weighted", "f1_weighted", "roc_auc", "log_loss"]


def multiclass_case(name, labels, probs, predictions=None):
    probs = r6(probs)
    k = probs.shape[1]
    if predictions is None:
        predictions = probs.argmax(axis=1)
    mask = np.array([y is not None for y in labels])
    y = np.array([v for v in labels if v is not None], int)
    p, pr = predictions[mask], probs[mask]
    ks = list(range(k))
    exp = {}
    if len(y) == 0:
        exp = {m: None for m in MC_METRICS}
        cm = [[0] * k for _ in ks]
    else:
        exp["accuracy"] = num(skm.accuracy_score(y, p))
        for avg, suffix in [("macro", ""), ("weighted", "_weighted")]:
            exp["precision" + suffix] = num(skm.precision_score(y, p, average=avg, labels=ks))
            exp["recall" + suffix] = num(skm.recall_score(y, p, average=avg, labels=ks))
            exp["f1" + suffix] = num(skm.f1_score(y, p, average=avg, labels=ks))
        exp["roc_auc"] = safe(lambda: skm.roc_auc_score(y, pr, multi_class="ovr", average="macro", labels=ks))
        exp["log_loss"] = safe(lambda: skm.log_loss(y, pr, labels=ks))
        cm = skm.confusion_matrix(y, p, labels=ks).tolist()
    return {
        "name": name,
        "labels": labels,
        "predictions": [int(v) for v in predictions],
        "probabilities": [[float(v) for v in probs[:, c]] for c in ks],
        "expected": exp,
        "confusion": cm,
    }


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def draw(probs):
    return [int(rng.choice(len(row), p=row / row.sum())) for row in probs]


multiclass = []
pr = softmax(rng.normal(0, 1.5, (600, 3)))
multiclass.append(multiclass_case("random_3class", draw(pr), pr))
rows = np.array([[0.2, 0.3, 0.5], [0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.25, 0.5, 0.25]])
pr = rows[rng.integers(0, 4, 300)]
multiclass.append(multiclass_case("ties", draw(pr), pr))
pr = softmax(rng.normal(0, 1, (200, 3)))
lab = [int(v) for v in rng.integers(0, 2, 200)]
multiclass.append(multiclass_case("class_2_absent", lab, pr))
pr = softmax(rng.normal(0, 1.5, (400, 4)))
lab = draw(pr)
multiclass.append(multiclass_case("with_nulls_4class", [None if rng.uniform() < 0.25 else v for v in lab], pr))

# ---------------------------------------------------------------- regression
REG_METRICS = ["mae", "rmse", "mape", "r2", "mean_error", "max_error"]


def regression_case(name, labels, predictions):
    predictions = r6(predictions)
    labels = [None if v is None else float(r6(v)) for v in labels]
    mask = np.array([v is not None for v in labels])
    y = np.array([v for v in labels if v is not None], float)
    p = predictions[mask]
    if len(y) == 0:
        exp = {m: None for m in REG_METRICS}
    else:
        exp = {
            "mae": num(skm.mean_absolute_error(y, p)),
            "rmse": num(skm.root_mean_squared_error(y, p)),
            "mape": num(skm.mean_absolute_percentage_error(y, p)),
            "r2": num(skm.r2_score(y, p)),
            "mean_error": num(np.mean(p - y)),
            "max_error": num(skm.max_error(y, p)),
        }
    return {"name": name, "labels": labels, "predictions": [float(v) for v in predictions], "expected": exp}


regression = []
y = rng.normal(10, 3, 500)
regression.append(regression_case("random_500", list(y), y + rng.normal(0.5, 1, 500)))
y = rng.normal(0, 1, 200)
regression.append(regression_case("with_nulls", [None if rng.uniform() < 0.4 else v for v in y],
                                  y + rng.normal(0, 0.5, 200)))
regression.append(regression_case("constant_truth_exact", [2.0] * 10, np.full(10, 2.0)))
regression.append(regression_case("constant_truth_off", [2.0] * 10, np.full(10, 2.5)))
regression.append(regression_case("zeros_in_truth", [0.0, 1.0, 0.0, -2.0, 3.0], np.array([0.1, 1.0, -0.2, -1.0, 3.5])))
regression.append(regression_case("one_labelled", [1.0, None, None], np.array([1.5, 2.0, 3.0])))


# ---------------------------------------------------------------- CBPE
CBPE_METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]


def cbpe_chunks(result):
    data = result.filter(period="analysis").data
    chunks = []
    for _, row in data.iterrows():
        c = {"start": int(row[("chunk", "start_index")]), "end": int(row[("chunk", "end_index")])}
        for m in CBPE_METRICS:
            c[m] = {
                "value": num(row[(m, "value")]),
                "sampling_error": num(row[(m, "sampling_error")]),
                "lower_threshold": num(row[(m, "lower_threshold")]),
                "upper_threshold": num(row[(m, "upper_threshold")]),
                "lower_confidence": num(row[(m, "lower_confidence_boundary")]),
                "upper_confidence": num(row[(m, "upper_confidence_boundary")]),
                "alert": bool(row[(m, "alert")]),
            }
        chunks.append(c)
    return chunks


def chunker(size):
    return nannyml.chunk.SizeBasedChunker(chunk_size=size, incomplete="keep")


def binary_set(n, shift):
    z = rng.normal(shift, 1.5, n)
    y = rng.binomial(1, sigmoid(z))
    s = r6(sigmoid(z / 2))  # under-confident scores: calibration helps
    return pd.DataFrame({"y": y, "s": s, "p": (s >= 0.5).astype(int)})


CHUNK = 1000
ref, ana = binary_set(4000, 0.0), binary_set(5500, 0.8)
est = nannyml.CBPE(y_pred_proba="s", y_pred="p", y_true="y", problem_type="classification_binary",
                   metrics=CBPE_METRICS, chunker=chunker(CHUNK))
est.fit(ref)
cbpe_binary = {
    "chunk_size": CHUNK,
    "reference": {"labels": ref.y.astype(bool).tolist(), "predictions": ref.p.astype(bool).tolist(),
                  "scores": ref.s.tolist()},
    "analysis": {"predictions": ana.p.astype(bool).tolist(), "scores": ana.s.tolist()},
    "needs_calibration": bool(est.needs_calibration),
    "chunks": cbpe_chunks(est.estimate(ana.drop(columns=["y"]))),
}


def multiclass_set(n, shift):
    z = rng.normal(0, 1.5, (n, 3)) + np.array([shift, 0, -shift])
    y = np.array(draw(softmax(z)))
    pr = r6(softmax(z / 2))
    pr = pr / pr.sum(axis=1, keepdims=True)
    pr = r6(pr)
    classes = np.array(["a", "b", "c"])
    return pd.DataFrame({"y": classes[y], "pa": pr[:, 0], "pb": pr[:, 1], "pc": pr[:, 2],
                         "p": classes[pr.argmax(axis=1)]})


ref, ana = multiclass_set(4000, 0.0), multiclass_set(5500, 0.6)
proba = {"a": "pa", "b": "pb", "c": "pc"}
est = nannyml.CBPE(y_pred_proba=proba, y_pred="p", y_true="y", problem_type="classification_multiclass",
                   metrics=CBPE_METRICS, chunker=chunker(CHUNK))
est.fit(ref)
code = {"a": 0, "b": 1, "c": 2}
cbpe_multiclass = {
    "chunk_size": CHUNK,
    "reference": {"labels": [code[v] for v in ref.y], "predictions": [code[v] for v in ref.p],
                  "probabilities": [ref[c].tolist() for c in ["pa", "pb", "pc"]]},
    "analysis": {"predictions": [code[v] for v in ana.p],
                 "probabilities": [ana[c].tolist() for c in ["pa", "pb", "pc"]]},
    "needs_calibration": [type(est._calibrators[c]).__name__ != "NoopCalibrator" for c in ["a", "b", "c"]],
    "chunks": cbpe_chunks(est.estimate(ana.drop(columns=["y"]))),
}

out = {
    "versions": {"scikit-learn": sklearn.__version__, "nannyml": nannyml.__version__,
                 "numpy": np.__version__, "pandas": pd.__version__},
    "binary": binary,
    "multiclass": multiclass,
    "regression": regression,
    "cbpe_binary": cbpe_binary,
    "cbpe_multiclass": cbpe_multiclass,
}
# One case per line: small diffs when a case changes.
lines = ["{", f' "versions": {json.dumps(out["versions"])},']
keys = [k for k in out if k != "versions"]
for gi, key in enumerate(keys):
    comma = "," if gi + 1 < len(keys) else ""
    if isinstance(out[key], list):
        lines.append(f' "{key}": [')
        for ci, case in enumerate(out[key]):
            lines.append("  " + json.dumps(case, separators=(",", ":")) + ("," if ci + 1 < len(out[key]) else ""))
        lines.append(" ]" + comma)
    else:
        lines.append(f' "{key}": ' + json.dumps(out[key], separators=(",", ":")) + comma)
lines.append("}")
path = pathlib.Path(__file__).with_name("performance.json")
path.write_text("\n".join(lines) + "\n")
json.loads(path.read_text())
print(f"wrote {path} ({path.stat().st_size} bytes)")
