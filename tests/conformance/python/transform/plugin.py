"""The conformance transform in Python (tests/conformance/README.md)."""

import keel


@keel.export
class Conformance(keel.Transform):
    name = "conformance-transform"
    version = "0.1.0"
    description = "The cross-language conformance transform (Python)."
    config_schema = {"type": "object", "properties": {"offset": {"type": "number"}, "probe": {"enum": ["read-file", "loop", "grow"]}, "path": {"type": "string"}}, "additionalProperties": False}
    defaults = {"offset": 1.0, "probe": "", "path": ""}

    def __init__(self, config, reference):
        self.offset = config["offset"]
        self.probe, self.path = config["probe"], config["path"]

    def process(self, batch):
        if self.probe:
            return self.run_probe()
        if "nulls" in batch:
            raise keel.input_error("the input already has a column `nulls`", "nulls")
        nulls = [0] * batch.rows
        off = self.offset
        out = []
        for c in batch.columns:
            for i, v in enumerate(c.values):
                if v is None:
                    nulls[i] += 1
            if c.dtype in ("f64", "f32"):
                f = lambda x: 2.0 * x + off
            elif c.dtype == "s64":
                f = lambda x: 2 * x
            elif c.dtype == "bool":
                f = lambda x: not x
            else:
                f = lambda x: x[::-1]
            out.append(keel.Column(c.name, c.dtype, [None if v is None else f(v) for v in c.values]))
        out.append(keel.Column("nulls", "s64", nulls))
        return keel.Batch(out, batch.rows)

    def run_probe(self):
        """Sandbox probes: read a file, loop forever, or grow memory until refused."""
        if self.probe == "read-file":
            try:
                with open(self.path) as f:
                    return keel.Batch([keel.Column("content", "string", [f.read()])])
            except OSError as e:
                raise keel.input_error(f"cannot read {self.path}: {e}") from None
        if self.probe == "loop":
            n = 0
            while True:
                n += 1
        if self.probe == "grow":
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        raise keel.config_error(f"unknown probe `{self.probe}`", "probe")
