"""Exported bundles as self-describing artifacts.

A bundle's `model.json` carries each graph's inputs and outputs, so a
consumer needs neither the plugin nor torch: `BundleRunner` runs a bundle
in ONNX Runtime on batches of numpy arrays. It is the unit that batch
inference ships to workers (Ray Data's `map_batches`, a process pool).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooError
from zoo.specs import GraphSpec, TensorSpec

if TYPE_CHECKING:
    import numpy as np

BUNDLE_FORMAT = "aigc-zoo-bundle/1"  # model.json's "format"


_MAX_MANIFEST = 16 * 1024 * 1024


class BundleError(ZooError):
    """A bundle whose manifest is unreadable, or whose files are missing, outside it or altered."""


def read_manifest(bundle: Path) -> dict[str, Any]:
    """The bundle's model.json, checked: a JSON object naming its model, whose graph files
    are relative paths inside the bundle."""
    bundle = Path(bundle)
    path = bundle / "model.json"
    if not path.is_file():
        raise BundleError(f"{bundle} is not a zoo bundle (no model.json); make one with `zoo export NAME -o DIR`")
    fix = "export it again with `zoo export`"
    if path.stat().st_size > _MAX_MANIFEST:
        raise BundleError(f"{path} is too large to be a manifest; {fix}")
    try:
        manifest = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc.__class__.__name__}); {fix}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("graphs"), dict) or not manifest["graphs"]:
        raise BundleError(f"{path} is not a zoo manifest (no graphs); {fix}")
    if not isinstance(manifest.get("model"), str):
        raise BundleError(f"{path} names no model; {fix}")
    for name, entry in manifest["graphs"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise BundleError(f"{path}: graph '{name}' names no file; {fix}")
        contained(bundle, entry["file"], f"{path}: graph '{name}'")
    return manifest


def contained(bundle: Path, relative: str, what: str) -> Path:
    """`bundle / relative`, refused when it leaves the bundle (an absolute path, `..`, a link outward)."""
    bundle = Path(bundle)
    candidate = bundle / relative
    if Path(relative).is_absolute() or not candidate.resolve().is_relative_to(bundle.resolve()):
        raise BundleError(f"{what} points outside the bundle ({relative}); a manifest may only name files inside its bundle")
    return candidate


def graph_path(bundle: Path, manifest: dict[str, Any], graph: str) -> Path:
    """The file of `graph`, present and matching the sha256 the manifest records."""
    from zoo.weights import file_sha256

    entry = manifest["graphs"][graph]
    path = contained(Path(bundle), entry["file"], f"graph '{graph}'")
    if not path.is_file():
        raise BundleError(f"{path} is missing from the bundle; export it again with `zoo export`")
    expected = entry.get("sha256")
    if not isinstance(expected, str):
        raise BundleError(f"the manifest of {bundle} records no sha256 for graph '{graph}'; export it again with `zoo export`")
    actual = file_sha256(path)
    if actual != expected:
        raise BundleError(
            f"{path} does not match its manifest (sha256 {actual[:16]}..., manifest says {expected[:16]}...); "
            f"the file is corrupt or was replaced: export it again with `zoo export`"
        )
    return path


def is_bundle_of(folder: Path, model: str, variant: str) -> bool:
    """True when `folder` holds a bundle the zoo wrote for `model` and `variant` (a readable model.json saying so)."""

    try:
        manifest = read_manifest(folder)
    except ZooError:
        return False
    return manifest.get("format") == BUNDLE_FORMAT and manifest["model"] == model and manifest.get("variant") == variant


def graph_from_manifest(manifest: dict[str, Any], graph: str | None = None) -> tuple[GraphSpec, str]:
    """The GraphSpec and file of one graph of a bundle (the first when `graph` is None)."""
    graphs = manifest["graphs"]
    name = graph or next(iter(graphs))
    if name not in graphs:
        raise BundleError(f"bundle of '{manifest['model']}' has no graph '{name}'; it has {', '.join(graphs)}")
    entry = graphs[name]

    def tensors(items: list[dict]) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(t["name"], tuple(t["shape"]), t["dtype"], description=t.get("description", "")) for t in items)

    try:
        spec = GraphSpec(
            inputs=tensors(entry["inputs"]), outputs=tensors(entry["outputs"]), name=name,
            preprocessing=entry.get("preprocessing", {}), postprocessing=entry.get("postprocessing", {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"the manifest's graph '{name}' has malformed inputs or outputs ({exc!r}); export it again with `zoo export`") from None
    return spec, entry["file"]


class BundleRunner:
    """Callable on a batch {input name: array} -> {output name: array}, backed by ONNX Runtime.

    Construct it where it runs (a Ray actor builds one per worker), so the
    inference session is created once per worker, not shipped.
    """

    def __init__(self, bundle: str | Path, graph: str | None = None, backend: str = "onnx", threads: int = 0):
        from zoo.runtime import OnnxBackend

        bundle = Path(bundle)
        manifest = read_manifest(bundle)
        self.graph, _ = graph_from_manifest(manifest, graph)
        self.backend = OnnxBackend(graph_path(bundle, manifest, self.graph.name), self.graph, backend, threads=threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import numpy as np  # inside: `import zoo` (which imports this module) stays free of numpy

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
        import numpy as np

        from zoo.tensors import example_inputs

        rows = [example_inputs(self.graph, 1, seed=int(i)) for i in batch["id"]]
        return {"id": batch["id"], **{t.name: np.concatenate([r[t.name] for r in rows]) for t in self.graph.inputs}}


def seeded_inputs(batch: dict[str, np.ndarray], bundle: str, graph: str | None = None) -> dict[str, np.ndarray]:
    """`SeededInputs` as a plain function, for a stage that runs as stateless tasks (Ray Data's
    `map_batches(seeded_inputs, fn_kwargs={"bundle": ...})`): importable on every worker."""
    return SeededInputs(bundle, graph)(batch)
