"""`zoo run` and `zoo eval` give the same results on PyTorch and ONNX Runtime."""

import subprocess
import sys

import numpy as np
from PIL import Image

import zoo
from conftest import MNIST, assert_clean_error, needs_data, zoo_cli
from zoo.runtime import open_backend
from zoo.tasks.image_generation import sample_images


def test_run_writes_a_png_grid_on_both_backends(tiny_weights, tmp_path):
    pictures = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / f"{backend}.png"
        result = zoo_cli("run", "dcgan", "--weights", tiny_weights, "--backend", backend, "--n", "16", "--seed", "3", "-o", out)
        assert result.returncode == 0, result.stderr
        pictures[backend] = np.asarray(Image.open(out))
    assert pictures["torch"].shape == pictures["onnx"].shape == (2 * (4 * 34 + 2),) * 2  # 4x4 tiles of 32px + 2px padding, scaled 2x
    # Same seed, same latents: the two grids differ by rounding at most.
    assert np.abs(pictures["torch"].astype(int) - pictures["onnx"].astype(int)).max() <= 1


def test_backends_agree_on_samples(tiny_weights):
    spec = zoo.get_spec("dcgan")
    torch_images = sample_images(open_backend(spec, "torch", weights=str(tiny_weights)), 8, seed=5)
    onnx_images = sample_images(open_backend(spec, "onnx", weights=str(tiny_weights)), 8, seed=5)
    np.testing.assert_allclose(torch_images, onnx_images, atol=1e-4)
    assert not np.allclose(torch_images, sample_images(open_backend(spec, "onnx", weights=str(tiny_weights)), 8, seed=6))


def test_onnx_run_uses_the_cache_and_never_imports_torch(tiny_weights, tmp_path):
    first = zoo_cli("run", "dcgan", "--weights", tiny_weights, "--backend", "onnx", "--n", "1", "-o", tmp_path / "a.png")
    assert first.returncode == 0, first.stderr
    probe = (
        "import sys; from zoo.cli import main; "
        f"code = main(['run', 'dcgan', '--weights', {str(tiny_weights)!r}, '--backend', 'onnx', '--n', '1', '-o', {str(tmp_path / 'b.png')!r}]); "
        "print('TORCH', 'torch' in sys.modules, code)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "TORCH False 0" in result.stdout, result.stdout + result.stderr
    assert "exporting" not in result.stderr


@needs_data
def test_eval_reports_the_metrics_on_both_backends(tiny_weights):
    values = {}
    for backend in ("torch", "onnx"):
        result = zoo_cli("eval", "dcgan", "--weights", tiny_weights, "--backend", backend, "--data", MNIST, "--json")
        assert result.returncode == 0, result.stderr
        import json

        values[backend] = json.loads(result.stdout)["metrics"]
    assert abs(values["torch"]["heldout_fd_pix8"] - values["onnx"]["heldout_fd_pix8"]) < 1e-3
    assert values["torch"]["floor_fd_pix8"] < values["torch"]["heldout_fd_pix8"]


def test_unknown_backend(tiny_weights):
    assert_clean_error(zoo_cli("run", "dcgan", "--backend", "tpu"), "unknown backend 'tpu'")


def test_bench_prints_a_table(tiny_weights):
    result = zoo_cli("bench", "dcgan", "--weights", tiny_weights, "--batch", "1,4", "--runs", "3", "--warmup", "1")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [(r[0], r[1]) for r in rows] == [("1", "torch"), ("1", "onnx"), ("4", "torch"), ("4", "onnx")]
    assert all(r[-1].endswith("x") for r in rows)
    assert_clean_error(zoo_cli("bench", "dcgan", "--batch", "one"), "--batch")
