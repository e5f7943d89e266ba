"""`zoo run` and `zoo eval` for image-generation models: sample grids and
held-out sample-quality metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ZooError
from zoo.data import pad_to, read_mnist, to_unit_range
from zoo.images import save_grid, to_uint8
from zoo.metrics import frechet_distance, pooled_pixels
from zoo.runtime import Backend
from zoo.specs import ModelSpec
from zoo.tensors import example_inputs

EVAL_SAMPLES = 2000
GENERATOR_METRIC_DESCRIPTIONS = {
    "heldout_fd_pix8": (
        "Frechet distance between 2,000 samples (latent seed 0) and the 2,000 held-out MNIST images, "
        "on 8x8 average-pooled pixels (64 features; images in [-1, 1]); lower is better"
    ),
    "floor_fd_pix8": (
        "the same distance between the first 2,000 training-split images and the held-out split: "
        "what a perfect generator of this data would score"
    ),
}


# A graph input with this name takes a per-sample truncation psi (StyleGAN's
# truncation trick); it is fed from `--truncation`, 1.0 (no truncation) by default.
TRUNCATION_INPUT = "truncation"


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
    """Held-out sample quality of a 32x32 MNIST generator (see GENERATOR_METRIC_DESCRIPTIONS)."""
    samples = sample_images(backend, count, seed)
    heldout = to_unit_range(pad_to(read_mnist(data, "heldout")[0], samples.shape[-1]))
    train = to_unit_range(pad_to(read_mnist(data, "train")[0][:count], samples.shape[-1]))
    heldout_features = pooled_pixels(heldout)
    return {
        "heldout_fd_pix8": round(frechet_distance(pooled_pixels(samples), heldout_features), 4),
        "floor_fd_pix8": round(frechet_distance(pooled_pixels(train), heldout_features), 4),
    }


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
    from zoo.runtime import open_backend

    names = {g.name for g in spec.graphs}
    if not {"mapping", "synthesis"} <= names:
        raise ZooError(f"model '{spec.name}' has no 'mapping' and 'synthesis' graphs; --style-mix works with models such as stylegan")
    weights = str(options["weights"]) if options.get("weights") else None
    mapping = open_backend(spec, backend.name, options.get("model", spec.name), graph="mapping", weights=weights)
    synthesis = open_backend(spec, backend.name, options.get("model", spec.name), graph="synthesis", weights=weights)
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
    return generator_metrics(backend, options["data"])

