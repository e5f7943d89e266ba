"""The CycleGAN plugin: both generators, one training step, shipped weights, export parity of
both directions (dynamic batch, height and width), `zoo run`, and the translation metric."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from conftest import DATA, assert_bundle_reproduces_pytorch, assert_clean_error, needs_data, read_json, zoo_cli
from zoo.metrics import frechet_distance, pooled_pixels
from zoo.tasks import image_translation
from zoo.tasks.image_generation import feature_backend
from zoo.weights import file_sha256

pytestmark = needs_data
TINY = {"base_channels": 4, "residual_blocks": 1, "discriminator_channels": 4}


@pytest.fixture(scope="module")
def tiny_cyclegan(tmp_path_factory):
    """Weights of a narrow CycleGAN after one training step on 8 images of each domain.

    Written with the recipe and `zoo.weights.save` rather than `zoo train`, whose evaluation
    over 4,007 test images would dominate this file's run time; the shipped card records a full run.
    """
    from zoo.training import TrainOptions
    from zoo.plugins.cyclegan.train import CycleGANRecipe
    from zoo.weights import save

    torch.manual_seed(0)
    spec = zoo.get_spec("cyclegan").with_config(TINY)
    recipe = CycleGANRecipe(spec, TrainOptions(data=DATA, batch_size=4, limit=8))
    recipe.step(recipe.batches(0)[0])
    out = tmp_path_factory.mktemp("cyclegan") / "tiny.safetensors"
    save(recipe.networks[recipe.shipped].state_dict(), out, "cyclegan", spec.config)
    return out


def test_build_translates_both_directions_at_any_size_divisible_by_4():
    model = zoo.build("cyclegan", **TINY).eval()
    with torch.no_grad():
        to_b, to_a = model(torch.zeros(2, 1, 32, 32), torch.zeros(3, 1, 32, 32))
        wide = model.b2a(torch.zeros(1, 1, 24, 40))
    assert to_b.shape == (2, 1, 32, 32) and to_a.shape == (3, 1, 32, 32)
    assert wide.shape == (1, 1, 24, 40) and wide.abs().max() <= 1.0
    assert [g.name for g in zoo.get_spec("cyclegan").with_config().graphs] == ["a2b", "b2a"]


def test_one_training_step_updates_every_network():
    from zoo.training import TrainOptions
    from zoo.plugins.cyclegan.train import CycleGANRecipe

    torch.manual_seed(0)
    recipe = CycleGANRecipe(zoo.get_spec("cyclegan").with_config(TINY),
                            TrainOptions(data=DATA, batch_size=4, limit=8, lr=1e-3))
    real_a, real_b = recipe.batches(0)[0]
    assert real_a.shape == real_b.shape == (4, 1, 32, 32)
    before = {name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in recipe.networks.items()}
    losses = recipe.step((real_a, real_b))
    assert set(losses) == {"gan", "cycle", "identity", "d_a", "d_b", "lr"} and all(np.isfinite(v) for v in losses.values())
    for name, net in recipe.networks.items():
        for key, value in net.state_dict().items():
            assert not torch.equal(value, before[name][key]), f"{name}.{key} was not updated"


def test_an_unknown_recipe_option_is_refused():
    from zoo.training import TrainOptions
    from zoo.plugins.cyclegan.train import CycleGANRecipe

    with pytest.raises(zoo.ZooError, match="unknown --set key"):
        CycleGANRecipe(zoo.get_spec("cyclegan"), TrainOptions(data=DATA, hparams={"cycle_wieght": 1.0}))


def test_shipped_weights_load_match_the_card_and_preserve_labels():
    resolved = zoo.resolve_weights("cyclegan")
    assert resolved.card["sha256"] == file_sha256(resolved.path) and resolved.path.stat().st_size < 5_000_000
    metrics = resolved.card["metrics"]
    assert {"mnist_to_usps_label_preservation", "usps_to_mnist_label_preservation", "mnist_cycle_l1"} <= set(metrics)
    model = zoo.load("cyclegan")
    assert model.training is False
    spec = zoo.get_spec("cyclegan")
    # The first 100 test images of each domain, through the real metric code and both classifiers.
    for forward, backward in (("a2b", "b2a"), ("b2a", "a2b")):
        backends = {name: zoo.runtime.open_backend(spec, "torch", graph=name, loaded=model) for name in (forward, backward)}
        target = image_translation.source_and_target(backends[forward].graph)[1]
        classifier = feature_backend("torch", image_translation.judge(spec, target))
        scores = image_translation.translation_metrics(backends[forward], backends[backward], classifier, DATA, limit=100)
        preserved = next(v for k, v in scores.items() if k.endswith("label_preservation"))
        assert preserved >= 0.8, scores


class Identity:
    """A translator that returns its input: zero cycle error, known label preservation."""

    name = "torch"

    def __init__(self, graph):
        self.graph = graph

    def run(self, feeds):
        return {self.graph.outputs[0].name: feeds[self.graph.inputs[0].name]}


class AlwaysThree:
    """A digit classifier's features graph that answers 3 whatever it sees; its features are the
    image's 2x2 average-pooled grey levels."""

    graph = zoo.get_spec("cnn").with_config().graph("features")

    def run(self, feeds):
        images = feeds["image"]
        logits = np.zeros((len(images), 10), np.float32)
        logits[:, 3] = 1.0
        return {"features": pooled_pixels(images, 2), "logits": logits}


