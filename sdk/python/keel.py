"""keel: write Keel plugins in Python (compiled to components by componentize-py).

A plugin is a class deriving from `Transform`, `Validator` or `Monitor`, in a
module named `plugin`, registered with `keel.export(cls)`. Data arrives as a
`Batch` of `Column`s whose `values` are plain Python lists with `None` for a
null, and leaves the same way; the SDK converts to and from the WIT types.
Raise `keel.Error` (or use `config_error`, `input_error`, ...) for an error
the host records and survives; any other exception is a trap.
"""

import json
import math

from wit_world.imports import host as _host
from wit_world.imports import types as _wit

TYPES = ("f64", "f32", "s64", "bool", "string")
_PLACEHOLDER = {"f64": 0.0, "f32": 0.0, "s64": 0, "bool": False, "string": ""}
_TO_WIT = {
    "f64": _wit.ColumnData_F64,
    "f32": _wit.ColumnData_F32,
    "s64": _wit.ColumnData_S64,
    "bool": _wit.ColumnData_Bool,
    "string": _wit.ColumnData_String,
}
_FROM_WIT = {cls: name for name, cls in _TO_WIT.items()}
_CODES = {
    "invalid-config": _wit.ErrorCode.INVALID_CONFIG,
    "invalid-input": _wit.ErrorCode.INVALID_INPUT,
    "invalid-reference": _wit.ErrorCode.INVALID_REFERENCE,
    "invalid-state": _wit.ErrorCode.INVALID_STATE,
    "internal": _wit.ErrorCode.INTERNAL,
}
_SEVERITY = {
    "info": _wit.Severity.INFO,
    "warning": _wit.Severity.WARNING,
    "error": _wit.Severity.ERROR,
}


class Error(Exception):
    """An error returned to the host: `code` is one of the WIT error codes."""

    def __init__(self, code, message, column=None):
        if code not in _CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.column = column


def config_error(message, column=None):
    return Error("invalid-config", message, column)


def input_error(message, column=None):
    return Error("invalid-input", message, column)


def reference_error(message, column=None):
    return Error("invalid-reference", message, column)


def state_error(message):
    return Error("invalid-state", message)


class Column:
    """One named column: `dtype` is one of TYPES, `values` a list (None = null)."""

    __slots__ = ("name", "dtype", "values")

    def __init__(self, name, dtype, values):
        if dtype not in TYPES:
            raise input_error(f"column `{name}`: unknown type {dtype!r}", name)
        self.name = name
        self.dtype = dtype
        self.values = values

    def __len__(self):
        return len(self.values)

    def __repr__(self):
        return f"Column({self.name!r}, {self.dtype!r}, {self.values!r})"

    def is_numeric(self):
        return self.dtype in ("f64", "f32", "s64")

    def null_count(self):
        return sum(1 for v in self.values if v is None)

    def valid(self):
        """The values that are not null (NaN is a value)."""
        return [v for v in self.values if v is not None]


class Batch:
    """Rows stored as named columns, in order."""

    def __init__(self, columns=(), rows=None):
        self._columns = {}
        for c in columns:
            if c.name in self._columns:
                raise input_error(f"column `{c.name}` appears twice", c.name)
            self._columns[c.name] = c
        if rows is None:
            rows = len(next(iter(self._columns.values()))) if self._columns else 0
        self.rows = rows
        for c in self._columns.values():
            if len(c.values) != rows:
                raise input_error(
                    f"column `{c.name}` has {len(c.values)} values, the batch {rows} rows",
                    c.name,
                )

    @classmethod
    def from_dict(cls, data, types=None, rows=None):
        """`{"x": [1.0, None], "s": ["a", "b"]}`; types default to what the values are."""
        types = types or {}
        return cls([Column(n, types.get(n) or _infer(n, v), list(v)) for n, v in data.items()], rows)

    def to_dict(self):
        return {n: c.values for n, c in self._columns.items()}

    @property
    def columns(self):
        return list(self._columns.values())

    def names(self):
        return list(self._columns)

    def __contains__(self, name):
        return name in self._columns

    def __getitem__(self, name):
        """The column `name`; a missing one is an `invalid-input` error naming it."""
        try:
            return self._columns[name]
        except KeyError:
            raise input_error(f"missing column `{name}`", name) from None

    def get(self, name):
        return self._columns.get(name)

    def set(self, column):
        """Adds or replaces a column (same number of rows)."""
        if len(column.values) != self.rows:
            raise input_error(
                f"column `{column.name}` has {len(column.values)} values, the batch {self.rows} rows",
                column.name,
            )
        self._columns[column.name] = column

    def remove(self, name):
        return self._columns.pop(name, None)


def _infer(name, values):
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int):
            return "s64"
        if isinstance(v, float):
            return "f64"
        if isinstance(v, str):
            return "string"
        raise input_error(f"column `{name}`: cannot store a {type(v).__name__}", name)
    return "f64"


class Finding:
    """One problem a validator found; `row` is within the batch validated."""

    def __init__(self, rule, message, column=None, row=None, severity="error"):
        if severity not in _SEVERITY:
            raise ValueError(f"unknown severity {severity!r}")
        self.rule, self.message, self.column, self.row, self.severity = rule, message, column, row, severity


