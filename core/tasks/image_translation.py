"""`zoo run` and `zoo eval` for image-to-image models that translate digits
between two data sets (MNIST <-> USPS), one graph per direction.

Each graph names its source domain in `preprocessing[input]["domain"]` and
its target domain in `postprocessing[output]["domain"]`. Both domains use
one layout, the one the zoo's digit classifiers know (`zoo.data.mnist_frame`):
the digit in MNIST's 20x20 box, zero-padded to 32x32 (USPS's 16x16 digits
are resized into the box). A translation then changes a digit's strokes and
style, not its size and position; with each image resized as a whole
instead (MNIST digits with their margin, USPS digits filling the frame),
CycleGAN learned to rescale but swapped digits (7 -> 9, 3 <-> 5) and kept
only about 75 % of the labels.

The metric is label preservation: translate the source domain's test split
and classify the translations with a classifier trained on the target
domain. The model's spec names those classifiers, one per domain, in
`task_config["judges"]` (registry references); they are loaded through the
registry and run on the same kind of backend as the translator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data import mnist_frame, read_mnist, read_usps, to_unit_range
from zoo.errors import ZooError
from zoo.images import save_grid, to_uint8
from zoo.runtime import Backend, open_backend
from zoo.specs import GraphSpec, ModelSpec
from zoo.tasks import Quality, RunResult
from zoo.tasks.image_classification import load_picture
from zoo.tensors import concrete_shape


@dataclass(frozen=True)
class Domain:
    """A digit data set as a translation domain."""

    dataset: str
    train_split: str
    test_split: str
    test_description: str


DOMAINS = {
    "mnist": Domain("mnist", "train", "heldout", "the 2,000 held-out MNIST images (index % 5 == 0)"),
    "usps": Domain("usps", "train", "test", "the 2,007 USPS test images"),
}
GRID_PAIRS_PER_ROW = 4


def domain(name: str) -> Domain:
    if name not in DOMAINS:
        raise ZooError(f"unknown translation domain {name!r}; the known ones are {', '.join(DOMAINS)}")
    return DOMAINS[name]


def judge(spec: ModelSpec, name: str) -> str:
    """The classifier trained on domain `name` that judges translations into it, as the spec names it."""
    judges = spec.task_config.get("judges", {})
    if name not in judges:
        raise ZooError(f"model '{spec.name}' names no classifier for the {name} domain; its spec needs "
                       f"task_config={{'judges': {{'{name}': 'MODEL[:VARIANT]', ...}}}}")
    return judges[name]


def read_domain(data: Path, name: str, split: str, size: int = 32,
                limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, size, size) in [-1, 1] in the classifiers' layout and labels of one split of a
    domain; `limit` keeps the first N."""
    reader = {"mnist": read_mnist, "usps": read_usps}[domain(name).dataset]
    images, labels = reader(data, split)
    return to_unit_range(mnist_frame(images[:limit], size)), labels[:limit]


def source_and_target(graph: GraphSpec) -> tuple[str, str]:
    source = graph.preprocessing.get(graph.inputs[0].name, {}).get("domain")
    target = graph.postprocessing.get(graph.outputs[0].name, {}).get("domain")
    if source not in DOMAINS or target not in DOMAINS:
        raise ZooError(f"graph '{graph.name}' does not name its source and target domains "
                       f"(preprocessing/postprocessing 'domain', one of {', '.join(DOMAINS)})")
    return source, target


def image_size(graph: GraphSpec) -> int:
    """The side the graph was trained at: its input's last axis, or that axis's example size when symbolic."""
    return concrete_shape(graph.inputs[0], graph.axis_sizes(1))[-1]


def translate(backend: Backend, images: np.ndarray, chunk: int = 256) -> np.ndarray:
    name, output = backend.graph.inputs[0].name, backend.graph.outputs[0].name
    return np.concatenate([backend.run({name: images[i : i + chunk]})[output] for i in range(0, len(images), chunk)])


def predictions(classifier: Backend, images: np.ndarray, chunk: int = 500) -> np.ndarray:
    """Predicted classes: the arg-max of the classifier graph's first output (its logits)."""
    name, logits_name = classifier.graph.inputs[0].name, classifier.graph.outputs[0].name
    logits = [classifier.run({name: images[i : i + chunk]})[logits_name] for i in range(0, len(images), chunk)]
    return np.concatenate(logits).argmax(axis=1)


def metric_descriptions(source: str, target: str, classifier: str) -> dict[str, str]:
    """What `translation_metrics` measures for one direction; `classifier` judges the target domain."""
    a = domain(source)
    return {
        f"{source}_to_{target}_label_preservation": (
            f"share of {a.test_description}, translated to {target} style, that {classifier} (trained on {target}) "
            f"classifies as their true digit"
        ),
        f"{source}_to_{target}_untranslated_accuracy": (
            f"the baseline: {classifier}'s accuracy on the same {source} images untranslated"
        ),
        f"{source}_cycle_l1": (
            f"cycle-reconstruction error: mean |x - {source}({target}(x))| over {a.test_description}, "
            f"grey levels in [0, 1]"
        ),
    }


