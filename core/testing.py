"""Helpers for testing zoo plugins with pytest.

`make_distribution` writes an importable module plus a `.dist-info` folder
with a `zoo` entry point into a directory; put that directory on sys.path
(or PYTHONPATH for a subprocess) and the zoo discovers the plugin exactly as
it discovers an installed package.
"""

from __future__ import annotations

import textwrap
from pathlib import Path


def make_distribution(directory: Path, name: str, source: str, version: str = "0.1.0",
                      entry_points: dict[str, str] | None = None) -> Path:
    """Write module `name` (from `source`) and a distribution that registers it as plugin `name`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    info = directory / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    points = entry_points or {name: name}
    (info / "entry_points.txt").write_text("[zoo]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()))
    return directory
