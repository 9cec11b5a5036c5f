"""Shim for the `monitor` export: the `watcher` resource over the plugin class."""

import keel
from wit_world.exports import monitor as _m


class Watcher(_m.Watcher):
    def __init__(self, inner):
        self._inner = inner

    @classmethod
    def create(cls, config, reference):
        try:
            p = keel._plugin()
            return cls(p(keel._config(p, config), keel._batch_in(reference)))
        except keel.Error as e:
            raise keel._error_out(e) from None

    def observe(self, input):
        try:
            self._inner.observe(keel._batch_in(input))
        except keel.Error as e:
            raise keel._error_out(e) from None

    def report(self):
        try:
            return keel._report_out(self._inner.report())
        except keel.Error as e:
            raise keel._error_out(e) from None

    def snapshot(self):
        try:
            return bytes(self._inner.snapshot())
        except keel.Error as e:
            raise keel._error_out(e) from None

    def restore(self, state):
        try:
            self._inner.restore(bytes(state))
        except keel.Error as e:
            raise keel._error_out(e) from None