class Metric:
    """One statistic of a monitor report."""

    def __init__(self, name, value, column=None, threshold=None, p_value=None, alert=False):
        self.name, self.value, self.column = name, float(value), column
        self.threshold, self.p_value, self.alert = threshold, p_value, bool(alert)


class Report:
    def __init__(self, rows, alert, metrics, summary):
        self.rows, self.alert, self.metrics, self.summary = rows, bool(alert), metrics, summary


class Plugin:
    """Shared by every kind: what `metadata.describe` says."""

    name = "unnamed"
    version = "0.1.0"
    description = ""
    config_schema = {}
    # {key: default}: the config keys accepted, with their types; None accepts any JSON object.
    defaults = {}


class Transform(Plugin):
    kind = "transform"

    def __init__(self, config, reference):
        """`config` is the parsed JSON object; `reference` a Batch or None."""

    def process(self, batch):
        raise NotImplementedError


class Validator(Plugin):
    kind = "validator"

    def __init__(self, config, reference):
        pass

    def validate(self, batch):
        """Returns a list of `Finding`s; empty when clean."""
        raise NotImplementedError


class Monitor(Plugin):
    kind = "monitor"

    def __init__(self, config, reference):
        pass

    def observe(self, batch):
        raise NotImplementedError

    def report(self):
        raise NotImplementedError

    def snapshot(self):
        """The accumulated state as bytes; JSON of `self.state()` by default."""
        return json.dumps(self.state()).encode()

    def restore(self, data):
        try:
            state = json.loads(bytes(data))
        except ValueError as e:
            raise state_error(f"not a {self.name} snapshot: {e}") from None
        self.set_state(state)

    def state(self):
        raise NotImplementedError

    def set_state(self, state):
        raise NotImplementedError


def config(text, defaults):
    """Parses a JSON config and checks it against `defaults` ({key: default}):
    unknown keys and values of another type are `invalid-config` errors naming
    the key. Returns a dict with every key of `defaults`."""
    try:
        given = json.loads(text) if text.strip() else {}
    except ValueError as e:
        raise config_error(f"config is not JSON: {e}") from None
    if not isinstance(given, dict):
        raise config_error("config must be a JSON object")
    if defaults is None:
        return given
    out = dict(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise config_error(f"unknown config key `{key}` (expected one of: {', '.join(defaults)})", key)
        want = defaults[key]
        if isinstance(want, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is not None and type(value) is not type(want):
            raise config_error(f"config key `{key}`: expected {type(want).__name__}, got {json.dumps(value)}", key)
        out[key] = value
    return out


def log(level, message):
    """Logs through the host (`trace`, `debug`, `info`, `warn`, `error`)."""
    _host.log(getattr(_host.Level, level.upper()), message)


def is_nan(x):
    return isinstance(x, float) and math.isnan(x)


_exported = None


def export(cls):
    """Registers the plugin class of this component."""
    global _exported
    _exported = cls
    return cls


# What the shims (keel_app, transform, validator, monitor) use.


def _plugin():
    if _exported is None:
        import plugin  # noqa: F401  the author's module registers itself

    if _exported is None:
        raise RuntimeError("no plugin exported: call keel.export(YourClass) in plugin.py")
    return _exported


def _config(p, text):
    if p.defaults is None:
        return config(text, None)
    return config(text, p.defaults)


def _describe():
    p = _plugin()
    kind = {"transform": _wit.PluginKind.TRANSFORM, "validator": _wit.PluginKind.VALIDATOR, "monitor": _wit.PluginKind.MONITOR}[p.kind]
    schema = p.config_schema if isinstance(p.config_schema, str) else json.dumps(p.config_schema)
    return _wit.PluginInfo(p.name, p.version, kind, p.description, schema)


def _batch_in(b):
    cols = []
    for c in b.columns:
        dtype = _FROM_WIT[type(c.data)]
        values = c.data.value
        if c.validity is not None:
            values = [v if ok else None for v, ok in zip(values, c.validity)]
        cols.append(Column(c.name, dtype, values))
    return Batch(cols, b.rows)


def _batch_out(b):
    if not isinstance(b, Batch):
        raise Error("internal", f"the plugin returned a {type(b).__name__}, not a keel.Batch")
    cols = []
    for c in b.columns:
        values = c.values
        validity = None
        if None in values:
            validity = [v is not None for v in values]
            z = _PLACEHOLDER[c.dtype]
            values = [z if v is None else v for v in values]
        elif c.dtype in ("f64", "f32"):
            # An int in a float column would not lower as a float.
            values = [float(v) for v in values] if any(type(v) is int for v in values) else values
        cols.append(_wit.Column(c.name, _TO_WIT[c.dtype](values), validity))
    return _wit.Batch(b.rows, cols)


def _error_out(e):
    from componentize_py_types import Err

    return Err(_wit.Error(_CODES[e.code], e.message, e.column))


def _finding_out(f):
    return _wit.Finding(f.rule, f.column, f.row, _SEVERITY[f.severity], f.message)


def _report_out(r):
    metrics = [_wit.Metric(m.column, m.name, m.value, m.threshold, m.p_value, m.alert) for m in r.metrics]
    return _wit.Report(int(r.rows), r.alert, metrics, r.summary)
