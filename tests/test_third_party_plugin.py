"""examples/third_party_plugin: an out-of-tree plugin installed with pip, listed, exported and validated."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import DATA, MNIST, ROOT, assert_bundle_reproduces_pytorch, assert_clean_error, needs_data, zoo_cli
from installed import pip_install_target

EXAMPLE = ROOT / "examples" / "third_party_plugin"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("third_party")
    site = pip_install_target(EXAMPLE, root / "site", root)
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_listed_with_its_distribution_and_both_plugins(site):
    rows = {row["name"]: row for row in json.loads(zoo_cli("list", "--json", env=site).stdout)}
    assert rows["denoise-unet"]["task"] == "denoising"
    assert rows["denoise-unet"]["params"] == 117393  # read from the shipped file's header, without torch
    assert {"onnx", "pt2"} <= set(rows["denoise-unet"]["targets"]) and "pt2" in rows["dcgan"]["targets"]
    plugins = {p["name"]: p for p in json.loads(zoo_cli("plugins", "--json", env=site).stdout)}
    for name, hooks in (("denoise-unet", ["register_models", "register_tasks", "register_trainers"]),
                        ("pt2", ["register_exporters"])):
        assert plugins[name]["distribution"] == "zoo-denoise-unet" and plugins[name]["version"] == "0.1.0"
        assert plugins[name]["hooks"] == hooks and plugins[name]["errors"] == []
    assert "task:denoising" in plugins["denoise-unet"]["registered"]


@needs_data
def test_its_task_runs_and_evaluates_from_the_command_line(site, tmp_path):
    """The plugin's own task ("denoising"), with its own `zoo run` / `zoo eval` option (--noise-std) and metric."""
    result = zoo_cli("run", "denoise-unet", "--help", env=site)
    assert "options of the denoising task" in result.stdout and "--noise-std NOISE_STD" in result.stdout
    assert "--prompt" not in result.stdout and "--style-mix" not in result.stdout

    out = tmp_path / "denoised.png"
    result = zoo_cli("run", "denoise-unet", "--noise-std", "0.3", "--n", "4", "-o", out,
                     env={**site, "ZOO_DATA": str(DATA)})
    assert result.returncode == 0, result.stderr
    assert "4 held-out digits (rows: clean, with N(0, 0.3) noise" in result.stderr and result.stdout == ""
    noisy_psnr, denoised_psnr = map(float, re.search(r"PSNR ([\d.]+) -> ([\d.]+) dB", result.stderr).groups())
    assert denoised_psnr > noisy_psnr + 3
    assert Image.open(out).size == (2 * (4 * 30 + 2), 2 * (3 * 30 + 2))  # 4 columns, 3 rows of 28 px + 2 px padding

    result = zoo_cli("eval", "denoise-unet", "--data", DATA, "--json", env=site)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["metrics"] == report["card"]  # the recipe records the task's own metric, measured the same way
    assert report["metrics"]["heldout_psnr"] > report["metrics"]["noisy_psnr"] + 5
    stronger = json.loads(zoo_cli("eval", "denoise-unet", "--data", DATA, "--noise-std", "0.8", "--json", env=site).stdout)
    assert stronger["metrics"]["noisy_psnr"] < report["metrics"]["noisy_psnr"]

    assert_clean_error(zoo_cli("run", "dcgan", "--noise-std", "0.3", env=site), "dcgan (image-generation) takes no option --noise-std")


def test_its_shipped_weights_export_to_onnx_and_validate(site, tmp_path):
    import onnxruntime as ort

    from zoo.export.onnx import read_test_data

    result = zoo_cli("export", "denoise-unet", "--target", "onnx", "-o", tmp_path, env=site)
    assert result.returncode == 0, result.stderr
    bundle = tmp_path / "denoise-unet"
    manifest = json.loads((bundle / "model.json").read_text())
    graph = manifest["graphs"]["model"]
    assert manifest["model_config"] == {"channels": 1, "width": 16}
    assert_bundle_reproduces_pytorch(bundle)
    inputs, outputs = read_test_data(bundle / graph["test_data"], graph)
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    (denoised,) = session.run(None, inputs)
    np.testing.assert_allclose(denoised, outputs["denoised"], atol=1e-4, rtol=1e-3)


def test_its_exporter_runs_from_the_command_line_with_its_own_flags(site, tmp_path):
    """The docs' exporter example (a torch.export .pt2 target), on a model of the zoo itself;
    `--trace-batch` and `--no-dynamic` are flags the target declares, not the zoo."""
    help_text = zoo_cli("export", "--help", env=site).stdout
    assert "target pt2 (default: [pt2] in zoo.toml)" in help_text and "--trace-batch" in help_text
    result = zoo_cli("export", "dcgan", "--target", "pt2", "--trace-batch", "3", "--no-dynamic", "-o", tmp_path, env=site)
    assert result.returncode == 0, result.stderr
    assert "reloaded .pt2 vs eager PyTorch at batch 3" in result.stdout + result.stderr
    manifest = json.loads((tmp_path / "dcgan" / "model.json").read_text())
    assert manifest["target"] == "pt2" and (tmp_path / "dcgan" / manifest["graphs"]["model"]["file"]).is_file()
    assert manifest["pt2"] == {"trace_batch": 3, "dynamic": False}
    assert manifest["graphs"]["model"]["parity"]["image"]["batch_sizes"] == [3]
    assert_clean_error(zoo_cli("export", "dcgan", "--target", "onnx", "--trace-batch", "3", "-o", tmp_path, env=site),
                       "--trace-batch is a setting of target 'pt2', not of 'onnx'")


def test_its_own_test_suite_passes(site, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, **site, "ZOO_TEST_DATA": str(MNIST.parent), "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
