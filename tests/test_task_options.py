"""`zoo run` / `zoo eval` options come from the model's task and the model itself, and any graph input that
`zoo run` would draw at random can be fixed from the command line: a class-conditional generator, registered
by a throwaway plugin, gets its label without any change to the core."""

from types import SimpleNamespace

import numpy as np
from PIL import Image

from conftest import assert_clean_error, zoo_cli
from zoo import testing
from zoo.cli import main

# A class-conditional "generator" of 8x8 images: every pixel's grey level encodes the label (0 black ... 9 white),
# so the picture `zoo run` writes shows which label the graph was fed.
CONDITIONAL = '''
import zoo


def build(**config):
    import torch

    class Painter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.noise_gain = torch.nn.Parameter(torch.zeros(()))

        def forward(self, z, label):
            level = label.to(torch.float32) / 9 * 2 - 1
            return level[:, None, None, None].expand(-1, 1, 8, 8) + self.noise_gain * z[:, :1, None, None]

    return Painter()


@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="painter",
        task="image-generation",
        builder="painter:build",
        graphs=(zoo.GraphSpec(
            inputs=(zoo.TensorSpec("z", ("batch", 4)),
                    zoo.TensorSpec("label", ("batch",), dtype="int64", example="integers", low=0, high=10)),
            outputs=(zoo.TensorSpec("image", ("batch", 1, 8, 8)),),
        ),),
        options=(zoo.Option("label", type="int", input="label", help="the digit class to draw"),),
    ))
'''


def zoo_in_process(capsys, *args):
    """`zoo ARGS` in this process (the errors below stop before torch would load), as `zoo_cli` reports it."""
    returncode = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=returncode, stdout=captured.out, stderr=captured.err)


def grey_levels(path):
    """The grey levels of a grid's cells (the padding between them is black)."""
    pixels = np.asarray(Image.open(path))
    return sorted(set(np.unique(pixels).tolist()) - {0})


def test_a_conditional_generators_label_is_chosen_from_zoo_run(plugin_dir, tmp_path):
    plugin_dir("painter", CONDITIONAL)
    weights = testing.save_random_weights("painter", tmp_path / "painter.safetensors")

    result = zoo_cli("run", "painter", "--help")
    assert result.returncode == 0 and "--label LABEL" in result.stdout and "fills graph input 'label'" in result.stdout
    assert "--n N" in result.stdout and "--input NAME=VALUE" in result.stdout and "--prompt" not in result.stdout

    result = zoo_cli("run", "painter", "--weights", weights, "--label", "3", "--n", "16", "-o", tmp_path / "three.png")
    assert result.returncode == 0, result.stderr
    assert "label 3" in result.stderr  # what was written where; stdout holds a product only
    assert grey_levels(tmp_path / "three.png") == [85]  # 3/9 of the way from black to white, in every cell

    result = zoo_cli("run", "painter", "--weights", weights, "--input", "label=7", "--n", "4", "-o", tmp_path / "seven.png")
    assert result.returncode == 0, result.stderr
    assert grey_levels(tmp_path / "seven.png") == [198]

    # Without a label, each sample's is drawn from the seed like any other random input.
    result = zoo_cli("run", "painter", "--weights", weights, "--n", "16", "-o", tmp_path / "mixed.png")
    assert result.returncode == 0, result.stderr
    assert len(grey_levels(tmp_path / "mixed.png")) > 3


def test_bad_inputs_and_options_of_other_models_are_clean_errors(plugin_dir, tmp_path, capsys):
    plugin_dir("painter", CONDITIONAL)
    weights = testing.save_random_weights("painter", tmp_path / "painter.safetensors")
    out = tmp_path / "x.png"
    assert_clean_error(zoo_in_process(capsys, "run", "painter", "--weights", weights, "--label", "12", "-o", out),
                       "--label 12", "integers from 0 to 9")
    assert_clean_error(zoo_in_process(capsys, "run", "painter", "--weights", weights, "--input", "label=2.5", "-o", out),
                       "takes whole numbers")
    assert_clean_error(zoo_in_process(capsys, "run", "painter", "--weights", weights, "--input", "colour=1", "-o", out),
                       "no graph input 'colour'", "z, label")
    assert_clean_error(zoo_in_process(capsys, "run", "painter", "--weights", weights, "--input", "label", "-o", out),
                       "NAME=VALUE")
    assert_clean_error(zoo_in_process(capsys, "run", "painter", "--weights", weights, "--input", "z=[1,2,3]", "-o", out),
                       "shape (3,) does not fit input 'z'")
    assert not out.exists()
    # Options belong to a task or a model: --label is the painter's, --prompt the text generators'.
    assert_clean_error(zoo_in_process(capsys, "run", "dcgan", "--label", "3"), "dcgan (image-generation) takes no option --label",
                       "zoo run dcgan --help")
    assert_clean_error(zoo_in_process(capsys, "run", "cnn", "--prompt", "hello"), "takes no option --prompt")


def test_a_model_whose_task_no_plugin_registers(plugin_dir, capsys):
    plugin_dir("dancer", CONDITIONAL.replace('task="image-generation"', 'task="dancing"').replace("painter", "dancer"))
    result = zoo_in_process(capsys, "run", "dancer")
    assert_clean_error(result, "model 'dancer' is a dancing model", "no installed plugin registers that task")
    assert "plugin 'dancer' registers model 'dancer' of task 'dancing', which no plugin registers" in result.stderr
    assert "dancer" in zoo_in_process(capsys, "list").stdout  # still listed (and exportable)
