"""`zoo run` and `zoo eval` for image-generation models: sample grids and
held-out sample-quality metrics.

What the task needs to know about a model is declared in its spec: the
classifier that judges its samples (`task_config["judge"]`) and, by graph
role, an encoder (VAE-style models) or mapping and synthesis graphs
(style mixing). Nothing is found by a model's or a graph's name.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data import pad_to, read_mnist, to_unit_range
from zoo.errors import ZooError
from zoo.images import save_grid, to_uint8
from zoo.metrics import class_coverage, frechet_distance, pooled_pixels, precision_recall
from zoo.runtime import Backend, open_backend
from zoo.specs import GraphSpec, ModelSpec
from zoo.tasks import Quality, RunResult
from zoo.tensors import fixed_or_default, run_inputs

EVAL_SAMPLES = 2000
# A generator names the classifier that judges it in `task_config["judge"]` (a registry reference); the
# judge's graph with this role returns (penultimate features, logits) and scores every sample.
JUDGE_ROLE = "features"
# A VAE-style generator has a graph with this role: image -> (posterior mean, log-variance).
ENCODER_ROLE = "encoder"
# StyleGAN-style generators: a mapping graph (z, ... -> w) and a synthesis graph (w+, noise -> image).
MAPPING_ROLE, SYNTHESIS_ROLE = "mapping", "synthesis"


def judge(spec: ModelSpec) -> str | None:
    """The classifier that judges a generator's samples, as its spec's `task_config` names it."""
    return spec.task_config.get("judge")


def generator_metric_descriptions(judge: str | None) -> dict[str, str]:
    """What each metric of `generator_metrics` means; the classifier metrics are named after `judge`."""
    descriptions = {
        "heldout_fd_pix8": (
            "Frechet distance between 2,000 samples (latent seed 0) and the 2,000 held-out MNIST images, "
            "on 8x8 average-pooled pixels (64 features; images in [-1, 1]); lower is better"
        ),
        "floor_fd_pix8": (
            "the same distance between the first 2,000 training-split images and the held-out split: a reference "
            "from real digits, not a bound (two finite samples carry sampling noise, so a generator can score below it)"
        ),
    }
    if judge is None:
        return descriptions
    return {
        **descriptions,
        fid_metric(judge): (
            f"FID-{judge.upper()}: Frechet distance between the {judge} classifier's penultimate-layer features of "
            f"2,000 samples (latent seed 0) and of the 2,000 held-out MNIST images; lower is better; "
            f"not comparable to Inception FID"
        ),
        f"floor_{fid_metric(judge)}": "the same distance between the first 2,000 training-split images and the held-out split",
        f"precision_{suffix(judge)}": (
            f"precision (Kynkaanniemi et al. 2019, k = 3) in the same {judge} feature space: share of the 2,000 samples "
            f"inside the held-out images' k-nearest-neighbour manifold; how many samples look real; higher is better"
        ),
        f"floor_precision_{suffix(judge)}": "the same share for the first 2,000 training-split images: what real digits score",
        f"recall_{suffix(judge)}": (
            f"recall (Kynkaanniemi et al. 2019, k = 3) in the same {judge} feature space: share of the 2,000 held-out "
            f"images inside the samples' k-nearest-neighbour manifold; how much of the data's variety they cover"
        ),
        f"floor_recall_{suffix(judge)}": "the same share with the first 2,000 training-split images in place of the samples",
        "classes_present": f"digit classes the {judge} predicts for at least one of the 2,000 samples (10 is all)",
        "min_class_share": "share of samples in the rarest predicted class (0.1 is perfectly balanced)",
        "mean_confidence": f"mean top-class probability the {judge} gives the samples (held-out real digits score about 0.99)",
    }


def suffix(judge: str) -> str:
    """`judge` as a metric-name suffix: <model>[_<variant>]."""
    return judge.replace(":", "_").replace("-", "_")


def fid_metric(judge: str) -> str:
    """The name of the Frechet distance on `judge`'s features: fid_<model>[_<variant>]."""
    return "fid_" + suffix(judge)


VAE_METRIC_DESCRIPTIONS = {
    "heldout_neg_elbo": (
        "negative ELBO in nats per image on the 2,000 held-out MNIST images (32x32, grey levels in [0, 1] under a "
        "Bernoulli likelihood; one posterior sample per image, eps seed 0); lower is better"
    ),
    "heldout_reconstruction_nats": "its reconstruction term: -log p(x | z), nats per image",
    "heldout_kl_nats": "its KL term: KL(q(z | x) || N(0, I)), nats per image",
}


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


