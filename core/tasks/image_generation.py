"""`zoo run` and `zoo eval` for image-generation models: sample grids and
held-out sample-quality metrics."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data import pad_to, read_mnist, to_unit_range
from zoo.errors import ZooError
from zoo.images import save_grid, to_uint8
from zoo.metrics import class_coverage, frechet_distance, pooled_pixels
from zoo.runtime import Backend, open_backend
from zoo.specs import ModelSpec
from zoo.tasks import Quality
from zoo.tensors import example_inputs

EVAL_SAMPLES = 2000
# The classifier whose "features" graph (penultimate features and logits) scores every generator.
FEATURE_MODEL = "cnn"
FEATURE_GRAPH = "features"
GENERATOR_METRIC_DESCRIPTIONS = {
    "heldout_fd_pix8": (
        "Frechet distance between 2,000 samples (latent seed 0) and the 2,000 held-out MNIST images, "
        "on 8x8 average-pooled pixels (64 features; images in [-1, 1]); lower is better"
    ),
    "floor_fd_pix8": (
        "the same distance between the first 2,000 training-split images and the held-out split: a reference "
        "from real digits, not a bound (two finite samples carry sampling noise, so a generator can score below it)"
    ),
    "fid_cnn": (
        "FID-CNN: Frechet distance between the cnn classifier's 128 penultimate-layer features of 2,000 samples "
        "(latent seed 0) and of the 2,000 held-out MNIST images; lower is better; not comparable to Inception FID"
    ),
    "floor_fid_cnn": "the same distance between the first 2,000 training-split images and the held-out split",
    "classes_present": "digit classes the cnn predicts for at least one of the 2,000 samples (10 is all)",
    "min_class_share": "share of samples in the rarest predicted class (0.1 is perfectly balanced)",
    "mean_confidence": "mean top-class probability the cnn gives the samples (held-out real digits score about 0.99)",
}

VAE_METRIC_DESCRIPTIONS = {
    "heldout_neg_elbo": (
        "negative ELBO in nats per image on the 2,000 held-out MNIST images (32x32, grey levels in [0, 1] under a "
        "Bernoulli likelihood; one posterior sample per image, eps seed 0); lower is better"
    ),
    "heldout_reconstruction_nats": "its reconstruction term: -log p(x | z), nats per image",
    "heldout_kl_nats": "its KL term: KL(q(z | x) || N(0, I)), nats per image",
}


# A graph input with this name takes a per-sample truncation psi (StyleGAN's
# truncation trick); it is fed from `--truncation`, 1.0 (no truncation) by default.
TRUNCATION_INPUT = "truncation"


# What one `zoo run` may hold in memory for its samples and their grid.
SAMPLE_MEMORY_BUDGET = 2 * 1024**3


def check_sample_count(graph, count: int) -> None:
    """Refuse an `--n` whose inputs, images and PNG grid would not fit in SAMPLE_MEMORY_BUDGET."""
    from zoo.tensors import concrete_shape

    sizes = graph.axis_sizes(1)

    def elements(tensors) -> int:
        return sum(int(np.prod(concrete_shape(t, sizes))) for t in tensors)

    # inputs drawn as float64 then cast; outputs as float32, concatenated, as uint8, and tiled at scale 2
    per_sample = 16 * elements(graph.inputs) + (8 + 1 + 8) * elements(graph.outputs)
    largest = SAMPLE_MEMORY_BUDGET // max(per_sample, 1)
    if count > largest:
        raise ZooError(
            f"--n {count} would need about {count * per_sample / 1024**3:.1f} GiB for the samples and their grid; "
            f"ask for at most {largest} (draw more with several runs and different --seed values)"
        )


def sample_images(backend: Backend, count: int, seed: int, chunk: int = 250, truncation: float = 1.0) -> np.ndarray:
    """`count` images from a generator graph, its random inputs drawn from `seed`."""
    feeds = example_inputs(backend.graph, count, seed)
    if TRUNCATION_INPUT in feeds:
        feeds[TRUNCATION_INPUT] = np.full_like(feeds[TRUNCATION_INPUT], truncation)
    output = backend.graph.outputs[0].name
    parts = [
        backend.run({name: array[start : start + chunk] for name, array in feeds.items()})[output]
        for start in range(0, count, chunk)
    ]
    return np.concatenate(parts)


def generator_metrics(backend: Backend, data: Path, count: int = EVAL_SAMPLES, seed: int = 0) -> dict[str, float]:
    """Held-out sample quality of a 32x32 MNIST generator (see GENERATOR_METRIC_DESCRIPTIONS).

    The classifier metrics run the shipped cnn on the same kind of backend as
    the generator (so ONNX evaluation never imports torch); without an
    installed cnn they are left out with a warning.
    """
    samples = sample_images(backend, count, seed)
    heldout = to_unit_range(pad_to(read_mnist(data, "heldout")[0], samples.shape[-1]))
    train = to_unit_range(pad_to(read_mnist(data, "train")[0][:count], samples.shape[-1]))
    heldout_features = pooled_pixels(heldout)
    metrics = {
        "heldout_fd_pix8": round(frechet_distance(pooled_pixels(samples), heldout_features), 4),
        "floor_fd_pix8": round(frechet_distance(pooled_pixels(train), heldout_features), 4),
    }
    try:
        classifier = feature_backend(backend.name)
    except ZooError as exc:
        print(f"zoo: warning: no classifier metrics (FID-CNN, coverage): {exc}", file=sys.stderr)
        return metrics
    return {**metrics, **classifier_metrics(classifier, samples, heldout, train)}


def feature_backend(kind: str) -> Backend:
    """The shipped cnn's "features" graph on backend `kind`, through the public registry."""
    return open_backend(FEATURE_MODEL, kind, graph=FEATURE_GRAPH)  # a missing or truncated file is a WeightsError


