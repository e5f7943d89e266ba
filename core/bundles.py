"""Exported bundles as self-describing artifacts.

A bundle's `model.json` carries each graph's inputs and outputs, so a
consumer needs neither the plugin nor torch: `BundleRunner` runs a bundle
in ONNX Runtime on batches of numpy arrays. It is the unit that batch
inference ships to workers (Ray Data's `map_batches`, a process pool).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ZooError
from zoo.specs import GraphSpec, TensorSpec


def read_manifest(bundle: Path) -> dict[str, Any]:
    path = Path(bundle) / "model.json"
    if not path.is_file():
        raise ZooError(f"{bundle} is not a zoo bundle (no model.json); make one with `zoo export NAME -o DIR`")
    return json.loads(path.read_text())


def graph_from_manifest(manifest: dict[str, Any], graph: str | None = None) -> tuple[GraphSpec, str]:
    """The GraphSpec and file of one graph of a bundle (the first when `graph` is None)."""
    graphs = manifest["graphs"]
    name = graph or next(iter(graphs))
    if name not in graphs:
        raise ZooError(f"bundle of '{manifest['model']}' has no graph '{name}'; it has {', '.join(graphs)}")
    entry = graphs[name]

    def tensors(items: list[dict]) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(t["name"], tuple(t["shape"]), t["dtype"], description=t.get("description", "")) for t in items)

    spec = GraphSpec(
        inputs=tensors(entry["inputs"]), outputs=tensors(entry["outputs"]), name=name,
        preprocessing=entry.get("preprocessing", {}), postprocessing=entry.get("postprocessing", {}),
    )
    return spec, entry["file"]


class BundleRunner:
    """Callable on a batch {input name: array} -> {output name: array}, backed by ONNX Runtime.

    Construct it where it runs (a Ray actor builds one per worker), so the
    inference session is created once per worker, not shipped.
    """

    def __init__(self, bundle: str | Path, graph: str | None = None, backend: str = "onnx", threads: int = 0):
        from zoo.runtime import OnnxBackend

        bundle = Path(bundle)
        self.graph, file = graph_from_manifest(read_manifest(bundle), graph)
        self.backend = OnnxBackend(bundle / file, self.graph, backend, threads=threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {t.name: np.asarray(np.stack(batch[t.name]) if batch[t.name].dtype == object else batch[t.name], dtype=t.dtype)
                 for t in self.graph.inputs}
        return {**batch, **self.backend.run(feeds)}


class SeededInputs:
    """Callable on a batch {"id": ids} -> the ids plus one random input row per id.

    Each row is drawn from its own id as seed (`zoo.tensors.example_inputs`),
    so a result depends only on its id, never on how a scheduler splits the
    work into blocks.
    """

    def __init__(self, bundle: str | Path, graph: str | None = None):
        self.graph, _ = graph_from_manifest(read_manifest(Path(bundle)), graph)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from zoo.tensors import example_inputs

        rows = [example_inputs(self.graph, 1, seed=int(i)) for i in batch["id"]]
        return {"id": batch["id"], **{t.name: np.concatenate([r[t.name] for r in rows]) for t in self.graph.inputs}}


def seeded_inputs(batch: dict[str, np.ndarray], bundle: str, graph: str | None = None) -> dict[str, np.ndarray]:
    """`SeededInputs` as a plain function, for a stage that runs as stateless tasks (Ray Data's
    `map_batches(seeded_inputs, fn_kwargs={"bundle": ...})`): importable on every worker."""
    return SeededInputs(bundle, graph)(batch)