class CallsEverythingUSPS:
    """A domain judge (class 0 MNIST, 1 USPS) that answers USPS and keeps the batches it was shown."""

    graph = zoo.get_spec("cnn").with_config({"num_classes": 2}).graph()

    def __init__(self):
        self.seen = []

    def run(self, feeds):
        self.seen.append(feeds["image"])
        return {"logits": np.tile(np.array([[0.0, 1.0]], np.float32), (len(feeds["image"]), 1))}


def test_translation_metrics_on_a_handful_of_images():
    spec = zoo.get_spec("cyclegan").with_config()
    a2b, b2a = Identity(spec.graph("a2b")), Identity(spec.graph("b2a"))
    mnist, labels = image_translation.read_domain(DATA, "mnist", "heldout", limit=40)
    usps, usps_labels = image_translation.read_domain(DATA, "usps", "test", limit=40)
    usps_train, _ = image_translation.read_domain(DATA, "usps", "train", limit=40)
    judge = CallsEverythingUSPS()
    scores = image_translation.translation_metrics(a2b, b2a, AlwaysThree(), DATA, limit=40, domain_judge=judge)
    untranslated_fid = round(frechet_distance(pooled_pixels(mnist, 2), pooled_pixels(usps, 2)), 4)
    assert scores == {
        "mnist_to_usps_label_preservation": round(float((labels == 3).mean()), 4),
        "mnist_to_usps_untranslated_accuracy": round(float((labels == 3).mean()), 4),
        "usps_judge_accuracy": round(float((usps_labels == 3).mean()), 4),
        "mnist_to_usps_fid": untranslated_fid,  # the identity translates nothing
        "mnist_to_usps_untranslated_fid": untranslated_fid,
        "usps_floor_fid": round(frechet_distance(pooled_pixels(usps_train, 2), pooled_pixels(usps, 2)), 4),
        "mnist_cycle_l1": 0.0,
        "mnist_to_usps_realism": 1.0,
        "mnist_to_usps_untranslated_realism": 1.0,
        "mnist_to_usps_filter_realism": 1.0,
    }
    assert untranslated_fid > 0
    # The judge saw the translations, the inputs and the no-learning filter's output (MNIST blurred).
    translated, untranslated, filtered = judge.seen
    assert np.array_equal(translated, mnist) and np.array_equal(untranslated, mnist)
    assert np.allclose(filtered, image_translation.gaussian_blur(mnist)) and not np.allclose(filtered, mnist)
    # Into MNIST, "USPS" is the wrong answer: realism counts the target domain's class.
    back = image_translation.translation_metrics(b2a, a2b, AlwaysThree(), DATA, limit=40, domain_judge=CallsEverythingUSPS())
    assert back["usps_to_mnist_realism"] == back["usps_to_mnist_filter_realism"] == 0.0
    # The domains are in the classifiers' layout: cnn:usps recognises real USPS digits as read for translation.
    classifier = zoo.runtime.open_backend("cnn:usps", "torch")
    assert usps.shape == (40, 1, 32, 32)
    assert (image_translation.predictions(classifier, usps) == usps_labels).mean() >= 0.9


