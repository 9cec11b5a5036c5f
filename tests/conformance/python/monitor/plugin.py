"""The conformance monitor in Python (tests/conformance/README.md)."""

import math

import keel


@keel.export
class Conformance(keel.Monitor):
    name = "conformance-monitor"
    version = "0.1.0"
    description = "The cross-language conformance monitor (Python)."
    config_schema = {"type": "object", "properties": {"threshold": {"type": "number"}}, "additionalProperties": False}
    defaults = {"threshold": 0.1}

    def __init__(self, config, reference):
        self.threshold = config["threshold"]
        if reference.rows == 0:
            raise keel.reference_error("the reference has no rows")
        self.columns = []
        for c in reference.columns:
            if c.is_numeric():
                s, n, _ = _accumulate(c.values)
                self.columns.append((c.name, s / n if n else 0.0))
        self.rows = 0
        self.acc = [[0.0, 0, 0] for _ in self.columns]

    def observe(self, batch):
        for (name, _), acc in zip(self.columns, self.acc):
            c = batch[name]
            if not c.is_numeric():
                raise keel.input_error(f"column `{name}` is not numeric", name)
            s, n, z = _accumulate(c.values, acc[0])
            acc[0], acc[1], acc[2] = s, acc[1] + n, acc[2] + z
        self.rows += batch.rows

    def report(self):
        metrics, shifted = [], []
        for (name, mean), (s, n, z) in zip(self.columns, self.acc):
            shift = abs(s / n - mean) if n else 0.0
            alert = shift > self.threshold
            if alert:
                shifted.append(name)
            metrics.append(keel.Metric("mean-shift", shift, name, self.threshold, None, alert))
            metrics.append(keel.Metric("null-share", z / self.rows if self.rows else 0.0, name))
        share = len(shifted) / len(self.columns) if self.columns else 0.0
        metrics.append(keel.Metric("share-drifted", share, None, None, None, bool(shifted)))
        summary = f"{len(shifted)} of {len(self.columns)} columns shifted"
        if shifted:
            summary += ": " + ", ".join(shifted)
        return keel.Report(self.rows, bool(shifted), metrics, summary)

    def state(self):
        return {"rows": self.rows, "acc": self.acc}

    def set_state(self, state):
        if not isinstance(state, dict) or len(state.get("acc", ())) != len(self.columns):
            raise keel.state_error("not a conformance-monitor snapshot of this reference")
        self.rows, self.acc = state["rows"], state["acc"]


def _accumulate(values, start=0.0):
    """Sum (continuing from `start`, in row order), count of valid non-NaN values, nulls."""
    s, n, z = start, 0, 0
    for v in values:
        if v is None:
            z += 1
        elif not (isinstance(v, float) and math.isnan(v)):
            s += v
            n += 1
    return s, n, z
