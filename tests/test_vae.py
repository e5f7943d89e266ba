"""The VAE: two graphs (decoder first, encoder), no randomness inside them, the ELBO on every backend."""

import numpy as np
import onnx
import pytest
import torch

import zoo
from conftest import DATA, assert_bundle_reproduces_pytorch, needs_data, read_json, zoo_cli
from zoo.config import read_toml
from zoo.runtime import open_backend
from zoo.tasks import image_generation
from zoo.weights import file_sha256, resolve

pytestmark = needs_data


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae") / "tiny.safetensors"
    result = zoo_cli("train", "vae", "--data", DATA, "--max-steps", "2", "--limit", "32", "--batch-size", "16",
                     "--set", "hidden=[32,16]", "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_graphs_decoder_first_then_encoder():
    model = zoo.build("vae", hidden=[16, 8]).eval()
    spec = model.zoo_spec
    assert [g.name for g in spec.graphs] == ["decoder", "encoder"]
    decoded = open_backend(spec, "torch", graph="decoder", loaded=model).run({"z": np.zeros((3, 16), np.float32)})
    assert decoded["image"].shape == (3, 1, 32, 32) and np.allclose(decoded["image"], np.tanh(decoded["logits"] / 2))
    posterior = open_backend(spec, "torch", graph="encoder", loaded=model).run({"image": np.zeros((3, 1, 32, 32), np.float32)})
    assert posterior["mu"].shape == posterior["logvar"].shape == (3, 16)


def test_reparameterisation_takes_eps_as_an_input():
    model = zoo.build("vae", hidden=[16, 8]).eval()
    images = torch.zeros(2, 1, 32, 32)
    eps = torch.randn(2, 16)
    first, _, _ = model(images, eps)
    again, _, _ = model(images, eps)
    assert torch.equal(first, again)


def test_shipped_weights_load_and_match_their_card():
    resolved = resolve(zoo.get_spec("vae"))
    assert resolved.sha256 == file_sha256(resolved.path)
    assert resolved.card["training"]["command"].startswith("zoo train vae")
    assert 0 < resolved.card["metrics"]["heldout_neg_elbo"] < 1024 * np.log(2)
    assert resolved.card["metrics"]["classes_present"] == 10


def test_one_training_step(tiny_vae):
    card = read_toml(tiny_vae.with_name("tiny.card.toml"))
    assert card["training"]["steps"] == 2
    metrics = card["metrics"]
    assert metrics["heldout_neg_elbo"] == pytest.approx(metrics["heldout_reconstruction_nats"] + metrics["heldout_kl_nats"], abs=0.02)


def test_export_has_two_validated_graphs_without_random_nodes(tiny_vae, tmp_path):
    result = zoo_cli("export", "vae", "--weights", tiny_vae, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = read_json(tmp_path / "vae" / "model.json")
    assert set(manifest["graphs"]) == {"decoder", "encoder"}
    assert_bundle_reproduces_pytorch(tmp_path / "vae")
    for name, graph in manifest["graphs"].items():
        ops = {node.op_type for node in onnx.load(str(tmp_path / "vae" / graph["file"])).graph.node}
        assert not ops & {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial"}, name


def test_elbo_agrees_between_backends(tiny_vae):
    spec = zoo.get_spec("vae")
    values = {}
    for backend in ("torch", "onnx"):
        decoder = open_backend(spec, backend, graph="decoder", weights=str(tiny_vae))
        encoder = open_backend(spec, backend, graph="encoder", weights=str(tiny_vae))
        values[backend] = image_generation.vae_metrics(encoder, decoder, DATA)
    assert values["torch"] == pytest.approx(values["onnx"], abs=0.02)
