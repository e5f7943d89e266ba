"""The plugin's own tests: the zoo's conformance kit, a short training run, the pt2 target."""

import json
import os
from pathlib import Path

import pytest

import zoo
from zoo import testing

MNIST = Path(os.environ.get("ZOO_TEST_DATA", "../shared/data")) / "mnist"
needs_mnist = pytest.mark.skipif(not (MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
                                 reason=f"MNIST not found under {MNIST.parent}; set ZOO_TEST_DATA to the data root")


def test_conformance_with_random_weights(tmp_path):
    report = testing.check_model("denoise-unet", tmp_path)
    assert "onnx export" in report.passed


def test_the_pt2_target_round_trips(tmp_path):
    import torch

    weights = testing.save_random_weights("denoise-unet", tmp_path / "random.safetensors", width=4)
    bundle = zoo.export("denoise-unet", target="pt2", out=tmp_path / "out", weights=weights, log=lambda line: None)
    manifest = json.loads((bundle / "model.json").read_text())
    assert manifest["target"] == "pt2" and manifest["graphs"]["model"]["file"] == "model.pt2"
    program = torch.export.load(str(bundle / "model.pt2")).module()
    noisy = torch.rand(3, 1, 28, 28)
    expected = zoo.load("denoise-unet", weights)(noisy)
    torch.testing.assert_close(program(noisy), expected, atol=1e-5, rtol=1e-4)


def test_the_pt2_target_reads_its_own_config_section(tmp_path, monkeypatch):
    """[pt2] in zoo.toml and ZOO_PT2_* variables reach the exporter, checked like the zoo's own settings."""
    from zoo.errors import ConfigError

    weights = testing.save_random_weights("denoise-unet", tmp_path / "random.safetensors", width=4)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_PT2_TRACE_BATCH", "3")
    bundle = zoo.export("denoise-unet", target="pt2", out=tmp_path / "out", weights=weights, log=lambda line: None)
    manifest = json.loads((bundle / "model.json").read_text())
    assert manifest["pt2"] == {"trace_batch": 3, "dynamic": True}
    assert manifest["graphs"]["model"]["parity"]["denoised"]["passed"]
    (tmp_path / "zoo.toml").write_text("[pt2]\ndynamic = 'yes'\n")
    with pytest.raises(ConfigError, match="pt2.dynamic must be true or false"):
        zoo.export("denoise-unet", target="pt2", out=tmp_path / "bad", weights=weights)
    (tmp_path / "zoo.toml").write_text("[pt2]\ntrace_batch = 1\n")
    monkeypatch.delenv("ZOO_PT2_TRACE_BATCH")
    with pytest.raises(ConfigError, match="trace_batch must be 2 or more"):
        zoo.export("denoise-unet", target="pt2", out=tmp_path / "bad", weights=weights)
    assert not (tmp_path / "bad" / "denoise-unet").exists()


@needs_mnist
def test_a_few_training_steps_give_weights_that_load_and_export(tmp_path):
    weights = testing.train_briefly("denoise-unet", MNIST, tmp_path / "tiny.safetensors", steps=3, limit=64, width=4)
    report = testing.check_model("denoise-unet", tmp_path, weights=weights)
    assert f"weights {weights}" in report.passed


def test_the_plugin_registers_its_task():
    registry = zoo.registry()
    assert registry.owner("tasks", "denoising") == "denoise-unet"
    assert zoo.get_spec("denoise-unet").task == "denoising"
    assert [option.name for option in registry.tasks["denoising"].options] == ["noise-std", "n"]


@needs_mnist
def test_the_denoising_metric_scores_an_identity_as_its_noisy_input():
    from zoo_denoise_unet.task import denoising_metrics

    class Identity:
        name = "identity"
        graph = zoo.get_spec("denoise-unet").graph()

        def run(self, feeds):
            return {"denoised": feeds["noisy"]}

    metrics = denoising_metrics(Identity(), MNIST.parent, noise_std=0.5, limit=100)
    assert metrics["heldout_psnr"] == metrics["noisy_psnr"] < 12
    assert denoising_metrics(Identity(), MNIST.parent, noise_std=0.1, limit=100)["noisy_psnr"] > metrics["noisy_psnr"]