def test_the_no_learning_filters():
    images = np.full((1, 1, 16, 16), -1.0, np.float32)
    images[0, 0, 8, 8] = 1.0  # one white pixel on black
    blurred = image_translation.gaussian_blur(images, sigma=1.0)
    grey = (blurred + 1) / 2
    assert grey.sum() == pytest.approx(1.0, abs=1e-5)  # a blur moves ink, it does not add any
    assert grey[0, 0, 8, 8] == pytest.approx(grey.max()) and 0.1 < grey.max() < 0.2  # 1 / (2 pi sigma^2) = 0.16
    assert grey[0, 0, 8, 9] == pytest.approx(grey[0, 0, 9, 8]) == pytest.approx(grey[0, 0, 7, 8])
    levels = np.array([0.0, 0.2, 0.5, 0.8, 1.0], np.float32).reshape(1, 1, 1, 5) * 2 - 1
    stretched = (image_translation.contrast_stretch(levels) + 1) / 2
    assert np.allclose(stretched.ravel(), [0.0, 0.0, 0.5, 1.0, 1.0])


def test_the_domain_judge_tells_the_data_sets_apart_and_is_not_fooled_by_a_blur():
    """The shipped judge on the first 300 test images of each data set; its card has the full figures."""
    judge = zoo.runtime.open_backend("cnn:domain", "torch")
    mnist, _ = image_translation.read_domain(DATA, "mnist", "heldout", limit=300)
    usps, _ = image_translation.read_domain(DATA, "usps", "test", limit=300)
    called_usps = {name: (image_translation.predictions(judge, images) == 1).mean() for name, images in
                   (("mnist", mnist), ("usps", usps), ("blurred mnist", image_translation.gaussian_blur(mnist)))}
    assert called_usps["usps"] >= 0.95 and called_usps["mnist"] <= 0.05, called_usps
    assert called_usps["blurred mnist"] <= 0.3, called_usps


def test_the_manifest_names_the_usps_resampling_filter():
    spec = zoo.get_spec("cyclegan").with_config()
    assert "bilinear" in spec.graph("b2a").preprocessing["image"]["resampling"].lower()
    assert "bilinear" in spec.graph("a2b").postprocessing["translated"]["resampling"].lower()


def test_export_parity_of_both_directions_with_dynamic_size(tiny_cyclegan, tmp_path):
    import onnxruntime as ort

    bundle = zoo.export("cyclegan", out=tmp_path / "out", weights=tiny_cyclegan, log=lambda line: None)
    manifest = read_json(bundle / "model.json")
    assert list(manifest["graphs"]) == ["a2b", "b2a"]
    assert_bundle_reproduces_pytorch(bundle)
    model = zoo.load("cyclegan", tiny_cyclegan)
    images = np.random.default_rng(0).uniform(-1, 1, (3, 1, 24, 36)).astype(np.float32)
    for name, graph in manifest["graphs"].items():
        session = ort.InferenceSession(str(bundle / graph["file"]))
        (translated,) = session.run(None, {"image": images})
        with torch.no_grad():
            expected = getattr(model, name)(torch.from_numpy(images)).numpy()
        assert translated.shape == (3, 1, 24, 36) and np.allclose(translated, expected, atol=1e-4)


def test_run_translates_a_picture_and_writes_a_grid(tiny_cyclegan, tmp_path):
    picture = tmp_path / "seven.png"
    Image.fromarray(np.where(np.arange(28)[:, None] < 14, 0, 255).astype(np.uint8) * np.ones((1, 28), np.uint8)).save(picture)
    result = zoo_cli("run", "cyclegan", "--weights", tiny_cyclegan, "--direction", "b2a", "--image", picture,
                     "-o", tmp_path / "out.png")
    assert result.returncode == 0, result.stderr
    assert "from usps to mnist" in result.stderr and Image.open(tmp_path / "out.png").size[0] > 32
    result = zoo_cli("run", "cyclegan", "--weights", tiny_cyclegan, "--n", "6", "-o", tmp_path / "grid.png", "--json",
                     env={"ZOO_DATA_ROOT": str(DATA)})
    assert result.returncode == 0, result.stderr
    assert "6 mnist test images" in result.stderr
    # 2 rows of 4 triples (input, translation, real USPS digit): 12 cells of 32 px and 2 px padding, doubled.
    assert Image.open(tmp_path / "grid.png").size == (2 * (12 * 34 + 2), 2 * (2 * 34 + 2))
    shown = json.loads(result.stdout)
    mnist_labels = image_translation.read_domain(DATA, "mnist", "heldout")[1]
    usps_labels = image_translation.read_domain(DATA, "usps", "test")[1]
    assert list(mnist_labels[shown["test_indices"]]) == list(usps_labels[shown["target_test_indices"]])
    result = zoo_cli("run", "cyclegan", "--weights", tiny_cyclegan, "--direction", "sideways", "-o", tmp_path / "x.png")
    assert_clean_error(result, "no graph 'sideways'", "a2b, b2a")
