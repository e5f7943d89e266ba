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


def pytest_sessionstart(session):
    """In CI a missing data folder is an error, not a reason to skip a third of the suite."""
    if os.environ.get("CI") and not (MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        raise pytest.UsageError(f"CI is set but the test data is not under {DATA}; see ../shared/data/README.md")


needs_data = pytest.mark.skipif(
    not (MNIST / "t10k-images-idx3-ubyte.gz").is_file(), reason=f"MNIST not found under {DATA}"
)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """No test reads the developer's config or export cache, or leaves a registry behind."""
    monkeypatch.setenv("ZOO_CONFIG", "")  # empty: no user config file
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
    """A user error: exit status 2, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
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
        env={"ZOO_CONFIG": ""},
    )
    assert result.returncode == 0, result.stderr
    return out


def read_json(path):
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="session")
def default_bundles(tmp_path_factory):
    """What `zoo export NAME` writes by default, for every installed model: exported once per run, also when
    pytest-xdist runs the tests in several processes (they share the folder above their own temporary roots;
    the first one exports under a lock, the others wait and read). Tests copy a bundle before changing it."""
    from filelock import FileLock

    from zoo.exporting import export_model

    run_root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's root lies inside the run's own folder
        run_root = run_root.parent
    out = run_root / "default-bundles"
    names = [spec.name for spec in zoo.api.list_models()]
    with FileLock(f"{out}.lock"):
        if not (out / "complete").is_file():
            out.mkdir(exist_ok=True)
            for name in names:
                export_model(name, "onnx", out, log=lambda line: None, force=True)
            (out / "complete").touch()
    return {name: out / name for name in names}


def assert_bundle_reproduces_pytorch(bundle):
    """Recompute parity independently of the exporter: every graph of an fp32 bundle, run in ONNX
    Runtime on its test inputs, gives the PyTorch outputs stored beside them within the recorded
    tolerance (a bundle's manifest is only written after parity passed, so its own verdict proves nothing)."""
    import numpy as np
    import onnxruntime as ort

    from zoo.export.onnx import read_test_data

    bundle = Path(bundle)
    manifest = read_json(bundle / "model.json")
    for name, graph in manifest["graphs"].items():
        inputs, expected = read_test_data(bundle / graph["test_data"], graph)
        session = ort.InferenceSession(str(bundle / graph["file"]), providers=["CPUExecutionProvider"])
        produced = dict(zip([t["name"] for t in graph["outputs"]], session.run([t["name"] for t in graph["outputs"]], inputs)))
        for output, reference in expected.items():
            parity = graph["parity"][output]
            assert produced[output].shape == reference.shape and produced[output].dtype == reference.dtype, (name, output)
            np.testing.assert_allclose(produced[output], reference, atol=parity["atol"], rtol=parity["rtol"], err_msg=f"{name}/{output}")
