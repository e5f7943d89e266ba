"""The StyleGAN plugin: architecture, shipped weights, one training step,
export parity, the truncation trick and style mixing."""

import numpy as np
import pytest
import torch

import zoo
from conftest import MNIST, assert_bundle_reproduces_pytorch, assert_clean_error, needs_data, read_json, zoo_cli
from zoo.config import read_toml
from zoo.weights import file_sha256

TINY = ["--set", "channels_4=8", "--set", "channels_8=8", "--set", "channels_16=8", "--set", "channels_32=4"]


@pytest.fixture(scope="module")
def tiny_stylegan(tmp_path_factory):
    """A narrow StyleGAN trained for 2 steps on 16 images, through `zoo train` (with one R1 step)."""
    if not (MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not found under {MNIST}")
    out = tmp_path_factory.mktemp("stylegan") / "tiny.safetensors"
    result = zoo_cli("train", "stylegan", "--data", MNIST, "--max-steps", "2", "--limit", "16", "--batch-size", "8",
                     *TINY, "--set", "r1_interval=2", "--out", out, env={"ZOO_CONFIG": ""})
    assert result.returncode == 0, result.stderr
    return out


def _fixed_noise(model, batch, seed=0):
    return [n.expand(batch, -1, -1, -1) for n in model.make_noise(1, torch.Generator().manual_seed(seed))]


def test_build_has_the_stylegan2_parts():
    model = zoo.build("stylegan")
    assert model.num_ws == 8 and model.w_avg.shape == (64,)
    assert len(model.synthesis.layers) == 7 and model.synthesis.const.shape == (128, 4, 4)
    z = torch.randn(3, 64)
    with torch.no_grad():
        image = model(z, torch.ones(3), *model.make_noise(3))
    assert image.shape == (3, 1, 32, 32) and image.abs().max() <= 1.0


def test_modulated_conv_equals_convolution_with_the_demodulated_per_sample_weight():
    from zoo.plugins.stylegan.model import ModulatedConv2d

    torch.manual_seed(0)
    layer = ModulatedConv2d(5, 6, 3, w_dim=4)
    x, w = torch.randn(2, 5, 8, 8), torch.randn(2, 4)
    with torch.no_grad():
        styles = layer.affine(w)
        expected = []
        for i in range(2):
            weight = layer.weight * layer.weight_gain * styles[i][None, :, None, None]
            weight = weight * torch.rsqrt(weight.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
            expected.append(torch.nn.functional.conv2d(x[i : i + 1], weight, padding=1))
        torch.testing.assert_close(layer(x, w), torch.cat(expected), atol=1e-5, rtol=1e-4)


@needs_data
def test_shipped_weights_load_and_match_the_card():
    spec = zoo.resolve("stylegan").spec
    resolved = zoo.resolve_weights("stylegan")
    assert resolved.card["sha256"] == file_sha256(resolved.path)
    assert resolved.path.stat().st_size < 5_000_000
    model = zoo.load("stylegan")
    assert model.w_avg.abs().sum() > 0, "the tracked w average must be trained, not the zero it starts at"
    metrics = resolved.card["metrics"]
    assert metrics, "the card records held-out metrics"
    assert spec.graphs[0].name == "generator"


@needs_data
def test_one_training_step_writes_weights_and_card(tiny_stylegan):
    card = read_toml(tiny_stylegan.with_name("tiny.card.toml"))
    assert card["sha256"] == file_sha256(tiny_stylegan)
    assert card["training"]["steps"] == 2 and card["config"]["channels_4"] == 8
    untrained = zoo.build("stylegan", channels_4=8, channels_8=8, channels_16=8, channels_32=4)
    trained = zoo.load("stylegan", weights=tiny_stylegan)
    assert not torch.equal(untrained.w_avg, trained.w_avg)


def test_training_mixes_styles_at_one_crossover():
    from zoo.plugins.stylegan.train import StyleGANRecipe

    recipe = StyleGANRecipe.__new__(StyleGANRecipe)
    recipe.generator = zoo.build("stylegan")
    recipe.settings = {"mixing_prob": 1.0}
    ws = recipe.mixed_ws(16, "cpu")
    assert ws.shape == (16, 8, 64)
    for sample in ws:
        changes = [i for i in range(1, 8) if not torch.equal(sample[i], sample[i - 1])]
        assert len(changes) == 1, "a mixed sample switches from the first w to the second exactly once"
    recipe.settings = {"mixing_prob": 0.0}
    ws = recipe.mixed_ws(4, "cpu")
    assert torch.equal(ws, ws[:, :1].expand_as(ws))


@needs_data
def test_truncation_zero_gives_the_average_digit_and_one_keeps_variety():
    model = zoo.load("stylegan")
    z = torch.randn(6, 64, generator=torch.Generator().manual_seed(1))
    noise = _fixed_noise(model, 6)
    with torch.no_grad():
        average = model(z, torch.zeros(6), *noise)
        free = model(z, torch.ones(6), *noise)
        w_avg_image = model.synthesize(model.broadcast(model.w_avg[None].expand(6, -1)), noise)
        half = model(z, torch.full((6,), 0.5), *noise)
    torch.testing.assert_close(average, w_avg_image, atol=1e-5, rtol=1e-5)
    assert (average - average[:1]).abs().max() < 1e-5, "psi = 0: every z gives the same image"
    spread = lambda images: (images - images.mean(dim=0)).abs().mean()  # noqa: E731
    assert spread(free) > spread(half) > spread(average)


@needs_data
def test_export_is_validated_at_batch_1_and_8_with_dynamic_batch(tiny_stylegan, tmp_path):
    import onnxruntime as ort

    result = zoo_cli("export", "stylegan", "--weights", tiny_stylegan, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    manifest = read_json(tmp_path / "out" / "stylegan" / "model.json")
    assert list(manifest["graphs"]) == ["generator", "mapping", "synthesis"]
    for graph in manifest["graphs"].values():
        for parity in graph["parity"].values():
            assert parity["batch_sizes"] == [1, 8]
    assert_bundle_reproduces_pytorch(tmp_path / "out" / "stylegan")
    generator = manifest["graphs"]["generator"]
    session = ort.InferenceSession(str(tmp_path / "out" / "stylegan" / generator["file"]))
    names = [i.name for i in session.get_inputs()]
    assert names[:2] == ["z", "truncation"] and len(names) == 9
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.standard_normal([5 if isinstance(d, str) else d for d in i.shape]).astype(np.float32)
             for i in session.get_inputs()}
    feeds["truncation"] = np.zeros(5, np.float32)
    feeds.update({name: np.repeat(feeds[name][:1], 5, axis=0) for name in names[2:]})
    (image,) = session.run(None, feeds)
    assert image.shape == (5, 1, 32, 32)
    assert np.abs(image - image[:1]).max() < 1e-5, "ONNX graph: psi = 0 gives the average image for every z"


@needs_data
def test_run_with_truncation_and_style_mix(tiny_stylegan, tmp_path):
    from PIL import Image

    result = zoo_cli("run", "stylegan", "--weights", tiny_stylegan, "--truncation", "0.7", "--n", "16", "-o", tmp_path / "t.png")
    assert result.returncode == 0, result.stderr
    assert "truncation 0.7" in result.stderr and Image.open(tmp_path / "t.png").size[0] > 32
    result = zoo_cli("run", "stylegan", "--weights", tiny_stylegan, "--style-mix", "--n", "16", "-o", tmp_path / "m.png")
    assert result.returncode == 0, result.stderr
    assert "3x3 style-mixing grid" in result.stderr
    assert_clean_error(zoo_cli("run", "stylegan", "--weights", tiny_stylegan, "--style-mix", "--mix-layer", "9"),
                       "--mix-layer 9")


@needs_data
def test_style_mixing_grid_takes_rows_coarse_and_columns_fine(tiny_stylegan):
    from zoo.runtime import open_backend
    from zoo.tasks.image_generation import style_mixing_grid

    spec = zoo.resolve("stylegan", tiny_stylegan).spec
    backend = open_backend(spec, "torch", graph="generator", weights=str(tiny_stylegan))
    options = {"n": 16, "seed": 3, "model": "stylegan", "weights": tiny_stylegan}

    def cells(mix_layer):
        images, _ = style_mixing_grid(spec, backend, {**options, "mix_layer": mix_layer})
        grid = images.reshape(4, 4, 1, 32, 32)
        return grid[0, 1:], grid[1:, 0], grid[1:, 1:]  # column sources, row sources, mixed cells

    columns, rows, from_rows = cells(8)
    for i in range(3):
        np.testing.assert_allclose(from_rows[i], np.repeat(rows[i : i + 1], 3, axis=0), atol=1e-5)
    columns, rows, from_columns = cells(0)
    for i in range(3):
        np.testing.assert_allclose(from_columns[i], columns, atol=1e-5)
    _, _, mixed = cells(4)
    assert not np.allclose(mixed[0, 0], from_rows[0, 0], atol=1e-4)


def test_truncation_and_style_mixing_are_stylegans_options_only(capsys):
    from zoo.cli import main

    assert [f"--{option.name}" for option in zoo.get_spec("stylegan").options] == ["--truncation", "--style-mix", "--mix-layer"]
    assert main(["run", "dcgan", "--truncation", "0.5"]) == 2
    assert "dcgan (image-generation) takes no option --truncation" in capsys.readouterr().err


def test_data_parallel_training_is_refused_clearly(tmp_path):
    from zoo.training import TrainOptions
    from zoo.plugins.stylegan.train import StyleGANRecipe

    with pytest.raises(zoo.ZooError, match="one process only"):
        StyleGANRecipe(zoo.get_spec("stylegan"), TrainOptions(data=tmp_path, world_size=2))