def sample_images(backend: Backend, count: int, seed: int, chunk: int = 250,
                  inputs: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """`count` images from a generator graph, its random inputs drawn from `seed` (except those `inputs` fixes)."""
    feeds = run_inputs(backend.graph, count, seed, inputs)
    output = backend.graph.outputs[0].name
    parts = [
        backend.run({name: array[start : start + chunk] for name, array in feeds.items()})[output]
        for start in range(0, count, chunk)
    ]
    return np.concatenate(parts)


def generator_metrics(backend: Backend, data: Path, count: int = EVAL_SAMPLES, seed: int = 0,
                      judge: str | None = None) -> dict[str, float]:
    """Held-out sample quality of a 32x32 MNIST generator (see `generator_metric_descriptions`).

    The classifier metrics run `judge` (a registry reference) on the same
    kind of backend as the generator (so ONNX evaluation never imports
    torch); without a judge, or when it is not installed, they are left out
    (with a warning in the second case).
    """
    samples = sample_images(backend, count, seed)
    heldout = to_unit_range(pad_to(read_mnist(data, "heldout")[0], samples.shape[-1]))
    train = to_unit_range(pad_to(read_mnist(data, "train")[0][:count], samples.shape[-1]))
    heldout_features = pooled_pixels(heldout)
    metrics = {
        "heldout_fd_pix8": round(frechet_distance(pooled_pixels(samples), heldout_features), 4),
        "floor_fd_pix8": round(frechet_distance(pooled_pixels(train), heldout_features), 4),
    }
    if judge is None:
        return metrics
    try:
        classifier = feature_backend(backend.name, judge)
    except ZooError as exc:
        print(f"zoo: warning: no classifier metrics (FID, coverage): {exc}", file=sys.stderr)
        return metrics
    return {**metrics, **classifier_metrics(classifier, samples, heldout, train, judge)}


def feature_backend(kind: str, judge: str) -> Backend:
    """The judge's graph of role "features" on backend `kind`, through the public registry."""
    from zoo.api import resolve

    resolved = resolve(judge)  # a missing or truncated file is a WeightsError
    graph = resolved.spec.graph_with_role(JUDGE_ROLE)
    if graph is None:
        raise ZooError(f"the judge '{judge}' has no graph of role '{JUDGE_ROLE}' (features and logits); "
                       f"name a classifier that declares one")
    return open_backend(resolved, kind, graph=graph.name)


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
    """Penultimate features and class probabilities of images in [-1, 1] from a "features" graph,
    whose outputs are (features, logits)."""
    images = fit_to(images.astype(np.float32), classifier.graph.inputs[0].shape[-1])
    name = classifier.graph.inputs[0].name
    features_name, logits_name = (t.name for t in classifier.graph.outputs[:2])
    parts = [classifier.run({name: images[i : i + chunk]}) for i in range(0, len(images), chunk)]
    features = np.concatenate([p[features_name] for p in parts])
    logits = np.concatenate([p[logits_name] for p in parts])
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return features, exp / exp.sum(axis=1, keepdims=True)


def classifier_metrics(classifier: Backend, samples: np.ndarray, heldout: np.ndarray, train: np.ndarray,
                       judge: str) -> dict[str, float]:
    """The Frechet distance on the judge's features, precision and recall, their floors, class coverage
    and confidence (`generator_metric_descriptions`)."""
    sample_features, probabilities = classifier_features(classifier, samples)
    heldout_features, _ = classifier_features(classifier, heldout)
    train_features, _ = classifier_features(classifier, train)
    coverage = class_coverage(probabilities)
    precision, recall = precision_recall(heldout_features, sample_features)
    floor_precision, floor_recall = precision_recall(heldout_features, train_features)
    return {
        fid_metric(judge): round(frechet_distance(sample_features, heldout_features), 4),
        f"floor_{fid_metric(judge)}": round(frechet_distance(train_features, heldout_features), 4),
        f"precision_{suffix(judge)}": round(precision, 4),
        f"floor_precision_{suffix(judge)}": round(floor_precision, 4),
        f"recall_{suffix(judge)}": round(recall, 4),
        f"floor_recall_{suffix(judge)}": round(floor_recall, 4),
        "classes_present": coverage["classes_present"],
        "min_class_share": round(coverage["min_class_share"], 4),
        "mean_confidence": round(coverage["mean_confidence"], 4),
    }


def vae_metrics(encoder: Backend, decoder: Backend, data: Path, seed: int = 0, chunk: int = 500) -> dict[str, float]:
    """The negative ELBO on the held-out split from an encoder graph (image -> mu, logvar, in that order) and
    a decoder graph (z -> ..., logits), with eps drawn by numpy so every backend gives the same number."""
    mu_name, logvar_name = (t.name for t in encoder.graph.outputs[:2])
    images = to_unit_range(pad_to(read_mnist(data, "heldout")[0], encoder.graph.inputs[0].shape[-1]))
    rng = np.random.default_rng(seed)
    reconstruction, kl = [], []
    for start in range(0, len(images), chunk):
        batch = images[start : start + chunk]
        posterior = encoder.run({encoder.graph.inputs[0].name: batch})
        mu, logvar = posterior[mu_name].astype(np.float64), posterior[logvar_name].astype(np.float64)
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


def quality(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> Quality:
    """Held-out Frechet distance of `options["examples"]` samples: the metric reduced precisions must keep."""
    count = options["examples"]
    value = generator_metrics(backend, Path(options["data"]), count)["heldout_fd_pix8"]
    description = f"Frechet distance of {count} samples (latent seed 0) to held-out MNIST, 8x8 pooled pixels"
    return Quality("heldout_fd_pix8", value, higher_is_better=False, examples=count, description=description)


def run(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> RunResult:
    inputs = options.get("inputs") or {}
    if options.get("style_mix"):
        images, message = style_mixing_grid(spec, backend, options)
        columns = int(np.sqrt(len(images)))
    else:
        check_sample_count(backend.graph, options["n"])
        images, columns = sample_images(backend, options["n"], options["seed"], inputs=inputs), None
        message = f"{len(images)} samples"
    value_range = tuple(spec.graph().postprocessing.get(spec.graph().outputs[0].name, {}).get("range", (-1.0, 1.0)))
    path = save_grid(to_uint8(images, value_range), Path(options["output"] or f"{spec.name}-samples.png"), columns)
    fixed = describe_fixed(backend.graph, inputs)
    details = ", ".join([f"seed {options['seed']}", *fixed])
    return RunResult(
        data={"file": str(path), "samples": len(images), "seed": options["seed"], "fixed_inputs": fixed},
        note=f"wrote {message} from {spec.name} ({backend.name}, {details}) to {path}",
    )


def describe_fixed(graph: GraphSpec, inputs: dict[str, np.ndarray]) -> list[str]:
    """"name value" for each input not drawn at random: fixed from the command line or by its declared default."""
    described = []
    for tensor in graph.inputs:
        value = fixed_or_default(graph, tensor.name, inputs)
        if value is not None:
            array = np.asarray(value)
            described.append(f"{tensor.name} {array.item():g}" if array.size == 1 else f"{tensor.name} {array.tolist()}")
    return described


def style_mixing_grid(spec: ModelSpec, backend: Backend, options: dict[str, Any]):
    """StyleGAN's style-mixing figure from a model's graphs of roles "mapping" and "synthesis".

    k row sources and k column sources (k + 1 = floor(sqrt(n))); the top row
    shows the column sources, the left column the row sources, and cell (i, j)
    takes layers [0, mix_layer) of its w+ from row source i and the rest from
    column source j. All cells share one noise draw, so only styles differ.
    The mapping graph's first output is w; the synthesis graph's first input is w+.
    """
    mapping_graph, synthesis_graph = spec.graph_with_role(MAPPING_ROLE), spec.graph_with_role(SYNTHESIS_ROLE)
    if mapping_graph is None or synthesis_graph is None:
        raise ZooError(f"model '{spec.name}' has no graphs of roles '{MAPPING_ROLE}' and '{SYNTHESIS_ROLE}', "
                       f"which a style-mixing grid needs")
    weights = str(options["weights"]) if options.get("weights") else None
    reference = options.get("model") or spec.name
    mapping = open_backend(reference, backend.name, graph=mapping_graph.name, weights=weights)
    synthesis = open_backend(reference, backend.name, graph=synthesis_graph.name, weights=weights)
    num_ws = synthesis.graph.inputs[0].shape[1]
    mix_layer = options.get("mix_layer")
    mix_layer = num_ws // 2 if mix_layer is None else mix_layer
    if not 0 <= mix_layer <= num_ws:
        raise ZooError(f"--mix-layer {mix_layer} is outside 0..{num_ws}; '{spec.name}' has {num_ws} style layers")
    k = max(1, int(np.sqrt(max(options["n"], 4))) - 1)
    inputs = options.get("inputs") or {}
    w = next(iter(mapping.run(run_inputs(mapping.graph, 2 * k, options["seed"], inputs)).values()))
    rows, cols = w[:k], w[k:]
    row_ws = np.repeat(rows[:, None, None], k, axis=1)  # (k, k, 1, w_dim)
    col_ws = np.repeat(cols[None, :, None], k, axis=0)
    layer = np.arange(num_ws)[None, None, :, None]
    mixed = np.where(layer < mix_layer, row_ws, col_ws).reshape(k * k, num_ws, -1)
    plain = np.repeat(w[:, None], num_ws, axis=1)  # sources themselves: one w for every layer
    ws = np.concatenate([plain, mixed]).astype(np.float32)
    noise = run_inputs(synthesis.graph, 1, options["seed"], inputs)
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
    metrics = generator_metrics(backend, options["data"], judge=judge(spec))
    encoder_graph = spec.graph_with_role(ENCODER_ROLE)
    if encoder_graph is not None:
        weights = str(options["weights"]) if options.get("weights") else None
        encoder = open_backend(options.get("model") or spec.name, backend.name, graph=encoder_graph.name,
                               weights=weights)
        metrics.update(vae_metrics(encoder, backend, options["data"]))
    return metrics
