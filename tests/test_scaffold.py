"""`zoo new-plugin`: from nothing to an exported ONNX bundle, as a plugin author would go."""

import json
import os
import subprocess
import sys

import pytest

from conftest import MNIST, assert_bundle_reproduces_pytorch, assert_clean_error, needs_data, zoo_cli
from installed import pip_install_target
from zoo.scaffold import plugin_files


def test_the_package_has_every_file_a_plugin_needs():
    files = plugin_files("my-model")
    assert sorted(files) == [".gitignore", "README.md", "pyproject.toml", "tests/test_zoo_my_model.py",
                             "zoo_my_model/__init__.py", "zoo_my_model/model.py", "zoo_my_model/train.py"]
    assert '[project.entry-points.zoo]\nmy-model = "zoo_my_model"' in files["pyproject.toml"]
    assert "class MyModelConfig" in files["zoo_my_model/model.py"] and "def build(**config)" in files["zoo_my_model/model.py"]
    assert "import torch" not in files["zoo_my_model/__init__.py"]
    for path, text in files.items():
        if path.endswith(".py"):
            compile(text, path, "exec")


def test_bad_names_and_occupied_folders_are_one_line_errors(tmp_path):
    assert_clean_error(zoo_cli("new-plugin", "My Model"), "plugin name 'My Model'", "lower-case")
    assert_clean_error(zoo_cli("new-plugin", "dcgan"), "model 'dcgan' is already registered by plugin 'dcgan'")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    assert_clean_error(zoo_cli("new-plugin", "fresh", "--dir", occupied), "not empty", "--dir")
    assert (occupied / "keep.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """`zoo new-plugin my-model`, then installed with pip into a throwaway site folder."""
    root = tmp_path_factory.mktemp("scaffold")
    result = zoo_cli("new-plugin", "my-model", "--dir", root / "zoo-my-model")
    assert result.returncode == 0, result.stderr
    assert "pip install -e" in result.stdout
    site = pip_install_target(root / "zoo-my-model", root / "site", root / "build")
    return root, {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_zoo_list_shows_the_new_model_at_once(installed_plugin):
    _, env = installed_plugin
    rows = {row["name"]: row for row in json.loads(zoo_cli("list", "--json", env=env).stdout)}
    assert rows["my-model"]["task"] == "image-reconstruction" and rows["my-model"]["plugin"] == "my-model"
    plugins = {p["name"]: p for p in json.loads(zoo_cli("plugins", "--json", env=env).stdout)}
    assert plugins["my-model"]["distribution"] == "zoo-my-model" and plugins["my-model"]["errors"] == []
    assert plugins["my-model"]["hooks"] == ["register_models", "register_trainers"]


def test_its_own_tests_pass_out_of_the_box(installed_plugin):
    root, env = installed_plugin
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "zoo-my-model")],
        capture_output=True, text=True, cwd=root,
        env={**os.environ, **env, "ZOO_TEST_DATA": str(MNIST.parent), "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout[-3000:]
    expected = "2 passed" if MNIST.is_dir() else "1 passed, 1 skipped"
    assert expected in result.stdout, result.stdout[-3000:]


@needs_data
def test_train_then_export_without_flags(installed_plugin, tmp_path):
    """The README's path: train into the package's weights folder, then `zoo export NAME`."""
    root, env = installed_plugin
    weights = root / "site" / "zoo_my_model" / "weights" / "default.safetensors"
    trained = zoo_cli("train", "my-model", "--data", MNIST, "--max-steps", "3", "--limit", "64", "--batch-size", "16",
                      "--set", "width=4", "--out", weights, env=env)
    assert trained.returncode == 0, trained.stderr
    info = json.loads(zoo_cli("info", "my-model", "--json", env=env).stdout)
    card = info["variants"]["default"]["card"]
    assert card["training"]["command"].startswith("zoo train my-model") and "heldout_mse" in card["metrics"]
    exported = zoo_cli("export", "my-model", "--target", "onnx", "-o", tmp_path, env=env)
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads((tmp_path / "my-model" / "model.json").read_text())
    assert manifest["weights_sha256"] == card["sha256"]
    assert_bundle_reproduces_pytorch(tmp_path / "my-model")

    # The built-in task of the scaffold's autoencoder runs and scores it on both backends, with no code of its own.
    for backend in ("torch", "onnx"):
        ran = zoo_cli("run", "my-model", "--backend", backend, "--n", "4", "-o", tmp_path / f"{backend}.png", "--json",
                      env={**env, "ZOO_CACHE_DIR": str(tmp_path / "cache"), "ZOO_DATA": str(MNIST.parent)})
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout)["images"] == 4 and (tmp_path / f"{backend}.png").is_file()
    scored = zoo_cli("eval", "my-model", "--data", MNIST.parent, "--json", env=env)
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["metrics"]["heldout_mse"] == pytest.approx(card["metrics"]["heldout_mse"], abs=2e-5)  # both rounded to 5 places
