"""`{{name}}`: multiplies a numeric column by a factor (nulls stay null)."""

import keel


@keel.export
class Plugin(keel.Transform):
    name = "{{name}}"
    version = "0.1.0"
    description = "Multiplies a numeric column by a factor."
    config_schema = {
        "type": "object",
        "properties": {"column": {"type": "string"}, "factor": {"type": "number"}},
        "required": ["column"],
        "additionalProperties": False,
    }
    defaults = {"column": "", "factor": 2.0}

    def __init__(self, config, reference):
        if not config["column"]:
            raise keel.config_error("`column` is required", "column")
        self.column, self.factor = config["column"], config["factor"]

    def process(self, batch):
        col = batch[self.column]
        if not col.is_numeric():
            raise keel.input_error(f"column `{col.name}` is {col.dtype}, not numeric", col.name)
        values = [None if v is None else v * self.factor for v in col.values]
        batch.set(keel.Column(col.name, "f64", values))
        return batch
