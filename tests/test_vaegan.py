"""The VAE-GAN plugin: architecture, shipped weights, one training step,
export parity of the decoder and encoder graphs, and reconstructions."""

import numpy as np
import pytest
import torch

import zoo
from conftest import MNIST, assert_bundle_reproduces_pytorch, needs_data, read_json, zoo_cli
from zoo.config import read_toml
from zoo.weights import file_sha256


@pytest.fixture(scope="module")
def tiny_vaegan(tmp_path_factory):
    """A narrow VAE-GAN trained for 2 steps on 16 images, through `zoo train`."""
    if not (MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not found under {MNIST}")
    out = tmp_path_factory.mktemp("vaegan") / "tiny.safetensors"
    result = zoo_cli("train", "vaegan", "--data", MNIST, "--max-steps", "2", "--limit", "16", "--batch-size", "8",
                     "--set", "base_channels=4", "--out", out, env={"ZOO_CONFIG": ""})
    assert result.returncode == 0, result.stderr
    return out


def _heldout(count):
    from zoo.data import pad_to, read_mnist, to_unit_range

    images, labels = read_mnist(MNIST, "heldout")
    return torch.from_numpy(to_unit_range(pad_to(images[:count], 32))), labels[:count]


def test_build_decodes_and_encodes():
    model = zoo.build("vaegan").eval()
    with torch.no_grad():
        images = model(torch.randn(3, 32))
        mu, logvar = model.encoder(images)
    assert images.shape == (3, 1, 32, 32) and images.abs().max() <= 1.0
    assert mu.shape == logvar.shape == (3, 32)


@needs_data
def test_one_training_step_updates_every_network():
    from zoo.training import TrainOptions
    from zoo.plugins.vaegan.train import VAEGANRecipe

    torch.manual_seed(0)
    spec = zoo.get_spec("vaegan")
    recipe = VAEGANRecipe(spec.with_config({"base_channels": 4}), TrainOptions(data=MNIST, batch_size=8, limit=16, lr=1e-3))
    before = {name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in
              (("encoder", recipe.model.encoder), ("decoder", recipe.model.decoder), ("discriminator", recipe.discriminator))}
    losses = recipe.step(recipe.batches(0)[0])
    assert set(losses) == {"d_loss", "gan", "llike", "kl"} and all(np.isfinite(v) for v in losses.values())
    for name, net in (("encoder", recipe.model.encoder), ("decoder", recipe.model.decoder), ("discriminator", recipe.discriminator)):
        changed = [k for k, v in net.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[name][k])]
        assert changed, f"the {name} was not updated"


@needs_data
def test_shipped_weights_load_and_match_the_card():
    resolved = zoo.resolve_weights("vaegan")
    assert resolved.card["sha256"] == file_sha256(resolved.path)
    assert resolved.path.stat().st_size < 5_000_000
    assert resolved.card["metrics"]
    model = zoo.load("vaegan")
    assert zoo.get_spec("vaegan").with_config().graphs[0].name == "decoder", "`zoo run vaegan` samples from the decoder"
    assert model.training is False


@needs_data
def test_shipped_model_reconstructs_held_out_digits():
    model = zoo.load("vaegan")
    images, labels = _heldout(64)
    with torch.no_grad():
        mu, _ = model.encoder(images)
        reconstructed = model.decoder(mu)
    own = (reconstructed - images).square().mean(dim=(1, 2, 3))
    shuffled = (reconstructed - images.roll(1, dims=0)).square().mean(dim=(1, 2, 3))
    assert (own < shuffled).float().mean() > 0.9, "a reconstruction is closer to its own input than to another digit"


@needs_data
def test_one_cli_training_step_and_export_parity(tiny_vaegan, tmp_path):
    import onnxruntime as ort

    card = read_toml(tiny_vaegan.with_name("tiny.card.toml"))
    assert card["sha256"] == file_sha256(tiny_vaegan) and card["training"]["steps"] == 2
    result = zoo_cli("export", "vaegan", "--weights", tiny_vaegan, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    manifest = read_json(tmp_path / "out" / "vaegan" / "model.json")
    assert list(manifest["graphs"]) == ["decoder", "encoder"]
    for graph in manifest["graphs"].values():
        for parity in graph["parity"].values():
            assert parity["batch_sizes"] == [1, 8]
    assert_bundle_reproduces_pytorch(tmp_path / "out" / "vaegan")
    encoder = ort.InferenceSession(str(tmp_path / "out" / "vaegan" / manifest["graphs"]["encoder"]["file"]))
    mu, logvar = encoder.run(None, {"image": np.zeros((5, 1, 32, 32), np.float32)})
    assert mu.shape == logvar.shape == (5, 32)


@needs_data
def test_run_samples_from_the_decoder(tiny_vaegan, tmp_path):
    result = zoo_cli("run", "vaegan", "--weights", tiny_vaegan, "--n", "9", "-o", tmp_path / "s.png")
    assert result.returncode == 0, result.stderr
    assert "9 samples" in result.stderr and (tmp_path / "s.png").is_file()


def test_data_parallel_training_is_refused_clearly(tmp_path):
    from zoo.training import TrainOptions
    from zoo.plugins.vaegan.train import VAEGANRecipe

    with pytest.raises(zoo.ZooError, match="one process only"):
        VAEGANRecipe(zoo.get_spec("vaegan"), TrainOptions(data=tmp_path, world_size=2))
