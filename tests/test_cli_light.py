"""Listing commands answer fast: they must never import torch or onnxruntime."""

import subprocess
import sys

import pytest

PROBE = """
import sys
from zoo.cli import main
try:
    code = main({argv!r})
except SystemExit as exc:  # --help exits through argparse
    code = exc.code
heavy = sorted(m for m in ("torch", "onnxruntime", "onnx") if m in sys.modules)
print("CODE=" + str(code) + " HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize(
    "argv",
    [["list"], ["list", "--json"], ["list", "*gan*", "--task", "image-generation"], ["info", "dcgan"], ["plugins"], ["--help"], ["export", "--help"], ["new-plugin", "--help"]],
)
def test_listing_commands_do_not_import_heavy_libraries(argv):
    result = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # The command itself succeeded (a command that failed early would import nothing either).
    assert result.stdout.rstrip().endswith("CODE=0 HEAVY="), result.stdout[-500:] + result.stderr[-500:]
