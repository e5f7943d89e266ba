"""`zoo run` and `zoo eval` for image-reconstruction models (autoencoders, denoisers without noise): each
picture goes in, a picture of the same shape comes out. `zoo run` writes held-out MNIST digits (or one
`--image`) beside their reconstructions; `zoo eval` and the fp16/int8 gate measure the mean squared error.

The graph's first input and first output are the picture; their `range` (preprocessing and postprocessing)
says which pixel values they use, [0, 1] unless declared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.data import data_root, mnist_frame, read_mnist
from zoo.errors import ZooError
from zoo.images import save_grid, to_uint8
from zoo.runtime import Backend
from zoo.specs import GraphSpec, ModelSpec
from zoo.tasks import Quality, RunResult
from zoo.tasks.image_classification import load_picture

HELDOUT_IMAGES = 2000  # MNIST t10k, index % 5 == 0
PAIRS_PER_ROW = 8
METRIC_DESCRIPTION = ("mean squared reconstruction error on the {count:,} held-out MNIST images (index % 5 == 0), "
                      "pixels scaled to [0, 1]; lower is better")


def _ranges(graph: GraphSpec) -> tuple[tuple[float, float], tuple[float, float]]:
    """The pixel ranges of the graph's picture input and output."""
    inputs = tuple(graph.preprocessing.get(graph.inputs[0].name, {}).get("range", (0.0, 1.0)))
    outputs = tuple(graph.postprocessing.get(graph.outputs[0].name, {}).get("range", (0.0, 1.0)))
    return inputs, outputs


def _scaled(unit: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    low, high = value_range
    return (low + unit * (high - low)).astype(np.float32)


def _unit(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    low, high = value_range
    return (images - low) / (high - low)


def reconstruct(backend: Backend, unit_images: np.ndarray, chunk: int = 500) -> np.ndarray:
    """Reconstructions in [0, 1] of (N, 1, H, W) pictures in [0, 1]."""
    graph = backend.graph
    input_range, output_range = _ranges(graph)
    name, output = graph.inputs[0].name, graph.outputs[0].name
    parts = [backend.run({name: _scaled(unit_images[i : i + chunk], input_range)})[output]
             for i in range(0, len(unit_images), chunk)]
    return _unit(np.concatenate(parts), output_range)


def heldout_images(data: Path, size: int, limit: int | None = None) -> np.ndarray:
    """The held-out MNIST digits as (N, 1, size, size) in [0, 1]."""
    images, _ = read_mnist(data, "heldout")
    return mnist_frame(images[:limit], size).astype(np.float32)[:, None] / 255.0


def mean_squared_error(backend: Backend, data: Path, limit: int | None = None) -> float:
    images = heldout_images(data, backend.graph.inputs[0].shape[-1], limit)
    return float(np.mean((reconstruct(backend, images) - images) ** 2))


def run(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> RunResult:
    """Reconstruct `--image`, or `--n` held-out MNIST digits; write each beside its reconstruction."""
    size = backend.graph.inputs[0].shape[-1]
    if options.get("image"):
        images = (load_picture(Path(options["image"]), size) + 1.0) / 2.0
        what = str(options["image"])
    else:
        count = options.get("n") or 16
        if not 1 <= count <= HELDOUT_IMAGES:
            raise ZooError(f"--n {count} is outside 1..{HELDOUT_IMAGES} (the held-out MNIST digits)")
        chosen = np.sort(np.random.default_rng(options.get("seed") or 0).choice(HELDOUT_IMAGES, count, replace=False))
        images = heldout_images(data_root(options.get("data")), size)[chosen]
        what = f"{count} held-out MNIST digits (seed {options.get('seed') or 0})"
    rebuilt = np.clip(reconstruct(backend, images), 0.0, 1.0)
    error = float(np.mean((rebuilt - images) ** 2))
    pairs = np.stack([images, rebuilt], axis=1).reshape(-1, *images.shape[1:])
    path = save_grid(to_uint8(pairs, (0.0, 1.0)), Path(options.get("output") or f"{spec.name}-reconstructions.png"),
                     columns=2 * min(PAIRS_PER_ROW, len(images)))
    return RunResult(
        data={"file": str(path), "images": len(images), "mse": error},
        note=f"wrote {what}, each beside its reconstruction ({spec.name}, {backend.name}; mean squared error "
             f"{error:.5f}), to {path}",
    )


def evaluate(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> dict[str, float]:
    return {"heldout_mse": round(mean_squared_error(backend, Path(options["data"])), 5)}


def quality(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> Quality:
    """The mean squared error on the first `options["examples"]` held-out digits."""
    count = min(options["examples"], HELDOUT_IMAGES)
    value = mean_squared_error(backend, Path(options["data"]), count)
    return Quality("heldout_mse", value, higher_is_better=False, examples=count,
                   description=METRIC_DESCRIPTION.format(count=count))
