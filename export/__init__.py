"""The built-in export targets, registered through the exporter hook like any third-party target.

`zoo.export` is both this package and the API call `zoo.export(name, target, out)`:
once any target module is imported, Python binds the package to the attribute
`zoo.export`, which would hide a plain function of that name. Making the
package callable keeps `zoo.export(...)` working whatever was imported first.
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, name, target="onnx", out="out", **options):
        """Export model `name` to `out/<bundle>` with `target`; see `zoo.exporting.export_model`."""
        from pathlib import Path

        from zoo.exporting import export_model

        return export_model(name, target=target, out=Path(out), **options)


sys.modules[__name__].__class__ = _CallablePackage
