"""`zoo export --target onnx`: a validated, self-describing, atomically written bundle."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import zoo
from conftest import assert_bundle_reproduces_pytorch, assert_clean_error, read_json, zoo_cli
from zoo.export.onnx import read_test_data

# These tests need no data: they export the weights the dcgan plugin ships.


@pytest.fixture(scope="module")
def shipped_weights():
    return zoo.weights.resolve(zoo.get_spec("dcgan")).path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    result = zoo_cli("export", "dcgan", "--target", "onnx", "-o", out, env={"ZOO_CONFIG": ""})
    assert result.returncode == 0, result.stderr
    assert "max abs" in result.stdout + result.stderr
    return out / "dcgan"


def test_bundle_layout_and_manifest(bundle, shipped_weights):
    assert sorted(p.name for p in bundle.iterdir()) == ["model.json", "model.onnx", "test_data_set_0"]
    manifest = read_json(bundle / "model.json")
    assert manifest["model"] == "dcgan" and manifest["opset"] == 18
    assert manifest["weights_sha256"] == zoo.file_sha256(shipped_weights)
    graph = manifest["graphs"]["model"]
    assert graph["sha256"] == zoo.file_sha256(bundle / "model.onnx")
    assert graph["inputs"][0] == {"name": "z", "dtype": "float32", "shape": ["batch", 100], "description": "latent vector, N(0, 1)"}
    assert graph["postprocessing"]["image"]["range"] == [-1.0, 1.0]
    assert graph["parity"]["image"]["batch_sizes"] == [1, 8]
    assert_bundle_reproduces_pytorch(bundle)


def test_onnx_file_is_self_contained_and_carries_metadata(bundle):
    model = onnx.load(str(bundle / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["zoo.model"] == "dcgan" and props["zoo.version"] == zoo.__version__
    assert json.loads(props["zoo.postprocessing"])["image"]["range"] == [-1.0, 1.0]
    assert len(props["zoo.weights_sha256"]) == 64
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_test_vectors_reproduce_in_onnx_runtime(bundle):
    manifest = read_json(bundle / "model.json")["graphs"]["model"]
    inputs, outputs = read_test_data(bundle / "test_data_set_0", manifest)
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    (image,) = session.run(None, inputs)
    np.testing.assert_allclose(image, outputs["image"], atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("batch", [1, 3, 17])
def test_dynamic_batch_axis(bundle, batch):
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    (image,) = session.run(None, {"z": np.random.default_rng(batch).standard_normal((batch, 100)).astype(np.float32)})
    assert image.shape == (batch, 1, 32, 32) and np.all(np.abs(image) <= 1.0 + 1e-6)  # tanh, up to float rounding


def test_python_api_export(shipped_weights, tmp_path):
    bundle = zoo.export("dcgan", target="onnx", out=tmp_path, weights=shipped_weights, log=lambda line: None)
    assert (bundle / "model.onnx").is_file() and bundle == tmp_path / "dcgan"


def test_torchscript_front_end_and_static_batch(shipped_weights, tmp_path):
    result = zoo_cli("export", "dcgan", "--weights", shipped_weights, "-o", tmp_path, "--exporter", "torchscript", "--static-batch", "--opset", "17")
    assert result.returncode == 0, result.stderr
    manifest = read_json(tmp_path / "dcgan" / "model.json")
    assert manifest["opset"] == 17 and manifest["graphs"]["model"]["parity"]["image"]["batch_sizes"] == [1]


RANDOM_IN_FORWARD = '''
import zoo

@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="noisy", task="image-generation", builder="noisy:build",
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("z", ("batch", 8)),),
                              outputs=(zoo.TensorSpec("image", ("batch", 8)),)),),
    ))

def build():
    import torch

    class Noisy(torch.nn.Module):
        """The classic export bug: randomness drawn inside forward instead of taken as an input."""
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(8))
        def forward(self, z):
            return z * self.scale + torch.randn_like(z)
    return Noisy()
'''


def test_export_outside_tolerance_fails_and_writes_nothing(plugin_dir, tmp_path):
    import torch
    from safetensors.torch import save_file

    plugin_dir("noisy", RANDOM_IN_FORWARD)
    weights = tmp_path / "noisy.safetensors"
    save_file({"scale": torch.ones(8)}, str(weights), metadata={"zoo.model": "noisy", "zoo.config": "{}"})
    out = tmp_path / "out"
    result = zoo_cli("export", "noisy", "--weights", weights, "-o", out)
    assert_clean_error(result, "failed validation", "max abs", "the bundle was not written")
    assert list(out.iterdir()) == []


def test_unknown_target_and_precision(tmp_path):
    assert_clean_error(zoo_cli("export", "dcgan", "--target", "onx", "-o", tmp_path), "unknown export target 'onx'", "onnx")
    assert_clean_error(zoo_cli("export", "dcgan", "--precision", "int3", "-o", tmp_path), "precision 'int3'")


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert_clean_error(zoo_cli("export", "dcgan", "-o", blocker / "out"), "cannot write to", "-o")


def test_a_failed_export_keeps_the_previous_bundle(bundle, tmp_path):
    import shutil

    out = tmp_path / "keep"
    shutil.copytree(bundle, out / "dcgan")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # The exporter writes opset 18 whatever it is asked: the check after it fails *inside* the
    # temporary bundle, after the model loaded, so this exercises the atomic swap itself.
    result = zoo_cli("export", "dcgan", "--opset", "9", "-o", out)
    assert_clean_error(result, "torch.onnx wrote graph 'model' at opset 18, not the requested 9")
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in out.iterdir()) == ["dcgan"]


def test_the_export_cache_key_follows_the_plugin_code(tmp_path, monkeypatch):
    # An edited model must not reuse a graph exported from its old code.
    import dataclasses

    from zoo.exporting import _code_fingerprint

    package = tmp_path / "edited_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text("WIDTH = 8\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = dataclasses.replace(zoo.get_spec("dcgan"), package="edited_plugin")
    before = _code_fingerprint(spec)
    assert _code_fingerprint(spec) == before
    (package / "model.py").write_text("WIDTH = 16\n")
    assert _code_fingerprint(spec) != before


SKEWED = '''
import zoo

@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="{name}", task="image-generation", builder="{name}:build",
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("z", ("batch", 8)),),
                              outputs=(zoo.TensorSpec("image", ("batch", 8)),)),),
    ))

def build():
    import torch

    class Skewed(torch.nn.Module):
        """Computes `eager` in PyTorch and `exported` in the graph torch.onnx traces."""
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(8))
        def forward(self, z):
            if torch.onnx.is_in_onnx_export():
                return {exported}
            return {eager}
    return Skewed()
'''


def export_skewed(plugin_dir, tmp_path, name, eager, exported):
    import torch
    from safetensors.torch import save_file

    plugin_dir(name, SKEWED.format(name=name, eager=eager, exported=exported))
    weights = tmp_path / f"{name}.safetensors"
    save_file({"scale": torch.ones(8)}, str(weights), metadata={"zoo.model": name, "zoo.config": "{}"})
    out = tmp_path / "out"
    return zoo_cli("export", name, "--weights", weights, "-o", out, "--exporter", "torchscript"), out


@pytest.mark.parametrize("name, exported, fragment", [
    # outputs near 0, so the tolerance is atol 1e-4 alone: 1.5e-4 is just outside it
    ("just_outside", "z * self.scale * 0 + 1.5e-4", "output 'image': max abs 0.00015"),
    # right at batch 1, wrong only in the eighth row of a batch of 8
    ("wrong_at_8", "z * self.scale + (torch.arange(z.shape[0]) >= 7).unsqueeze(1).float()", "at batch 8"),
    ("wrong_shape", "(z * self.scale)[:, :4]", "shape (1, 4) instead of (1, 8) at batch 1"),
    ("wrong_dtype", "(z * self.scale).double()", "output 'image' is float64 in ONNX Runtime and float32 in PyTorch"),
])
def test_parity_refuses_a_graph_that_differs_from_pytorch(plugin_dir, tmp_path, name, exported, fragment):
    eager = "z * self.scale * 0" if name == "just_outside" else "z * self.scale"
    result, out = export_skewed(plugin_dir, tmp_path, name, eager, exported)
    assert_clean_error(result, fragment, "the bundle was not written")
    assert list(out.iterdir()) == []


def test_parity_accepts_a_difference_just_inside_the_tolerance(plugin_dir, tmp_path):
    result, out = export_skewed(plugin_dir, tmp_path, "just_inside", "z * self.scale * 0", "z * self.scale * 0 + 0.5e-4")
    assert result.returncode == 0, result.stderr
    assert read_json(out / "just_inside" / "model.json")["graphs"]["model"]["parity"]["image"]["max_abs"] == pytest.approx(0.5e-4, rel=1e-3)
