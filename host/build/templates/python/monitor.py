"""`{{name}}`: the share of null cells per reference column, alerting above `max_null_share`."""

import keel


@keel.export
class Plugin(keel.Monitor):
    name = "{{name}}"
    version = "0.1.0"
    description = "Share of nulls per column."
    config_schema = {
        "type": "object",
        "properties": {"max_null_share": {"type": "number"}},
        "additionalProperties": False,
    }
    defaults = {"max_null_share": 0.1}

    def __init__(self, config, reference):
        self.max = config["max_null_share"]
        self.columns = reference.names()
        self.rows = 0
        self.nulls = [0] * len(self.columns)

    def observe(self, batch):
        for i, name in enumerate(self.columns):
            self.nulls[i] += batch[name].null_count()
        self.rows += batch.rows

    def report(self):
        metrics = []
        for name, n in zip(self.columns, self.nulls):
            share = n / self.rows if self.rows else 0.0
            metrics.append(keel.Metric("null-share", share, name, self.max, None, share > self.max))
        alerts = sum(m.alert for m in metrics)
        return keel.Report(self.rows, alerts > 0, metrics, f"{alerts} of {len(metrics)} columns above {self.max} nulls")

    def state(self):
        return {"rows": self.rows, "nulls": self.nulls}

    def set_state(self, state):
        if len(state.get("nulls", ())) != len(self.columns):
            raise keel.state_error("not a snapshot of this monitor")
        self.rows, self.nulls = state["rows"], state["nulls"]
