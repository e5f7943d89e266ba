"""The conformance kit (`zoo.testing`): every model of the zoo passes it, and it catches what it should."""

import pytest

import zoo
from conftest import DATA
from zoo import testing
from zoo.testing import ConformanceError

# Whatever plugins are installed: the zoo's own and any a helper or user added.
MODELS = [spec.name for spec in zoo.list_models()]


@pytest.mark.parametrize("name", MODELS)
def test_every_installed_model_passes_the_conformance_kit(name, tmp_path):
    report = testing.check_model(name, tmp_path, run=True)
    assert report.passed[:4] == ["spec", "light import", "builds", "forward signature"]
    assert "onnx export" in report.passed and "zoo run" in report.passed
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


@pytest.mark.skipif(not (DATA / "mnist" / "t10k-images-idx3-ubyte.gz").is_file(), reason="MNIST not found")
def test_the_kit_runs_and_evaluates_the_models_task(tmp_path):
    report = testing.check_model("cnn", tmp_path, run=True, data=DATA)
    assert report.passed[-2:] == ["zoo run", "zoo eval"]


def test_a_task_that_cannot_run_the_model_fails_the_kit(plugin_dir, tmp_path):
    # An "image-generation" model whose output is no image: export passes, `zoo run` cannot make a picture.
    plugin_dir("imageless", _model_source("imageless"))
    assert "onnx export" in testing.check_model("imageless", tmp_path).passed
    with pytest.raises(ConformanceError, match="`zoo run imageless --backend torch"):
        testing.check_model("imageless", tmp_path / "again", run=True)


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


# check_model itself must refuse, not only its single checks.


def test_check_model_refuses_a_plugin_that_fails_parity(plugin_dir, tmp_path):
    # Randomness drawn inside forward: PyTorch and ONNX Runtime draw different numbers.
    plugin_dir("drifting", _model_source("drifting", forward="return self.scale * z + torch.randn_like(z)"))
    with pytest.raises(ConformanceError, match="onnx export of model 'drifting'.*disagree.*failed validation"):
        testing.check_model("drifting", tmp_path)


def test_check_model_refuses_a_plugin_that_returns_nan(plugin_dir, tmp_path):
    plugin_dir("nan_out", _model_source("nan_out", forward="return self.scale * z * float('nan')"))
    with pytest.raises(ConformanceError, match="output 'image' has NaN or infinite values"):
        testing.check_model("nan_out", tmp_path)


def test_check_model_refuses_shipped_weights_whose_card_has_another_sha256(plugin_dir, tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    # A plugin package (weights ship inside it), registered as plugin "carded".
    source = _model_source("carded_pkg").replace('name="carded_pkg"', 'name="carded"').replace(
        'outputs=(zoo.TensorSpec("image", ("batch", 4)),)),),',
        'outputs=(zoo.TensorSpec("image", ("batch", 4)),)),),\n'
        '        weights={"default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml")},')
    site = plugin_dir("carded_dist", "", entry_points={"carded": "carded_pkg"})
    package = site / "carded_pkg"
    (package / "weights").mkdir(parents=True)
    (package / "__init__.py").write_text(source)
    save_file({"scale": np.ones(4, np.float32)}, str(package / "weights" / "default.safetensors"),
              metadata={"zoo.model": "carded", "zoo.config": "{}"})
    (package / "weights" / "default.card.toml").write_text(
        f'model = "carded"\nfile = "default.safetensors"\nsha256 = "{"0" * 64}"\nparameters = 4\ndata = "none"\n'
        'config = {}\nmetrics = {}\n[training]\ncommand = "zoo train carded"\nseed = 0\nwall_time_s = 1.0\nmachine = "x"\n')
    with pytest.raises(ConformanceError, match="weights carded:default: checksum mismatch"):
        testing.check_model("carded", tmp_path, export=False)
