"""The MLP GAN: build, shipped weights, one training step, export parity."""

import pytest
import torch

import zoo
from conftest import DATA, assert_bundle_reproduces_pytorch, needs_data, read_json, zoo_cli
from zoo.config import read_toml
from zoo.weights import file_sha256, resolve

pytestmark = needs_data


@pytest.fixture(scope="module")
def tiny_gan(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "tiny.safetensors"
    result = zoo_cli("train", "gan", "--data", DATA, "--max-steps", "2", "--limit", "32", "--batch-size", "16",
                     "--set", "hidden=[16,32]", "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_generator_and_discriminator_shapes():
    from zoo.plugins.gan.model import Discriminator, GANConfig

    generator = zoo.build("gan", hidden=[8, 16]).eval()
    images = generator(torch.randn(5, 100))
    assert images.shape == (5, 1, 32, 32) and images.abs().max() <= 1
    scores = Discriminator(GANConfig(hidden=[8, 16]))(images)
    assert scores.shape == (5,) and ((scores >= 0) & (scores <= 1)).all()


def test_shipped_weights_load_and_match_their_card():
    resolved = resolve(zoo.get_spec("gan"))
    assert resolved.sha256 == file_sha256(resolved.path)
    assert resolved.card["training"]["command"].startswith("zoo train gan")
    assert resolved.card["metrics"]["classes_present"] == 10
    assert zoo.load("gan")(torch.zeros(2, 100)).shape == (2, 1, 32, 32)


def test_one_training_step(tiny_gan):
    card = read_toml(tiny_gan.with_name("tiny.card.toml"))
    assert card["training"]["steps"] == 2 and card["config"]["hidden"] == [16, 32]
    assert card["metrics"]["fid_cnn"] > card["metrics"]["floor_fid_cnn"]


def test_export_parity(tiny_gan, tmp_path):
    result = zoo_cli("export", "gan", "--weights", tiny_gan, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    parity = read_json(tmp_path / "gan" / "model.json")["graphs"]["model"]["parity"]["image"]
    assert parity["batch_sizes"] == [1, 8]
    assert_bundle_reproduces_pytorch(tmp_path / "gan")
