"""`category-drift`: how far the categories of string columns have moved from
the reference: total variation distance of the frequencies, and the share of
values never seen in the reference."""

import keel


@keel.export
class CategoryDrift(keel.Monitor):
    name = "category-drift"
    version = "0.1.0"
    description = "Total variation distance and unseen-category share of string columns against the reference."
    config_schema = {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}},
            "threshold": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "additionalProperties": False,
    }
    defaults = {"columns": [], "threshold": 0.1}

    def __init__(self, config, reference):
        self.threshold = config["threshold"]
        names = config["columns"] or [c.name for c in reference.columns if c.dtype == "string"]
        if not names:
            raise keel.reference_error("the reference has no string columns to watch")
        self.reference = {}
        for name in names:
            col = reference.get(name)
            if col is None:
                raise keel.reference_error(f"the reference has no column `{name}`", name)
            if col.dtype != "string":
                raise keel.reference_error(f"column `{name}` is {col.dtype}, not string", name)
            freq = _counts(col.values)
            total = sum(freq.values())
            if total == 0:
                raise keel.reference_error(f"column `{name}` is all null in the reference", name)
            self.reference[name] = {k: n / total for k, n in freq.items()}
        self.counts = {name: {} for name in self.reference}
        self.rows = 0

    def observe(self, batch):
        for name, counts in self.counts.items():
            col = batch[name]
            if col.dtype != "string":
                raise keel.input_error(f"column `{name}` is {col.dtype}, not string", name)
            for k, n in _counts(col.values).items():
                counts[k] = counts.get(k, 0) + n
        self.rows += batch.rows

    def report(self):
        metrics, drifted = [], []
        for name, ref in self.reference.items():
            counts = self.counts[name]
            total = sum(counts.values())
            if total == 0:
                tvd = unseen = 0.0
            else:
                cur = {k: n / total for k, n in counts.items()}
                keys = sorted(set(ref) | set(cur))
                tvd = 0.5 * sum(abs(ref.get(k, 0.0) - cur.get(k, 0.0)) for k in keys)
                unseen = sum(n for k, n in counts.items() if k not in ref) / total
            alert = tvd > self.threshold
            if alert:
                drifted.append(name)
            metrics.append(keel.Metric("tvd", tvd, name, self.threshold, None, alert))
            metrics.append(keel.Metric("unseen-share", unseen, name))
        summary = f"{len(drifted)} of {len(self.reference)} string columns drifted"
        if drifted:
            summary += ": " + ", ".join(drifted)
        return keel.Report(self.rows, bool(drifted), metrics, summary)

    def state(self):
        return {"rows": self.rows, "counts": self.counts}

    def set_state(self, state):
        if not isinstance(state, dict) or set(state.get("counts", {})) != set(self.reference):
            raise keel.state_error("not a category-drift snapshot for these columns")
        self.rows, self.counts = state["rows"], state["counts"]


def _counts(values):
    out = {}
    for v in values:
        if v is not None:
            out[v] = out.get(v, 0) + 1
    return out