def fit_to(images: np.ndarray, size: int) -> np.ndarray:
    """Centre-pad (with the -1 background) or centre-crop (N, 1, H, W) images to size x size."""
    height = images.shape[-1]
    if height < size:
        before = (size - height) // 2
        return np.pad(images, ((0, 0), (0, 0), (before, size - height - before), (before, size - height - before)),
                      constant_values=-1.0)
    start = (height - size) // 2
    return images[:, :, start : start + size, start : start + size]


def classifier_features(classifier: Backend, images: np.ndarray, chunk: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features and class probabilities of images in [-1, 1]."""
    images = fit_to(images.astype(np.float32), classifier.graph.inputs[0].shape[-1])
    name = classifier.graph.inputs[0].name
    parts = [classifier.run({name: images[i : i + chunk]}) for i in range(0, len(images), chunk)]
    features = np.concatenate([p["features"] for p in parts])
    logits = np.concatenate([p["logits"] for p in parts])
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return features, exp / exp.sum(axis=1, keepdims=True)


def classifier_metrics(classifier: Backend, samples: np.ndarray, heldout: np.ndarray, train: np.ndarray) -> dict[str, float]:
    """FID-CNN, its floor, class coverage and confidence (GENERATOR_METRIC_DESCRIPTIONS)."""
    sample_features, probabilities = classifier_features(classifier, samples)
    heldout_features, _ = classifier_features(classifier, heldout)
    train_features, _ = classifier_features(classifier, train)
    coverage = class_coverage(probabilities)
    return {
        "fid_cnn": round(frechet_distance(sample_features, heldout_features), 4),
        "floor_fid_cnn": round(frechet_distance(train_features, heldout_features), 4),
        "classes_present": coverage["classes_present"],
        "min_class_share": round(coverage["min_class_share"], 4),
        "mean_confidence": round(coverage["mean_confidence"], 4),
    }


def vae_metrics(encoder: Backend, decoder: Backend, data: Path, seed: int = 0, chunk: int = 500) -> dict[str, float]:
    """The negative ELBO on the held-out split from an encoder graph (image -> mu, logvar) and a decoder
    graph (z -> ..., logits), with eps drawn by numpy so every backend gives the same number."""
    images = to_unit_range(pad_to(read_mnist(data, "heldout")[0], encoder.graph.inputs[0].shape[-1]))
    rng = np.random.default_rng(seed)
    reconstruction, kl = [], []
    for start in range(0, len(images), chunk):
        batch = images[start : start + chunk]
        posterior = encoder.run({encoder.graph.inputs[0].name: batch})
        mu, logvar = posterior["mu"].astype(np.float64), posterior["logvar"].astype(np.float64)
        z = mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape)
        logits = decoder.run({decoder.graph.inputs[0].name: z.astype(np.float32)})["logits"].astype(np.float64)
        targets = (batch.astype(np.float64) + 1) / 2
        # Bernoulli negative log-likelihood from logits: softplus(l) - x * l, summed over pixels.
        reconstruction.append((np.logaddexp(0.0, logits) - targets * logits).reshape(len(batch), -1).sum(axis=1))
        kl.append(-0.5 * (1 + logvar - mu**2 - np.exp(logvar)).sum(axis=1))
    reconstruction_nats, kl_nats = np.concatenate(reconstruction).mean(), np.concatenate(kl).mean()
    return {
        "heldout_neg_elbo": round(float(reconstruction_nats + kl_nats), 2),
        "heldout_reconstruction_nats": round(float(reconstruction_nats), 2),
        "heldout_kl_nats": round(float(kl_nats), 2),
    }


def has_encoder(spec: ModelSpec) -> bool:
    """A VAE-style model: an "encoder" graph giving mu and logvar, a first graph giving logits."""
    names = {graph.name: graph for graph in spec.graphs}
    return "encoder" in names and {t.name for t in names["encoder"].outputs} >= {"mu", "logvar"} and \
        "logits" in {t.name for t in spec.graphs[0].outputs}


def quality(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> Quality:
    """Held-out Frechet distance of `options["examples"]` samples: the metric reduced precisions must keep."""
    count = options["examples"]
    value = generator_metrics(backend, Path(options["data"]), count)["heldout_fd_pix8"]
    description = f"Frechet distance of {count} samples (latent seed 0) to held-out MNIST, 8x8 pooled pixels"
    return Quality("heldout_fd_pix8", value, higher_is_better=False, examples=count, description=description)


def run(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> str:
    truncation = options.get("truncation")
    has_truncation = any(t.name == TRUNCATION_INPUT for t in backend.graph.inputs)
    if truncation is not None and not has_truncation:
        raise ZooError(f"model '{spec.name}' has no truncation input; --truncation works with models such as stylegan")
    truncation = 1.0 if truncation is None else truncation
    if options.get("style_mix"):
        images, message = style_mixing_grid(spec, backend, options, truncation)
        columns = int(np.sqrt(len(images)))
    else:
        check_sample_count(backend.graph, options["n"])
        images, columns = sample_images(backend, options["n"], options["seed"], truncation=truncation), None
        message = f"{len(images)} samples"
    value_range = tuple(spec.graph().postprocessing.get(spec.graph().outputs[0].name, {}).get("range", (-1.0, 1.0)))
    path = save_grid(to_uint8(images, value_range), Path(options["output"] or f"{spec.name}-samples.png"), columns)
    details = f"seed {options['seed']}" + (f", truncation {truncation:g}" if has_truncation else "")
    return f"wrote {message} from {spec.name} ({backend.name}, {details}) to {path}"


def style_mixing_grid(spec: ModelSpec, backend: Backend, options: dict[str, Any], truncation: float):
    """StyleGAN's style-mixing figure from a model's "mapping" and "synthesis" graphs.

    k row sources and k column sources (k + 1 = floor(sqrt(n))); the top row
    shows the column sources, the left column the row sources, and cell (i, j)
    takes layers [0, mix_layer) of its w+ from row source i and the rest from
    column source j. All cells share one noise draw, so only styles differ.
    """
    names = {g.name for g in spec.graphs}
    if not {"mapping", "synthesis"} <= names:
        raise ZooError(f"model '{spec.name}' has no 'mapping' and 'synthesis' graphs; --style-mix works with models such as stylegan")
    weights = str(options["weights"]) if options.get("weights") else None
    mapping = open_backend(options.get("model", spec.name), backend.name, graph="mapping", weights=weights)
    synthesis = open_backend(options.get("model", spec.name), backend.name, graph="synthesis", weights=weights)
    num_ws = synthesis.graph.inputs[0].shape[1]
    mix_layer = options.get("mix_layer")
    mix_layer = num_ws // 2 if mix_layer is None else mix_layer
    if not 0 <= mix_layer <= num_ws:
        raise ZooError(f"--mix-layer {mix_layer} is outside 0..{num_ws}; '{spec.name}' has {num_ws} style layers")
    k = max(1, int(np.sqrt(max(options["n"], 4))) - 1)
    feeds = example_inputs(mapping.graph, 2 * k, options["seed"])
    feeds[TRUNCATION_INPUT] = np.full_like(feeds[TRUNCATION_INPUT], truncation)
    w = next(iter(mapping.run(feeds).values()))
    rows, cols = w[:k], w[k:]
    row_ws = np.repeat(rows[:, None, None], k, axis=1)  # (k, k, 1, w_dim)
    col_ws = np.repeat(cols[None, :, None], k, axis=0)
    layer = np.arange(num_ws)[None, None, :, None]
    mixed = np.where(layer < mix_layer, row_ws, col_ws).reshape(k * k, num_ws, -1)
    plain = np.repeat(w[:, None], num_ws, axis=1)  # sources themselves: one w for every layer
    ws = np.concatenate([plain, mixed]).astype(np.float32)
    noise = example_inputs(synthesis.graph, 1, options["seed"])
    ws_name = synthesis.graph.inputs[0].name
    feeds = {name: np.repeat(array, len(ws), axis=0) for name, array in noise.items() if name != ws_name}
    images = next(iter(synthesis.run({ws_name: ws, **feeds}).values()))
    sources_row, sources_col, cells = images[:k], images[k : 2 * k], images[2 * k :].reshape(k, k, *images.shape[1:])
    blank = np.full_like(images[:1], images.min())
    layout = [np.concatenate([blank, sources_col])]
    layout += [np.concatenate([sources_row[i : i + 1], cells[i]]) for i in range(k)]
    grid_images = np.concatenate(layout)
    return grid_images, (f"a {k}x{k} style-mixing grid (the first {mix_layer} of {num_ws} layers' styles from the rows, "
                         "the rest from the columns)")


def evaluate(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> dict[str, float]:
    metrics = generator_metrics(backend, options["data"])
    if has_encoder(spec):
        weights = str(options["weights"]) if options.get("weights") else None
        encoder = open_backend(options.get("model") or spec.name, backend.name, graph="encoder", weights=weights)
        metrics.update(vae_metrics(encoder, backend, options["data"]))
    return metrics

