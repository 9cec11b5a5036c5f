"""The component's entry module: exports `metadata` and the plugin's kind
from the class that `plugin.py` registered with `keel.export`."""

import keel
import plugin  # noqa: F401  registers the author's class
from wit_world import exports


class Metadata(exports.Metadata):
    def describe(self):
        return keel._describe()


# Only the world being built has its interface; define just that one.
if hasattr(exports, "Transform"):

    class Transform(exports.Transform):
        pass


if hasattr(exports, "Validator"):

    class Validator(exports.Validator):
        pass


if hasattr(exports, "Monitor"):

    class Monitor(exports.Monitor):
        pass
