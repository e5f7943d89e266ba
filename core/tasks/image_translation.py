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

Three things are measured per direction, each beside the figure for the
untranslated input:
- label preservation: a digit classifier trained on the target domain reads
  the translations (the spec names one per domain in `task_config["judges"]`);
- FID in that classifier's feature space, translations against the target
  domain's real test images;
- realism: the share of translations that a domain judge
  (`task_config["domain_judge"]`, a classifier over `zoo.data.DOMAIN_CLASSES`
  trained with random blur and contrast) calls the target domain. It is also
  shown for a no-learning filter (MNIST blurred, USPS contrast-stretched):
  label preservation alone rewards an identity map, and a plain blur fools a
  judge that looks only at stroke texture, so a translation counts where it
  beats both.
Judges are registry references, run on the same kind of backend as the translator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data import DOMAIN_CLASSES, mnist_frame, read_mnist, read_usps, to_unit_range
from zoo.errors import ZooError
from zoo.images import save_grid, to_uint8
from zoo.runtime import Backend, open_backend
from zoo.specs import GraphSpec, ModelSpec
from zoo.tasks import Quality, RunResult
from zoo.tasks.image_classification import load_picture
from zoo.tasks.image_generation import classifier_features, feature_backend
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
GRID_TRIPLES_PER_ROW = 4


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


def domain_judge(spec: ModelSpec) -> str | None:
    """The classifier over DOMAIN_CLASSES that judges a translation's realism, as the spec names it
    (`task_config["domain_judge"]`); None leaves realism unmeasured."""
    return spec.task_config.get("domain_judge")


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


def gaussian_blur(images: np.ndarray, sigma: float = 1.0, radius: int = 3) -> np.ndarray:
    """(N, 1, H, W) images in [-1, 1] blurred by a separable Gaussian over the black background."""
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-offsets**2 / (2 * sigma**2))
    kernel /= kernel.sum()
    grey = np.pad((images + 1) / 2, ((0, 0), (0, 0), (radius, radius), (radius, radius)))
    height, width = images.shape[-2:]
    rows = sum(w * grey[..., :, i : i + width] for i, w in enumerate(kernel))
    blurred = sum(w * rows[..., i : i + height, :] for i, w in enumerate(kernel))
    return (blurred * 2 - 1).astype(np.float32)


def contrast_stretch(images: np.ndarray, low: float = 0.2, high: float = 0.8) -> np.ndarray:
    """(N, 1, H, W) images in [-1, 1] with grey levels [low, high] stretched to [0, 1]: crisper strokes."""
    grey = np.clip(((images + 1) / 2 - low) / (high - low), 0, 1)
    return (grey * 2 - 1).astype(np.float32)


# The no-learning filter that imitates each target domain's look, which a translation has to beat.
NO_LEARNING_FILTERS = {
    "usps": ("a Gaussian blur (sigma 1 pixel)", gaussian_blur),
    "mnist": ("a contrast stretch (grey levels 0.2-0.8 to 0-1)", contrast_stretch),
}


def metric_descriptions(source: str, target: str, classifier: str, domain_judge: str | None = None) -> dict[str, str]:
    """What `translation_metrics` measures for one direction; `classifier` reads digits of the target
    domain and `domain_judge`, when given, tells the domains apart."""
    a, b = domain(source), domain(target)
    direction = f"{source}_to_{target}"
    descriptions = {
        f"{direction}_label_preservation": (
            f"share of {a.test_description}, translated to {target} style, that {classifier} (trained on {target}) "
            f"classifies as their true digit"
        ),
        f"{direction}_untranslated_accuracy": (
            f"the baseline: {classifier}'s accuracy on the same {source} images untranslated"
        ),
        f"{target}_judge_accuracy": f"{classifier}'s accuracy on {b.test_description}: what real {target} digits score",
        f"{direction}_fid": (
            f"Frechet distance between {classifier}'s penultimate features of the translations and of "
            f"{b.test_description}; lower is better"
        ),
        f"{direction}_untranslated_fid": f"the same distance for the {source} images untranslated",
        f"{target}_floor_fid": (
            f"the same distance for as many {target} training images: what real {target} digits score"
        ),
        f"{source}_cycle_l1": (
            f"cycle-reconstruction error: mean |x - {source}({target}(x))| over {a.test_description}, "
            f"grey levels in [0, 1]"
        ),
    }
    if domain_judge:
        descriptions.update({
            f"{direction}_realism": (
                f"share of the translations that the domain judge {domain_judge} (MNIST or USPS, trained with random "
                f"blur and contrast) calls {target}"
            ),
            f"{direction}_untranslated_realism": f"the same share for the {source} images untranslated",
            f"{direction}_filter_realism": (
                f"the same share for the {source} images after {NO_LEARNING_FILTERS[target][0]}, a no-learning imitation"
            ),
        })
    return descriptions


