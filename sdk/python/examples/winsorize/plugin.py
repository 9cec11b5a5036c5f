"""`winsorize`: clips numeric columns to quantiles fitted on the reference
(numpy's default linear interpolation), so outliers cannot dominate a model."""

import math

import keel


def quantile(sorted_values, q):
    """numpy.quantile(values, q) with the default `linear` method."""
    n = len(sorted_values)
    pos = q * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@keel.export
class Winsorize(keel.Transform):
    name = "winsorize"
    version = "0.1.0"
    description = "Clips numeric columns to the reference's [lower, upper] quantiles (nulls and NaN pass through)."
    config_schema = {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "lower": {"type": "number", "minimum": 0, "maximum": 1},
            "upper": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["columns"],
        "additionalProperties": False,
    }
    defaults = {"columns": [], "lower": 0.05, "upper": 0.95}

    def __init__(self, config, reference):
        if not config["columns"]:
            raise keel.config_error("`columns` must name at least one column", "columns")
        if not 0 <= config["lower"] < config["upper"] <= 1:
            raise keel.config_error("need 0 <= lower < upper <= 1", "lower")
        if reference is None:
            raise keel.reference_error("winsorize fits its bounds on reference data; the pipeline has none")
        self.bounds = {}
        for name in config["columns"]:
            col = reference.get(name)
            if col is None:
                raise keel.reference_error(f"the reference has no column `{name}`", name)
            if not col.is_numeric():
                raise keel.reference_error(f"column `{name}` is {col.dtype}, not numeric", name)
            values = sorted(v for v in col.values if v is not None and not keel.is_nan(v))
            if not values:
                raise keel.reference_error(f"column `{name}` has no values in the reference", name)
            self.bounds[name] = (quantile(values, config["lower"]), quantile(values, config["upper"]))
        keel.log("debug", f"winsorize bounds: {self.bounds}")

    def process(self, batch):
        for name, (lo, hi) in self.bounds.items():
            col = batch[name]
            if not col.is_numeric():
                raise keel.input_error(f"column `{name}` is {col.dtype}, not numeric", name)
            clipped = [v if v is None or v != v else min(max(float(v), lo), hi) for v in col.values]
            batch.set(keel.Column(name, "f64", clipped))
        return batch
