"""Random example inputs drawn from a graph's declared signature (numpy only)."""

from __future__ import annotations

import numpy as np

from zoo.specs import GraphSpec, TensorSpec


def concrete_shape(tensor: TensorSpec, sizes: dict[str, int]) -> tuple[int, ...]:
    return tuple(sizes[dim] if isinstance(dim, str) else dim for dim in tensor.shape)


def example_inputs(graph: GraphSpec, batch: int, seed: int, sizes: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """One array per input, drawn as the input's `example` kind says."""
    rng = np.random.default_rng(seed)
    axis_sizes = {**graph.axis_sizes(batch), **(sizes or {})}
    feeds = {}
    for tensor in graph.inputs:
        shape = concrete_shape(tensor, axis_sizes)
        if tensor.example == "integers":
            array = rng.integers(tensor.low, tensor.high, size=shape)
        elif tensor.example == "uniform":
            array = rng.random(shape)
        elif tensor.example == "image":
            array = rng.random(shape) * 2 - 1
        else:
            array = rng.standard_normal(shape)
        feeds[tensor.name] = array.astype(tensor.dtype)
    return feeds
