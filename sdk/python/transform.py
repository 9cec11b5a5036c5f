"""Shim for the `transform` export: the `transformer` resource over the plugin class."""

import keel
from wit_world.exports import transform as _t


class Transformer(_t.Transformer):
    def __init__(self, inner):
        self._inner = inner

    @classmethod
    def create(cls, config, reference):
        try:
            p = keel._plugin()
            ref = None if reference is None else keel._batch_in(reference)
            return cls(p(keel._config(p, config), ref))
        except keel.Error as e:
            raise keel._error_out(e) from None

    def process(self, input):
        try:
            return keel._batch_out(self._inner.process(keel._batch_in(input)))
        except keel.Error as e:
            raise keel._error_out(e) from None
