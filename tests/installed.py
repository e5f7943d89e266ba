"""Install a plugin project the way a user would, into a throwaway folder.

`pip install --no-deps --no-build-isolation --target SITE PROJECT` builds
the project's wheel with its own pyproject.toml and installs it (code,
package data, dist-info with the `zoo` entry points) into SITE; with SITE on
PYTHONPATH the zoo discovers it exactly as it discovers a package installed
into the environment, without touching the environment.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def pip_install_target(project: Path, site: Path, scratch: Path) -> Path:
    """Copy `project` to `scratch` (the build writes beside the sources) and install it into `site`."""
    source = scratch / Path(project).name
    shutil.copytree(project, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__",
                                                                   "*.ckpt.safetensors", "*.metrics.jsonl"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--target", str(site), str(source)],
        capture_output=True, text=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    if result.returncode != 0 and "No module named 'setuptools'" in result.stderr:
        pytest.skip("setuptools is not installed in this environment")
    assert result.returncode == 0, result.stderr
    return site
