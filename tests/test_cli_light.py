"""Listing commands answer fast: they must never import torch or onnxruntime."""

import subprocess
import sys

import pytest

PROBE = """
import sys
from zoo.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "onnxruntime", "onnx") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize(
    "argv",
    [["list"], ["list", "--json"], ["list", "*gan*", "--task", "image-generation"], ["info", "dcgan"], ["plugins"], ["--help"], ["export", "--help"], ["new-plugin", "--help"]],
)
def test_listing_commands_do_not_import_heavy_libraries(argv):
    result = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stdout or result.stdout.rstrip().endswith("HEAVY="), result.stdout[-500:]