def translation_metrics(forward: Backend, backward: Backend, classifier: Backend, data: Path,
                        limit: int | None = None, domain_judge: Backend | None = None) -> dict[str, float]:
    """Label preservation, FID and (with `domain_judge`) realism of one direction, each beside its
    untranslated baseline, and the cycle error (see `metric_descriptions`).

    `forward` translates source -> target, `backward` target -> source;
    `classifier` is the target domain's digit classifier as a "features" graph
    (features, logits) and `domain_judge` a classifier over DOMAIN_CLASSES;
    `limit` keeps the first N test (and training) images of each domain.
    """
    from zoo.metrics import frechet_distance

    source, target = source_and_target(forward.graph)
    size = image_size(forward.graph)
    images, labels = read_domain(data, source, domain(source).test_split, size, limit)
    real, real_labels = read_domain(data, target, domain(target).test_split, size, limit)
    train, _ = read_domain(data, target, domain(target).train_split, size, len(images))
    translated = translate(forward, images)
    reconstructed = translate(backward, translated)
    (translated_features, translated_probabilities), (untranslated_features, untranslated_probabilities), \
        (real_features, real_probabilities), (train_features, _) = (
            classifier_features(classifier, batch) for batch in (translated, images, real, train))
    direction = f"{source}_to_{target}"
    metrics = {
        f"{direction}_label_preservation": _share(translated_probabilities.argmax(1) == labels),
        f"{direction}_untranslated_accuracy": _share(untranslated_probabilities.argmax(1) == labels),
        f"{target}_judge_accuracy": _share(real_probabilities.argmax(1) == real_labels),
        f"{direction}_fid": round(frechet_distance(translated_features, real_features), 4),
        f"{direction}_untranslated_fid": round(frechet_distance(untranslated_features, real_features), 4),
        f"{target}_floor_fid": round(frechet_distance(train_features, real_features), 4),
        f"{source}_cycle_l1": round(float(np.abs(reconstructed - images).mean() / 2), 4),
    }
    if domain_judge is not None:
        filtered = NO_LEARNING_FILTERS[target][1](images)
        target_index = DOMAIN_CLASSES.index(target)
        for name, batch in (("realism", translated), ("untranslated_realism", images), ("filter_realism", filtered)):
            metrics[f"{direction}_{name}"] = _share(predictions(domain_judge, batch) == target_index)
    return metrics


def _share(hits: np.ndarray) -> float:
    return round(float(np.mean(hits)), 4)


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
        classifier = feature_backend(backend.name, judge(spec, target))
        domains = domain_judge(spec)
        metrics.update(translation_metrics(forward, by_source[target], classifier, Path(options["data"]),
                                           domain_judge=open_backend(domains, backend.name) if domains else None))
    return metrics


def run(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> RunResult:
    """Translate `--image` (writes the translation), or `--n` test images of the source domain
    (writes a grid of triples: input, translation, and a real target-domain test image of the same digit)."""
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
    images, labels = read_domain(data, source, domain(source).test_split, size)
    count = options.get("n") or 16
    if not 1 <= count <= len(images):
        raise ZooError(f"--n {count} is outside 1..{len(images)} (the {source} test images)")
    seed = options.get("seed") or 0
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(images), count, replace=False))
    inputs = images[chosen]
    real, real_labels = read_domain(data, target, domain(target).test_split, size)
    examples = np.array([rng.choice(np.flatnonzero(real_labels == label)) for label in labels[chosen]])
    triples = np.stack([inputs, translate(backend, inputs), real[examples]], axis=1).reshape(-1, *inputs.shape[1:])
    path = Path(options.get("output") or f"{spec.name}-{graph.name}.png")
    save_grid(to_uint8(triples), path, columns=3 * min(GRID_TRIPLES_PER_ROW, count))
    return RunResult(
        data={"file": str(path), "images": count, "seed": seed, "source": source, "target": target, "graph": graph.name,
              "test_indices": chosen.tolist(), "target_test_indices": examples.tolist()},
        note=f"wrote {count} {source} test images (seed {seed}), each beside its {target}-style translation and a "
             f"real {target} test image of the same digit ({spec.name} {graph.name}, {backend.name}), to {path}",
    )
