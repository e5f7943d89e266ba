"""The conformance kit (`zoo.testing`): every model of the zoo passes it, and it catches what it should."""

import pytest

import zoo
from zoo import testing
from zoo.testing import ConformanceError

# Whatever plugins are installed: the zoo's own and any a helper or user added.
MODELS = [spec.name for spec in zoo.list_models()]


@pytest.mark.parametrize("name", MODELS)
def test_every_installed_model_passes_the_conformance_kit(name, tmp_path):
    report = testing.check_model(name, tmp_path)
    assert report.passed[:4] == ["spec", "light import", "builds", "forward signature"]
    assert "onnx export" in report.passed
    assert (report.bundle / "model.json").is_file()


def _model_source(module, forward="return self.scale * z", out_shape='("batch", 4)', top=""):
    return f'''
{top}
import zoo

@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="{module}", task="image-generation", builder="{module}:build",
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("z", ("batch", 4)),),
                              outputs=(zoo.TensorSpec("image", {out_shape}),)),),
    ))

def build():
    import torch

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(4))

        def forward(self, z):
            {forward}
    return Model()
'''


def test_a_conforming_throwaway_plugin_passes_with_random_weights(plugin_dir, tmp_path):
    plugin_dir("fine", _model_source("fine"))
    report = testing.check_model("fine", tmp_path)
    assert "onnx export" in report.passed and report.skipped == []
    assert (tmp_path / "fine-random.safetensors").is_file()


def test_a_plugin_that_imports_torch_at_module_level_fails(plugin_dir):
    plugin_dir("eager", _model_source("eager", top="import torch"))
    with pytest.raises(ConformanceError, match="imports .*torch"):
        testing.check_light_import("eager")


def test_a_forward_pass_that_breaks_the_declared_signature_fails(plugin_dir):
    plugin_dir("wrong_shape", _model_source("wrong_shape", out_shape='("batch", 5)'))
    spec = zoo.get_spec("wrong_shape")
    with pytest.raises(ConformanceError, match=r"output 'image' has shape \(1, 4\) at batch 1"):
        testing.check_forward(spec, testing.check_builds("wrong_shape"))
    plugin_dir("two_outputs", _model_source("two_outputs", forward="return z, z"))
    with pytest.raises(ConformanceError, match="returned 2 outputs, the spec declares 1"):
        testing.check_forward(zoo.get_spec("two_outputs"), testing.check_builds("two_outputs"))


def test_weights_that_do_not_fit_fail(plugin_dir, tmp_path):
    from safetensors.numpy import save_file
    import numpy as np

    plugin_dir("fine", _model_source("fine"))
    wrong = tmp_path / "wrong.safetensors"
    save_file({"scale": np.ones(7, np.float32)}, str(wrong), metadata={"zoo.model": "fine"})
    with pytest.raises(ConformanceError, match="does not fit model 'fine'"):
        testing.check_weights_file("fine", wrong)


def test_a_card_without_required_fields_fails():
    with pytest.raises(ConformanceError, match="lacks .*training.command"):
        testing.check_card({"model": "m", "file": "f", "sha256": "0", "parameters": 1, "data": "d", "config": {},
                            "metrics": {}, "training": {"seed": 0, "wall_time_s": 1.0, "machine": "x"}})
