"""Random example inputs drawn from a graph's declared signature (numpy only)."""

from __future__ import annotations

import json

import numpy as np

from zoo.errors import ZooError
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


def fixed_value(tensor: TensorSpec, value, flag: str | None = None) -> np.ndarray:
    """`value` (a number or nested list) as one example of `tensor`, checked against its dtype and range.

    A scalar or anything that broadcasts to one example's shape (the shape
    without the batch axis) is accepted. Errors name `flag` (the option that
    gave the value), or `--input NAME=VALUE` when None.
    """
    shown = value if isinstance(value, str) else json.dumps(value)
    where = f"{flag} {shown}" if flag else f"--input {tensor.name}={shown}"
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ZooError(f"{where}: the value must be a number or a JSON list of numbers") from None
    if np.dtype(tensor.dtype).kind in "iub":
        if not np.all(np.equal(np.mod(array, 1), 0)):
            raise ZooError(f"{where}: input '{tensor.name}' takes whole numbers ({tensor.dtype})")
        if tensor.example == "integers" and (array.min() < tensor.low or array.max() >= tensor.high):
            raise ZooError(f"{where}: input '{tensor.name}' takes integers from {tensor.low} to {tensor.high - 1}")
    example = tuple(1 if isinstance(dim, str) else dim for dim in tensor.shape[1:])
    try:
        np.broadcast_shapes(array.shape, example)
    except ValueError:
        raise ZooError(f"{where}: a value of shape {array.shape} does not fit input '{tensor.name}' of shape "
                       f"{tensor.shape}; give one number or one example's values") from None
    return array.astype(tensor.dtype)


def run_inputs(graph: GraphSpec, batch: int, seed: int, fixed: dict[str, np.ndarray] | None = None,
               sizes: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """The inputs `zoo run` feeds a graph: drawn as `example_inputs` draws them, except that an input named in
    `fixed` takes that value for every example and an input whose preprocessing declares a "default" takes it."""
    feeds = example_inputs(graph, batch, seed, sizes)
    for tensor in graph.inputs:
        value = fixed_or_default(graph, tensor.name, fixed)
        if value is not None:
            feeds[tensor.name] = np.ascontiguousarray(np.broadcast_to(value, feeds[tensor.name].shape), tensor.dtype)
    return feeds


def fixed_or_default(graph: GraphSpec, name: str, fixed: dict[str, np.ndarray] | None = None):
    """The value input `name` is fixed to (`fixed`, else its preprocessing "default"), or None when it is drawn."""
    if fixed and fixed.get(name) is not None:
        return fixed[name]
    declared = graph.preprocessing.get(name)
    return declared["default"] if isinstance(declared, dict) and "default" in declared else None
