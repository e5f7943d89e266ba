"""`zoo run` and `zoo eval` for image-generation models: sample grids and
held-out sample-quality metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.data import pad_to, read_mnist, to_unit_range
from zoo.images import save_grid, to_uint8
from zoo.metrics import frechet_distance, pooled_pixels
from zoo.runtime import Backend
from zoo.specs import ModelSpec
from zoo.tasks import Quality
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


def sample_images(backend: Backend, count: int, seed: int, chunk: int = 250) -> np.ndarray:
    """`count` images from a generator graph, its inputs drawn from `seed`."""
    feeds = example_inputs(backend.graph, count, seed)
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


def quality(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> Quality:
    """Held-out Frechet distance of `options["examples"]` samples: the metric reduced precisions must keep."""
    count = options["examples"]
    value = generator_metrics(backend, Path(options["data"]), count)["heldout_fd_pix8"]
    description = f"Frechet distance of {count} samples (latent seed 0) to held-out MNIST, 8x8 pooled pixels"
    return Quality("heldout_fd_pix8", value, higher_is_better=False, examples=count, description=description)


def run(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> str:
    images = sample_images(backend, options["n"], options["seed"])
    value_range = tuple(spec.graph().postprocessing.get(spec.graph().outputs[0].name, {}).get("range", (-1.0, 1.0)))
    path = save_grid(to_uint8(images, value_range), Path(options["output"] or f"{spec.name}-samples.png"))
    return f"wrote {len(images)} samples from {spec.name} ({backend.name}, seed {options['seed']}) to {path}"


def evaluate(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> dict[str, float]:
    return generator_metrics(backend, options["data"])

