"""In CI a missing data folder stops the run (conftest.py's pytest_sessionstart) instead of
skipping every test that needs the data."""

import os
import subprocess
import sys

from conftest import ROOT


def collect(tmp_path, ci: bool) -> subprocess.CompletedProcess:
    """`pytest --collect-only` of this small file in a child, with the test data pointed at an empty folder."""
    environment = {key: value for key, value in os.environ.items() if key != "CI"}
    environment["ZOO_TEST_DATA"] = str(tmp_path / "no-data")
    if ci:
        environment["CI"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", __file__],
        capture_output=True, text=True, env=environment, cwd=ROOT, timeout=300,
    )


def test_ci_without_the_test_data_is_a_usage_error(tmp_path):
    result = collect(tmp_path, ci=True)
    output = result.stdout + result.stderr
    assert result.returncode == 4, (result.returncode, output[-2000:])  # pytest.ExitCode.USAGE_ERROR
    assert f"CI is set but the test data is not under {tmp_path / 'no-data'}" in output, output[-2000:]
    # Without CI the same collection succeeds: the refusal comes from CI and the missing data alone.
    assert collect(tmp_path, ci=False).returncode == 0
