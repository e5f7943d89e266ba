"""`zoo run` and `zoo eval` for image-classification models: top classes of
one picture, and accuracy on the data sets a weights variant names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.batch import IMAGE_SUFFIXES, BatchTask
from zoo.data import pad_to, read_digits
from zoo.errors import ZooError
from zoo.runtime import Backend
from zoo.specs import ModelSpec
from zoo.tasks import Quality, RunResult
from zoo.weights import split_reference, variant_spec

DEFAULT_EVALUATION = ("mnist/heldout",)
TOP_CLASSES = 3
CLASSIFIER_METRIC_DESCRIPTIONS = {
    "mnist_heldout_accuracy": "share of the 2,000 held-out MNIST images (index % 5 == 0) classified correctly",
    "usps_test_accuracy": (
        "share of the 2,007 USPS test images classified correctly (16x16 resized to MNIST's 20x20 digit box, "
        "zero-padded to 32x32)"
    ),
    "domains_test_accuracy": (
        "share of the 2,000 held-out MNIST and 2,007 USPS test images whose data set (mnist 0, usps 1) is told "
        "correctly"
    ),
}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def predict_logits(backend: Backend, images: np.ndarray, chunk: int = 500) -> np.ndarray:
    """Logits (N, classes) of the graph's "logits" output, in chunks."""
    name = backend.graph.inputs[0].name
    parts = [backend.run({name: images[start : start + chunk]})["logits"] for start in range(0, len(images), chunk)]
    return np.concatenate(parts)


def classifier_metrics(backend: Backend, data: Path, evaluation: tuple[str, ...]) -> dict[str, float]:
    """Accuracy on each "dataset/split" in `evaluation`, e.g. usps_test_accuracy."""
    metrics = {}
    for entry in evaluation:
        dataset, _, split = entry.partition("/")
        images, labels = read_digits(data, dataset, split)
        predictions = predict_logits(backend, images).argmax(axis=1)
        metrics[f"{dataset}_{split}_accuracy"] = round(float((predictions == labels).mean()), 4)
    return metrics


def quality(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> Quality:
    """Accuracy on the first `options["examples"]` images of the variant's own evaluation set (held-out MNIST
    by default): the metric reduced precisions must keep."""
    dataset, _, split = evaluation_sets(spec, options)[0].partition("/")
    images, labels = read_digits(Path(options["data"]), dataset, split)
    # The first N of a set that concatenates data sets ("domains") would hold one of them only.
    chosen = np.random.default_rng(0).permutation(len(labels))[: options["examples"]] if dataset == "domains" \
        else np.arange(min(options["examples"], len(labels)))
    images, labels = images[chosen], labels[chosen]
    accuracy = float((predict_logits(backend, images).argmax(axis=1) == labels).mean())
    description = f"share of {len(labels)} {dataset} {split} images classified correctly"
    return Quality(f"{dataset}_{split}_accuracy", accuracy, higher_is_better=True, examples=len(labels), description=description)


def load_picture(path: Path, size: int = 32, flag: str = "--image", fix: str = "pass a PNG or JPEG picture") -> np.ndarray:
    """A digit picture of any size and polarity as a (1, 1, size, size) array in [-1, 1].

    It is converted to grayscale, inverted when its border is light (a dark
    digit on paper), resized to MNIST's 28x28 frame and zero-padded to `size`.
    Pictures already `size` pixels wide (generator samples) are used as they are.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    from zoo.files import check_regular_file

    check_regular_file(Path(path), flag, fix)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(path)
            picture.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ZooError(
            f"{flag} {path} is too large to decode safely (over {Image.MAX_IMAGE_PIXELS} pixels, a possible "
            f"decompression bomb); {fix} of ordinary size"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ZooError(f"{flag} {path} is not an image Pillow can read; {fix}") from None
    pixels = np.asarray(grayscale(picture))
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.mean() > 127:
        pixels = 255 - pixels
    if pixels.shape != (size, size):
        pixels = np.asarray(Image.fromarray(pixels).resize((28, 28), Image.BILINEAR))
        pixels = pad_to(pixels[None], size)[0]
    return (pixels.astype(np.float32) / 127.5 - 1.0)[None, None]


def class_labels(spec: ModelSpec, count: int) -> list:
    return spec.graph().postprocessing.get("logits", {}).get("labels", list(range(count)))


def run(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> RunResult:
    if not options.get("image"):
        raise ZooError(f"`zoo run {spec.name}` classifies a picture: pass --image digit.png")
    size = backend.graph.inputs[0].shape[-1]
    probabilities = softmax(predict_logits(backend, load_picture(Path(options["image"]), size)))[0]
    labels = class_labels(spec, len(probabilities))
    top = np.argsort(-probabilities)[:TOP_CLASSES]
    lines = [f"{options['image']} ({spec.name}, {backend.name}):"]
    lines += [f"  {labels[i]}  {probabilities[i]:.4f}" for i in top]
    ranked = [{"label": labels[i], "probability": float(probabilities[i])} for i in top]
    return RunResult(data={"image": str(options["image"]), "top": ranked}, product="\n".join(lines))


def _batch_picture(path: Path, graph) -> np.ndarray:
    # Inside a folder a broken file is not the user's flag: say it is an input and name it.
    return load_picture(path, graph.inputs[0].shape[-1], flag="input file", fix="replace or remove it")[0]


def _batch_records(spec: ModelSpec, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    probabilities = softmax(outputs["logits"])
    labels = class_labels(spec, probabilities.shape[1])
    records = []
    for row in probabilities:
        top = np.argsort(-row)[:TOP_CLASSES]
        records.append({
            "prediction": labels[top[0]],
            "top": [{"label": labels[i], "probability": float(f"{row[i]:.6g}")} for i in top],
        })
    return records


# `zoo run NAME --input-dir DIR -o OUT`: one line of predictions.jsonl per picture.
BATCH = BatchTask(kind="images", suffixes=IMAGE_SUFFIXES, load=_batch_picture, records=_batch_records)


def evaluation_sets(spec: ModelSpec, options: dict[str, Any]) -> tuple[str, ...]:
    """The "dataset/split" sets the variant's WeightsSpec.evaluation names (its own set first)."""
    variant = split_reference(options.get("model") or spec.name)[1]
    if spec.weights:
        return variant_spec(spec, variant)[1].evaluation or DEFAULT_EVALUATION
    return DEFAULT_EVALUATION


def evaluate(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> dict[str, float]:
    """Accuracy on the data sets the variant's WeightsSpec.evaluation names (its own set first)."""
    return classifier_metrics(backend, options["data"], evaluation_sets(spec, options))


def grayscale(picture):
    """A grey-level version of `picture`; a transparent background becomes the colour that contrasts
    with the opaque strokes, so a digit drawn on a transparent canvas keeps its shape."""
    from PIL import Image

    if picture.mode not in ("RGBA", "LA", "PA") and not (picture.mode == "P" and "transparency" in picture.info):
        return picture.convert("L")
    rgba = picture.convert("RGBA")
    grey = np.asarray(rgba.convert("L"), dtype=np.float32)
    alpha = np.asarray(rgba)[..., 3].astype(np.float32) / 255.0
    opaque = alpha > 0.5
    ink = grey[opaque].mean() if opaque.any() else 0.0
    background = 0.0 if ink > 127 else 255.0
    return Image.fromarray((grey * alpha + background * (1.0 - alpha) + 0.5).astype(np.uint8), "L")
