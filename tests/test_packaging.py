"""The wheel installs `zoo`, `zoo.export` and `zoo.plugins`, never a bare `core`."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    build_dir = tmp_path_factory.mktemp("build")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "TMPDIR": str(build_dir), "HOME": str(build_dir)},
    )
    if result.returncode != 0 and "No module named 'setuptools'" in result.stderr:
        pytest.skip("setuptools is not installed in this environment")
    assert result.returncode == 0, result.stderr
    (path,) = out.glob("aigc_zoo-*.whl")
    return path


def test_wheel_has_only_namespaced_packages(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"zoo"}
    for expected in ("zoo/zoo.toml", "zoo/cli.py", "zoo/export/onnx.py", "zoo/plugins/dcgan/model.py",
                     "zoo/plugins/dcgan/weights/default.safetensors", "zoo/plugins/dcgan/weights/default.card.toml"):
        assert expected in names, expected
    assert not any(name.endswith(".ckpt.safetensors") for name in names)


def test_wheel_ships_every_plugin_with_its_weights(wheel):
    # `packages` in pyproject.toml is a hand-kept list: a plugin missing from it would vanish from installs.
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "ls-files", "plugins", "core/tasks", "export"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    for path in tracked:
        packaged = "zoo/" + path.removeprefix("core/")
        if path.endswith((".py", ".safetensors", ".card.toml", ".tokenizer.json")):
            assert packaged in names, f"{path} is not in the wheel"


def test_wheel_declares_the_entry_points_and_extras(wheel):
    archive = zipfile.ZipFile(wheel)
    info = next(n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt"))
    text = archive.read(info).decode()
    assert "[console_scripts]\nzoo = zoo.cli:main" in text
    assert "[zoo]" in text and "dcgan = zoo.plugins.dcgan" in text and "onnx = zoo.export.onnx" in text
    metadata = archive.read(info.replace("entry_points.txt", "METADATA")).decode()
    for extra in ("cpu", "gpu", "trt", "test"):
        assert f"Provides-Extra: {extra}" in metadata
    assert "Requires-Python: >=3.10" in metadata


def test_packaged_config_lists_every_key_and_the_repository_file_only_the_data_root():
    from zoo.config import read_toml

    assert Path(ROOT / "core" / "zoo.toml").read_text().startswith("# aigc-zoo default configuration")
    packaged = read_toml(ROOT / "core" / "zoo.toml")
    assert not packaged["data"]["root"].startswith(".")  # the packaged default must not depend on the cwd
    assert read_toml(ROOT / "zoo.toml") == {"data": {"root": "../shared/data"}}
