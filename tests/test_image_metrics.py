"""The generator metrics: Frechet distance, class coverage, FID-CNN through the cnn, the VAE's ELBO."""

import math

import numpy as np
import pytest

from conftest import DATA, needs_data
from zoo.config import read_toml
from zoo.metrics import class_coverage, frechet_distance, knn_radii, precision_recall
from zoo.specs import GraphSpec, TensorSpec
from zoo.tasks.image_generation import classifier_metrics, feature_backend, fit_to, vae_metrics


def test_frechet_distance_of_shifted_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Same covariance, means 2 apart in one coordinate: the distance is |mu_a - mu_b|^2 = 4.
    assert frechet_distance(a, a + [2.0, 0.0, 0.0]) == pytest.approx(4.0, abs=1e-6)


def test_knn_radii_exclude_the_point_itself():
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(points, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(points, 2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError, match="k = 4"):
        knn_radii(points, 4)


def test_precision_recall_by_hand():
    real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 10.0], [11.0, 10.0]])
    # With k = 1 every real ball has radius 1. Two samples sit on the real manifold, a pair far
    # away; the samples' own balls (radius 0.5 near the origin) reach only (0, 0) and (1, 0).
    generated = np.array([[0.5, 0.0], [0.0, 0.0], [50.0, 50.0], [51.0, 50.0]])
    precision, recall = precision_recall(real, generated, k=1)
    assert precision == pytest.approx(2 / 4)
    assert recall == pytest.approx(2 / 5)


def test_precision_recall_tell_narrow_from_diverse():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((500, 4))
    same = precision_recall(real, rng.standard_normal((500, 4)))
    narrow = precision_recall(real, 0.2 * rng.standard_normal((500, 4)))  # sharp but one mode
    diffuse = precision_recall(real, 3.0 * rng.standard_normal((500, 4)))  # varied but unrealistic
    assert same[0] > 0.8 and same[1] > 0.8
    assert narrow[0] > 0.95 and narrow[1] < 0.3
    assert diffuse[0] < 0.5 and diffuse[1] > 0.8


def test_class_coverage():
    probabilities = np.full((5, 10), 0.01)
    for row, label in enumerate([0, 0, 1, 2, 3]):
        probabilities[row, label] = 0.91
    coverage = class_coverage(probabilities)
    assert coverage == {"classes_present": 4, "min_class_share": 0.0, "mean_confidence": pytest.approx(0.91)}
    balanced = class_coverage(np.eye(10)[np.arange(20) % 10])
    assert balanced["classes_present"] == 10 and balanced["min_class_share"] == pytest.approx(0.1)


def test_fit_to_pads_with_background_and_crops_centrally():
    images = np.ones((2, 1, 28, 28), dtype=np.float32)
    padded = fit_to(images, 32)
    assert padded.shape == (2, 1, 32, 32) and padded[0, 0, 0, 0] == -1 and padded[0, 0, 2, 2] == 1
    assert np.array_equal(fit_to(padded, 28), images)


@needs_data
def test_fid_cnn_through_the_shipped_cnn_on_a_handful_of_images():
    from zoo.data import pad_to, read_mnist, to_unit_range

    real = to_unit_range(pad_to(read_mnist(DATA, "heldout")[0][:40], 32))
    train_images, train_labels = read_mnist(DATA, "train")
    train = to_unit_range(pad_to(train_images[:40], 32))
    noise = np.random.default_rng(0).uniform(-1, 1, real.shape).astype(np.float32)
    classifier = feature_backend("torch", "cnn")
    good = classifier_metrics(classifier, train, real, train, "cnn")
    bad = classifier_metrics(classifier, noise, real, train, "cnn")
    assert good["fid_cnn"] == pytest.approx(good["floor_fid_cnn"])
    assert bad["fid_cnn"] > 10 * good["fid_cnn"]
    assert good["classes_present"] == len(set(train_labels[:40])) and good["mean_confidence"] > 0.9
    assert good["precision_cnn"] == good["floor_precision_cnn"] and good["recall_cnn"] == good["floor_recall_cnn"]
    assert bad["precision_cnn"] < good["precision_cnn"]


class _Fixed:
    """A backend that returns fixed outputs: the ELBO arithmetic checked against a closed form."""

    name = "fixed"

    def __init__(self, graph, outputs):
        self.graph, self.outputs = graph, outputs

    def run(self, feeds):
        batch = len(next(iter(feeds.values())))
        return {name: np.broadcast_to(value, (batch, *value.shape)).copy() for name, value in self.outputs.items()}


@needs_data
def test_negative_elbo_of_a_trivial_vae():
    latent = 4
    encoder = _Fixed(GraphSpec(inputs=(TensorSpec("image", ("batch", 1, 32, 32)),),
                               outputs=(TensorSpec("mu", ("batch", latent)), TensorSpec("logvar", ("batch", latent))), name="encoder"),
                     {"mu": np.zeros(latent, np.float32), "logvar": np.zeros(latent, np.float32)})
    decoder = _Fixed(GraphSpec(inputs=(TensorSpec("z", ("batch", latent)),), outputs=(TensorSpec("logits", ("batch", 1, 32, 32)),)),
                     {"logits": np.zeros((1, 32, 32), np.float32)})
    metrics = vae_metrics(encoder, decoder, DATA)
    # q = prior gives KL 0; logits 0 give p = 1/2 for every pixel: log 2 nats each, whatever the image.
    assert metrics["heldout_kl_nats"] == 0.0
    assert metrics["heldout_reconstruction_nats"] == pytest.approx(1024 * math.log(2), abs=0.01)


@needs_data
def test_dcgan_training_records_the_classifier_metrics(tiny_weights):
    metrics = read_toml(tiny_weights.with_name("tiny.card.toml"))["metrics"]
    assert metrics["fid_cnn"] > metrics["floor_fid_cnn"] > 0
    assert 0 <= metrics["min_class_share"] <= 0.1 and 1 <= metrics["classes_present"] <= 10
