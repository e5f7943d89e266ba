"""The cnn digit classifier: shipped weights, accuracy, export, `zoo run --image`, `zoo eval` per variant."""

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from conftest import DATA, MNIST, assert_bundle_reproduces_pytorch, assert_clean_error, needs_data, read_json, zoo_cli
from zoo.config import read_toml
from zoo.data import read_digits, read_mnist, read_usps
from zoo.runtime import open_backend
from zoo.tasks import image_classification
from zoo.weights import file_sha256, resolve

pytestmark = needs_data


@pytest.fixture(scope="module")
def tiny_cnn(tmp_path_factory):
    """A narrow cnn trained for 2 steps on 32 images."""
    out = tmp_path_factory.mktemp("cnn") / "tiny.safetensors"
    result = zoo_cli("train", "cnn", "--data", DATA, "--max-steps", "2", "--limit", "32", "--batch-size", "16",
                     "--set", "channels=[4,8]", "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_build_gives_logits_and_features():
    model = zoo.build("cnn").eval()
    images = torch.zeros(3, 1, 32, 32)
    assert model(images).shape == (3, 10)
    spec = zoo.get_spec("cnn")
    features, logits = open_backend(spec, "torch", graph="features", loaded=model).run({"image": images.numpy()}).values()
    assert features.shape == (3, 128) and np.allclose(logits, model(images).detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("variant", ["default", "usps", "domain"])
def test_shipped_weights_load_and_match_their_card(variant):
    resolved = resolve(zoo.get_spec("cnn"), variant)
    assert resolved.sha256 == file_sha256(resolved.path)
    assert resolved.card["training"]["command"].startswith("zoo train cnn")
    assert resolved.path.stat().st_size < 5 * 1024 * 1024
    model = zoo.load(f"cnn:{variant}")
    assert not model.training


def test_shipped_cnn_reaches_99_percent_on_the_heldout_split():
    backend = open_backend(zoo.get_spec("cnn"), "torch")
    metrics = image_classification.classifier_metrics(backend, DATA, ("mnist/heldout",))
    assert metrics["mnist_heldout_accuracy"] >= 0.99


def test_one_training_step_writes_weights_and_card(tiny_cnn):
    card = read_toml(tiny_cnn.with_name("tiny.card.toml"))
    assert card["training"]["steps"] == 2 and card["config"]["channels"] == [4, 8]
    assert set(card["metrics"]) == {"mnist_heldout_accuracy", "usps_test_accuracy"}
    assert 0.0 <= card["metrics"]["mnist_heldout_accuracy"] <= 1.0


def test_export_validates_both_graphs(tiny_cnn, tmp_path):
    result = zoo_cli("export", "cnn", "--weights", tiny_cnn, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = read_json(tmp_path / "cnn" / "model.json")
    assert set(manifest["graphs"]) == {"model", "features"}
    for graph in manifest["graphs"].values():
        assert all(entry["batch_sizes"] == [1, 8] for entry in graph["parity"].values())
    assert_bundle_reproduces_pytorch(tmp_path / "cnn")


def test_eval_uses_the_variants_data_sets(tiny_cnn):
    spec = zoo.get_spec("cnn")
    backend = open_backend(spec, "torch", weights=str(tiny_cnn))
    default = image_classification.evaluate(spec, backend, {"model": "cnn", "data": DATA})
    usps = image_classification.evaluate(spec, backend, {"model": "cnn:usps", "data": DATA})
    assert list(default) == ["mnist_heldout_accuracy", "usps_test_accuracy"]
    assert list(usps) == ["usps_test_accuracy", "mnist_heldout_accuracy"]
    assert usps["usps_test_accuracy"] == default["usps_test_accuracy"]


def test_run_prints_the_top_classes_on_both_backends(tmp_path):
    images, labels = read_mnist(MNIST, "heldout")
    path = tmp_path / "digit.png"
    Image.fromarray(255 - images[0]).save(path)  # dark on light, as on paper: run inverts it
    outputs = {}
    for backend in ("torch", "onnx"):
        result = zoo_cli("run", "cnn", "--image", path, "--backend", backend)
        assert result.returncode == 0, result.stderr
        outputs[backend] = [line.split() for line in result.stdout.splitlines()[1:]]
    top = outputs["torch"]
    assert len(top) == 3 and top[0][0] == str(labels[0]) and float(top[0][1]) > 0.9
    assert [row[0] for row in outputs["onnx"]] == [row[0] for row in top]


def test_run_input_errors(tmp_path):
    assert_clean_error(zoo_cli("run", "cnn"), "--image")
    assert_clean_error(zoo_cli("run", "cnn", "--image", tmp_path / "missing.png"), "does not exist")
    (tmp_path / "text.png").write_text("not a picture")
    assert_clean_error(zoo_cli("run", "cnn", "--image", tmp_path / "text.png"), "not an image")


def test_usps_is_brought_into_the_mnist_layout():
    raw, labels = read_usps(DATA, "test")
    assert raw.shape == (2007, 16, 16) and labels.shape == (2007,)
    images, _ = read_digits(DATA, "usps", "test")
    assert images.shape == (2007, 1, 32, 32) and images.min() >= -1 and images.max() <= 1
    # The digit sits in the central 20x20 box, like MNIST's; the border is background.
    assert np.all(images[:, :, :6, :] == -1) and np.all(images[:, :, 26:, :] == -1)
    assert_clean_error(zoo_cli("eval", "cnn", "--data", "/nonexistent"), "no mnist data under the data root")


def test_the_domains_data_set_labels_each_digit_with_its_data_set():
    images, labels = read_digits(DATA, "domains", "test")
    mnist, _ = read_digits(DATA, "mnist", "heldout")
    usps, _ = read_digits(DATA, "usps", "test")
    assert images.shape == (len(mnist) + len(usps), 1, 32, 32)
    assert np.array_equal(images[: len(mnist)], mnist) and np.array_equal(images[len(mnist):], usps)
    assert list(np.bincount(labels)) == [len(mnist), len(usps)]


def test_the_domain_judge_trains_on_both_data_sets_with_two_classes(tmp_path):
    out = tmp_path / "domain.safetensors"
    refused = zoo_cli("train", "cnn", "--data", DATA, "--max-steps", "1", "--set", "dataset=domains", "--out", out)
    assert_clean_error(refused, "num_classes=2")
    result = zoo_cli("train", "cnn", "--data", DATA, "--max-steps", "2", "--batch-size", "16", "--set", "dataset=domains",
                     "--set", "num_classes=2", "--set", "channels=[4,8]", "--out", out)
    assert result.returncode == 0, result.stderr
    card = read_toml(out.with_name("domain.card.toml"))
    assert list(card["metrics"]) == ["domains_test_accuracy"] and "USPS train" in card["data"]


def test_blur_and_contrast_keep_the_range_and_change_some_images():
    from zoo.plugins.cnn.train import blur_and_contrast

    images = torch.from_numpy(read_digits(DATA, "mnist", "heldout")[0][:64])
    torch.manual_seed(0)
    changed = blur_and_contrast(images)
    assert changed.shape == images.shape and changed.min() >= -1 and changed.max() <= 1
    moved = (changed - images).abs().flatten(1).max(1).values > 1e-3
    assert 0.3 < moved.float().mean() < 1.0  # each change applies to about half of the images
