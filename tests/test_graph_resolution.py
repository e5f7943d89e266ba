"""Graphs that follow the config: resolved once from the weights actually used, and every
command downstream (train, eval, export, run) describes the real shapes."""

import json

import pytest

import zoo
from conftest import DATA, needs_data, zoo_cli
from zoo.cli import main
from zoo.errors import PluginError

SHAKESPEARE = DATA / "tinyshakespeare"

_PLUGIN = '''
import zoo

@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="{name}", task="image-generation", builder="{name}:build", config={{"width": 4}},
        graphs="{name}:graphs",
    ))

def graphs(config):
    return (zoo.GraphSpec(inputs=(zoo.TensorSpec("z", ("batch", config["width"])),),
                          outputs=(zoo.TensorSpec("image", ("batch", config["width"])),),
                          preprocessing={preprocessing}),)

def build(width):
    import torch

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(width))

        def forward(self, z):
            return self.scale * z

    return Model()
'''


def test_resolve_takes_the_config_from_the_weights_file(plugin_dir, tmp_path):
    plugin_dir("follows", _PLUGIN.format(name="follows", preprocessing='{"z": {"distribution": "normal"}}'))
    spec = zoo.get_spec("follows")
    with pytest.raises(PluginError, match="follow its config"):
        spec.graph()
    assert spec.with_config().graph().inputs[0].shape == ("batch", 4)
    weights = zoo.testing.save_random_weights("follows", tmp_path / "w.safetensors", width=7)
    resolved = zoo.resolve("follows", weights)
    assert resolved.config == {"width": 7} and [g.name for g in resolved.graphs] == ["model"]
    assert resolved.spec.graph().inputs[0].shape == ("batch", 7)
    assert zoo.load(resolved).zoo_spec.graph().outputs[0].shape == ("batch", 7)
    assert zoo.resolve(resolved) is resolved
    report = zoo.testing.check_model("follows", tmp_path / "kit", weights=weights)
    assert "onnx export" in report.passed
    assert json.loads((report.bundle / "model.json").read_text())["graphs"]["model"]["inputs"][0]["shape"] == ["batch", 7]


@pytest.mark.parametrize("name, preprocessing, problem", [
    ("stringly", '"x / 127.5 - 1"', "preprocessing must be a dict"),
    ("flat", '{"z": "standard normal"}', "preprocessing['z'] must be a dict"),
])
def test_processing_of_the_wrong_form_is_rejected(plugin_dir, name, preprocessing, problem):
    plugin_dir(name, _PLUGIN.format(name=name, preprocessing=preprocessing))
    with pytest.raises(PluginError) as error:
        zoo.get_spec(name).with_config()
    assert problem in str(error.value)
    with pytest.raises(zoo.testing.ConformanceError, match="preprocessing"):
        zoo.testing.check_spec(name)


def test_a_failing_graph_function_is_one_line_naming_it(plugin_dir):
    plugin_dir("broken", _PLUGIN.format(name="broken", preprocessing="{}").replace('config["width"]', 'config["wdith"]'))
    with pytest.raises(PluginError, match=r"graphs function 'broken:graphs' of model 'broken' failed .*KeyError"):
        zoo.get_spec("broken").with_config()


def _round_trip(capsys, tmp_path, model, train_args, run_args):
    """train -> eval -> export -> run --backend onnx on the trained file; return the bundle's manifest."""
    weights = tmp_path / "w.safetensors"
    assert main(["train", model, "--data", str(DATA), "--out", str(weights), *train_args]) == 0
    assert main(["eval", model, "--weights", str(weights), "--data", str(DATA), "--backend", "onnx"]) == 0
    assert main(["export", model, "--weights", str(weights), "-o", str(tmp_path / "out")]) == 0
    assert main(["run", model, "--backend", "onnx", "--weights", str(weights), *run_args]) == 0
    capsys.readouterr()
    return json.loads((tmp_path / "out" / model / "model.json").read_text())


@needs_data
def test_dcgan_with_a_smaller_latent_round_trips(capsys, tmp_path):
    manifest = _round_trip(capsys, tmp_path, "dcgan", ["--set", "latent_dim=16", "--set", "base_channels=8",
                                                       "--max-steps", "20", "--limit", "64", "--batch-size", "16"],
                           ["--n", "4", "-o", str(tmp_path / "run.png")])
    assert manifest["model_config"]["latent_dim"] == 16
    assert manifest["graphs"]["model"]["inputs"][0]["shape"] == ["batch", 16]
    assert (tmp_path / "run.png").is_file()


@needs_data
def test_cnn_with_another_width_round_trips(capsys, tmp_path):
    from PIL import Image

    digits = tmp_path / "digits"
    digits.mkdir()
    for index in range(3):
        Image.new("L", (28, 28), 40 * index).save(digits / f"{index}.png")
    manifest = _round_trip(capsys, tmp_path, "cnn", ["--set", "channels=[4,8]", "--set", "hidden=24",
                                                     "--max-steps", "2", "--limit", "32", "--batch-size", "16"],
                           ["--input-dir", str(digits), "-o", str(tmp_path / "predictions")])
    assert len((tmp_path / "predictions" / "predictions.jsonl").read_text().splitlines()) == 3
    assert manifest["model_config"]["hidden"] == 24
    features = manifest["graphs"]["features"]["outputs"][0]
    assert features["name"] == "features" and features["shape"] == ["batch", 24]


@pytest.mark.skipif(not (SHAKESPEARE / "input.txt").is_file(), reason="Tiny Shakespeare not found")
def test_a_two_layer_gpt2_round_trips(capsys, tmp_path):
    settings = {"n_layer": 2, "n_head": 2, "n_embd": 32, "vocab_size": 300, "block_size": 32, "block": 32}
    flags = [part for key, value in settings.items() for part in ("--set", f"{key}={value}")]
    manifest = _round_trip(capsys, tmp_path, "gpt2", [*flags, "--max-steps", "2", "--limit", "3000",
                                                      "--batch-size", "2"], ["--max-new-tokens", "8"])
    inputs = manifest["graphs"]["decoder"]["inputs"]
    assert manifest["model_config"]["n_layer"] == 2
    assert [t["name"] for t in inputs] == ["input_ids"] + [f"past_key_values.{i}.{kind}" for i in range(2)
                                                           for kind in ("key", "value")]
    assert inputs[1]["shape"] == ["batch", 2, "past_sequence_length", 16]
    assert manifest["graphs"]["decoder"]["outputs"][0]["shape"] == ["batch", "sequence_length", 300]


def test_info_shows_the_graphs_of_the_variants_weights():
    result = zoo_cli("info", "gpt2", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["graphs"][0]["outputs"][0]["shape"] == ["batch", "sequence_length", info["config"]["vocab_size"]]
