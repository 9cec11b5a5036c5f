"""`{{name}}`: one finding per null cell of the configured columns (all columns when none are named)."""

import keel


@keel.export
class Plugin(keel.Validator):
    name = "{{name}}"
    version = "0.1.0"
    description = "Flags null cells."
    config_schema = {
        "type": "object",
        "properties": {"columns": {"type": "array", "items": {"type": "string"}}},
        "additionalProperties": False,
    }
    defaults = {"columns": []}

    def __init__(self, config, reference):
        self.columns = config["columns"]

    def validate(self, batch):
        out = []
        for col in batch.columns:
            if self.columns and col.name not in self.columns:
                continue
            for row, v in enumerate(col.values):
                if v is None:
                    out.append(keel.Finding("not-null", f"`{col.name}` is null", col.name, row))
        return out