def translation_metrics(forward: Backend, backward: Backend, classifier: Backend, data: Path,
                        limit: int | None = None) -> dict[str, float]:
    """Label preservation, its untranslated baseline and the cycle error of one direction (see `metric_descriptions`).

    `forward` translates source -> target, `backward` target -> source, and
    `classifier` was trained on the target domain; `limit` keeps the first N test images.
    """
    source, target = source_and_target(forward.graph)
    size = image_size(forward.graph)
    images, labels = read_domain(data, source, domain(source).test_split, size, limit)
    translated = translate(forward, images)
    reconstructed = translate(backward, translated)
    preserved = predictions(classifier, translated) == labels
    untranslated = predictions(classifier, images) == labels
    return {
        f"{source}_to_{target}_label_preservation": round(float(preserved.mean()), 4),
        f"{source}_to_{target}_untranslated_accuracy": round(float(untranslated.mean()), 4),
        f"{source}_cycle_l1": round(float(np.abs(reconstructed - images).mean() / 2), 4),
    }


def quality(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> Quality:
    """Label preservation of the backend's direction on the first `options["examples"]` source test
    images: the metric reduced precisions must keep. The judge, the target domain's classifier, runs
    on PyTorch whatever backend is being measured."""
    source, target = source_and_target(backend.graph)
    reference = judge(spec, target)
    classifier = open_backend(reference, "torch")
    images, labels = read_domain(Path(options["data"]), source, domain(source).test_split, image_size(backend.graph),
                                 options["examples"])
    preserved = predictions(classifier, translate(backend, images)) == labels
    description = (f"share of the first {len(labels)} {source} test images, translated to {target}, that {reference} "
                   f"classifies as their true digit")
    return Quality(f"{source}_to_{target}_label_preservation", float(preserved.mean()), higher_is_better=True,
                   examples=len(labels), description=description)


def _graph_backends(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> dict[str, Backend]:
    """A backend per graph, keyed by source domain, on the same kind of backend as `backend`."""
    weights = str(options["weights"]) if options.get("weights") else None
    reference = options.get("model") or spec.name
    backends = {}
    for graph in spec.graphs:
        opened = backend if graph.name == backend.graph.name else \
            open_backend(reference, backend.name, graph=graph.name, weights=weights)
        backends[source_and_target(graph)[0]] = opened
    return backends


def evaluate(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> dict[str, float]:
    by_source = _graph_backends(spec, backend, options)
    metrics: dict[str, float] = {}
    for source, forward in by_source.items():
        target = source_and_target(forward.graph)[1]
        if target not in by_source:
            raise ZooError(f"model '{spec.name}' has no graph translating {target} back to {source}, "
                           f"so the cycle error cannot be measured")
        reference = judge(spec, target)
        classifier = open_backend(reference, backend.name)
        metrics.update(translation_metrics(forward, by_source[target], classifier, Path(options["data"])))
    return metrics


def run(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> RunResult:
    """Translate `--image` (writes the translation), or `--n` test images of the source domain
    (writes a grid of inputs, each beside its translation)."""
    graph = backend.graph
    source, target = source_and_target(graph)
    size = image_size(graph)
    if options.get("image"):
        image = load_picture(Path(options["image"]), size)  # the classifiers' reader: the same layout
        path = Path(options.get("output") or f"{spec.name}-{graph.name}.png")
        save_grid(to_uint8(translate(backend, image)), path, columns=1)
        return RunResult(
            data={"file": str(path), "image": str(options["image"]), "source": source, "target": target, "graph": graph.name},
            note=f"translated {options['image']} from {source} to {target} style ({spec.name} {graph.name}, {backend.name}): {path}",
        )
    from zoo.data import data_root

    data = data_root(options.get("data"))
    images, _ = read_domain(data, source, domain(source).test_split, size)
    count = options.get("n") or 16
    if not 1 <= count <= len(images):
        raise ZooError(f"--n {count} is outside 1..{len(images)} (the {source} test images)")
    chosen = np.random.default_rng(options.get("seed") or 0).choice(len(images), count, replace=False)
    inputs = images[np.sort(chosen)]
    pairs = np.stack([inputs, translate(backend, inputs)], axis=1).reshape(-1, *inputs.shape[1:])
    path = Path(options.get("output") or f"{spec.name}-{graph.name}.png")
    save_grid(to_uint8(pairs), path, columns=2 * min(GRID_PAIRS_PER_ROW, count))
    seed = options.get("seed") or 0
    return RunResult(
        data={"file": str(path), "images": count, "seed": seed, "source": source, "target": target, "graph": graph.name,
              "test_indices": np.sort(chosen).tolist()},
        note=f"wrote {count} {source} test images (seed {seed}), each beside its {target}-style "
             f"translation ({spec.name} {graph.name}, {backend.name}), to {path}",
    )
