import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import zoo.api
from zoo.testing import make_distribution

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ZOO_TEST_DATA", ROOT.parent / "shared" / "data"))
MNIST = DATA / "mnist"

needs_data = pytest.mark.skipif(
    not (MNIST / "t10k-images-idx3-ubyte.gz").is_file(), reason=f"MNIST not found under {DATA}"
)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """No test reads the developer's config or export cache, or leaves a registry behind."""
    monkeypatch.setenv("ZOO_CONFIG", str(tmp_path / "no-user-config.toml"))
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in list(os.environ):
        if name.startswith("ZOO_") and name not in ("ZOO_CONFIG", "ZOO_CACHE_DIR", "ZOO_TEST_DATA"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    zoo.api._REGISTRY = None
    yield
    zoo.api._REGISTRY = None


def zoo_cli(*args, env=None, cwd=None):
    """Run the `zoo` command in a subprocess, as a user would."""
    environment = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "zoo", *map(str, args)], capture_output=True, text=True, env=environment, cwd=cwd
    )


def assert_clean_error(result, *fragments):
    """A user error: non-zero exit, one line on stderr naming the problem, no traceback."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("zoo: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path (and PYTHONPATH) where tests write throwaway plugin distributions."""
    import importlib

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))

    def add(name, source, **kwargs):
        make_distribution(site, name, source, **kwargs)
        importlib.invalidate_caches()
        zoo.api._REGISTRY = None
        return site

    return add


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A narrow DCGAN trained for 3 steps on 64 images: real weights and card, made in seconds."""
    if not (MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not found under {DATA}")
    out = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    result = zoo_cli(
        "train", "dcgan", "--data", MNIST, "--max-steps", "3", "--limit", "64", "--batch-size", "16",
        "--set", "base_channels=8", "--out", out,
        env={"ZOO_CONFIG": str(out.parent / "none.toml")},
    )
    assert result.returncode == 0, result.stderr
    return out


def read_json(path):
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="session")
def default_bundles(tmp_path_factory):
    """What `zoo export NAME` writes by default, for every installed model (exported once per session)."""
    from zoo.exporting import export_model

    out = tmp_path_factory.mktemp("default-bundles")
    return {spec.name: export_model(spec.name, "onnx", out, log=lambda line: None) for spec in zoo.api.list_models()}
