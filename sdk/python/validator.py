"""Shim for the `validator` export: the `checker` resource over the plugin class."""

import keel
from wit_world.exports import validator as _v


class Checker(_v.Checker):
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

    def validate(self, input):
        try:
            return [keel._finding_out(f) for f in self._inner.validate(keel._batch_in(input))]
        except keel.Error as e:
            raise keel._error_out(e) from None
