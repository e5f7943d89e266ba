"""Helpers for testing zoo plugins with pytest: the conformance kit.

`check_model(name, tmp_path)` checks a model plugin the way the zoo relies
on it, one check after another, and raises `ConformanceError` (an
AssertionError, so pytest shows it as a plain failure) naming the first
problem:

1. the spec is valid and its plugin loaded without errors;
2. importing the plugin module does not import torch (nor numpy or onnx);
3. the builder builds a torch module from the default config;
4. the forward pass of every graph takes and returns what the `GraphSpec`
   declares (names, shapes, dtypes), at batch 1 and 2, for the graphs
   resolved from the default config;
5. every shipped weights file loads, matches the sha256 of its card, its
   card has the fields `zoo info` shows, and the graphs resolved from the
   config stored in it match the loaded model's forward pass;
6. the core's ONNX pipeline exports every graph and validates it against
   PyTorch. A plugin without trained weights is exported with random
   weights (`save_random_weights`), so a freshly written plugin passes;
7. with `run=True`, `zoo run` of the model's task works on those weights,
   and, when `data` names a data root, `zoo eval` does too (both through
   the command line, in this process).

Each check is also a function of its own. `make_distribution` writes a
throwaway plugin distribution for tests of plugin loading.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What a plugin's top-level module must not import: listing stays instant.
HEAVY_MODULES = ("torch", "numpy", "onnx", "onnxruntime")
# Card fields `zoo info` shows and every trained weights file must carry.
REQUIRED_CARD_FIELDS = ("model", "file", "sha256", "parameters", "data", "config", "metrics",
                        "training.command", "training.seed", "training.wall_time_s", "training.machine")


class ConformanceError(AssertionError):
    """A plugin does not behave the way the zoo relies on; the message names the check."""


@dataclass
class ConformanceReport:
    """What `check_model` checked (`passed`) and what it could not (`skipped`, with the reason)."""

    model: str
    passed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bundle: Path | None = None


def check_model(name: str, workdir: Path, weights: str | os.PathLike | None = None,
                export: bool = True, run: bool = False, data: str | os.PathLike | None = None) -> ConformanceReport:
    """Run every check on model `name`; `workdir` receives random weights and the bundle.

    `weights` is a trained file to load and export (its card, if one sits
    beside it, is checked too); otherwise the shipped default variant is
    exported when its file exists, else random weights. `run` also runs the
    model's task on them (`zoo run`, and `zoo eval` on the data root `data`
    when one is given).
    """
    workdir = Path(workdir)
    report = ConformanceReport(name)
    spec = check_spec(name)
    report.passed.append("spec")
    check_light_import(plugin_module(name))
    report.passed.append("light import")
    model = check_builds(name)
    report.passed.append("builds")
    check_forward(model.zoo_spec, model)
    report.passed.append("forward signature")
    shipped = check_shipped_weights(name)
    report.passed += [f"weights {name}:{variant}" for variant in shipped]
    report.skipped += [f"weights {name}:{v} (file not trained yet)" for v in spec.weights if v not in shipped]
    if weights is not None:
        check_weights_file(name, weights)
        report.passed.append(f"weights {weights}")
    if not export:
        report.skipped.append("onnx export (export=False)")
        return report
    if weights is None and not shipped:
        weights = save_random_weights(name, workdir / f"{name}-random.safetensors")
    report.bundle = check_onnx_export(name, workdir / "export", weights)
    report.passed.append("onnx export")
    if not run:
        return report
    check_run(name, workdir / "run", weights)
    report.passed.append("zoo run")
    if data is None:
        report.skipped.append("zoo eval (no data root given)")
    else:
        check_eval(name, data, weights)
        report.passed.append("zoo eval")
    return report


def check_run(name: str, workdir: str | os.PathLike, weights: str | os.PathLike | None = None) -> None:
    """`zoo run NAME --backend torch` succeeds. A model whose first graph reads an
    image (`example="image"`) is given a blank picture of the declared size."""
    from zoo.api import resolve

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    argv = ["run", name, "--backend", "torch", "-o", str(workdir / "run.png")]
    picture = _blank_picture(resolve(name, weights).spec.graph(), workdir / "input.png")
    argv += ["--image", str(picture)] if picture else []
    _run_cli(argv + (["--weights", str(weights)] if weights is not None else []))


def check_eval(name: str, data: str | os.PathLike, weights: str | os.PathLike | None = None) -> None:
    """`zoo eval NAME --backend torch --data DATA` succeeds and reports numbers."""
    argv = ["eval", name, "--backend", "torch", "--data", str(data), "--json"]
    output = _run_cli(argv + (["--weights", str(weights)] if weights is not None else []))
    metrics = json.loads(output)["metrics"]
    if not metrics or not all(isinstance(v, (int, float)) for v in metrics.values()):
        raise ConformanceError(f"`zoo {' '.join(argv)}` reported no numeric metrics: {metrics}")


def _run_cli(argv: list[str]) -> str:
    """The `zoo` command line in this process: its stdout, or a ConformanceError with its error line."""
    import contextlib
    import io

    from zoo.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except Exception as exc:  # a crash the command line did not turn into a one-line error is the finding
        raise ConformanceError(f"`zoo {' '.join(argv)}` crashed: {type(exc).__name__}: {exc}") from None
    if code != 0:
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        raise ConformanceError(f"`zoo {' '.join(argv)}` failed (exit {code}): {lines[-1] if lines else 'no message'}")
    return out.getvalue()


def _blank_picture(graph, path: Path) -> Path | None:
    """A mid-grey PNG the size of the graph's image input, or None when it reads no image."""
    image = next((t for t in graph.inputs if t.example == "image"), None)
    if image is None:
        return None
    from PIL import Image

    height, width = (graph.example_axes.get(d, 32) if isinstance(d, str) else d for d in image.shape[-2:])
    Image.new("L", (width, height), 128).save(path)
    return path


def check_spec(name: str):
    """The registered spec, after checking it validates (graphs resolved from the
    default config when they are a function) and its plugin loaded cleanly."""
    from zoo.api import registry
    from zoo.errors import ZooError
    from zoo.specs import validate_model_spec

    reg = registry()
    try:
        spec = reg.model(name)
        validate_model_spec(spec)
        spec.with_config()
    except ZooError as exc:
        raise ConformanceError(f"spec of model '{name}': {exc}") from None
    owner = reg.plugins.get(reg.owner("models", name))
    if owner and owner.errors:
        raise ConformanceError(f"plugin '{owner.name}' of model '{name}' reported errors: {'; '.join(owner.errors)}")
    if spec.trainer and spec.trainer not in reg.trainers:
        raise ConformanceError(f"model '{name}' names trainer '{spec.trainer}', which no plugin registers")
    return spec


def plugin_module(name: str) -> str:
    """The module of the entry point that registered model `name`."""
    from zoo.api import registry

    reg = registry()
    return reg.plugins[reg.owner("models", name)].value.partition(":")[0]


def check_light_import(module: str) -> None:
    """Import `module` in a fresh interpreter and fail if it pulled in a heavy library."""
    probe = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))\n"
    )
    # The child sees this process's sys.path, so plugins added at run time (pytest's syspath_prepend) import too.
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConformanceError(f"importing plugin module '{module}' failed: {last}")
    heavy = json.loads(result.stdout.strip().splitlines()[-1])
    if heavy:
        raise ConformanceError(
            f"importing plugin module '{module}' imports {', '.join(heavy)}; keep heavy imports in the builder's "
            f"module (model.py) so `zoo list` stays fast"
        )


def check_builds(name: str, **config: Any):
    """`zoo.build(name, **config)`, checked to be a torch module with parameters."""
    import torch

    from zoo.api import build

    model = build(name, **config)
    if not isinstance(model, torch.nn.Module):
        raise ConformanceError(f"the builder of model '{name}' returned {type(model).__name__}, not a torch.nn.Module")
    if not model.state_dict():
        # Lookup-table models (an n-gram) keep their state in buffers; a module with neither is broken.
        raise ConformanceError(f"the builder of model '{name}' returned a module without parameters or buffers")
    return model.eval()


def check_forward(spec, model, batches: tuple[int, ...] = (1, 2), seed: int = 0) -> None:
    """Every graph's forward pass returns the declared outputs for inputs drawn from its signature.

    `spec` must be resolved for the model's config: `model.zoo_spec` of a
    model from `zoo.build` or `zoo.load`."""
    import numpy as np
    import torch

    from zoo.runtime import graph_module
    from zoo.tensors import example_inputs

    for graph in spec.graphs:
        module = graph_module(model, graph)
        where = f"model '{spec.name}', graph '{graph.name}'"
        for batch in batches:
            feeds = example_inputs(graph, batch, seed)
            with torch.inference_mode():
                try:
                    results = module(*(torch.from_numpy(feeds[t.name]) for t in graph.inputs))
                except Exception as exc:
                    shapes = ", ".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in feeds.items())
                    raise ConformanceError(f"{where}: forward failed on the declared inputs ({shapes}): "
                                           f"{type(exc).__name__}: {exc}") from None
            results = tuple(results) if isinstance(results, (tuple, list)) else (results,)
            if len(results) != len(graph.outputs):
                raise ConformanceError(f"{where}: forward returned {len(results)} outputs, the spec declares "
                                       f"{len(graph.outputs)} ({', '.join(t.name for t in graph.outputs)})")
            sizes = graph.axis_sizes(batch)
            for tensor, result in zip(graph.outputs, results):
                if not isinstance(result, torch.Tensor):
                    raise ConformanceError(f"{where}: output '{tensor.name}' is a {type(result).__name__}, not a tensor")
                array = result.detach().cpu().numpy()
                expected = _expected_shape(tensor, sizes, array.shape)
                if array.shape != expected:
                    raise ConformanceError(f"{where}: output '{tensor.name}' has shape {array.shape} at batch {batch}, "
                                           f"the spec declares {tensor.shape} = {expected}")
                if str(array.dtype) != tensor.dtype:
                    raise ConformanceError(f"{where}: output '{tensor.name}' is {array.dtype}, the spec declares {tensor.dtype}")
                if array.dtype.kind == "f" and not np.isfinite(array).all():
                    raise ConformanceError(f"{where}: output '{tensor.name}' has NaN or infinite values")


def _expected_shape(tensor, sizes: dict[str, int], actual: tuple[int, ...]) -> tuple[int, ...]:
    """The declared shape with known axes filled in; an output-only symbolic axis takes the actual size."""
    from zoo.tensors import concrete_shape

    known = {**sizes}
    for index, dim in enumerate(tensor.shape):
        if isinstance(dim, str) and dim not in known and index < len(actual):
            known[dim] = actual[index]
    return concrete_shape(tensor, known)


def check_card(card: dict[str, Any], where: str = "card") -> None:
    """The card has every field in REQUIRED_CARD_FIELDS ("a.b" is key b of table a)."""
    missing = []
    for dotted in REQUIRED_CARD_FIELDS:
        table: Any = card
        for part in dotted.split("."):
            table = table.get(part) if isinstance(table, dict) else None
        if table is None:
            missing.append(dotted)
    if missing:
        raise ConformanceError(f"{where} lacks {', '.join(missing)}; write cards with `zoo train`")


def check_shipped_weights(name: str) -> list[str]:
    """Load every weights variant whose file exists; return the variants checked.

    Each must match its card's sha256, carry a complete card, and load into
    the builder's model with every tensor in place. A variant whose file
    does not exist yet (a fresh plugin) is left out.
    """
    from zoo.api import get_spec, load
    from zoo.errors import ZooError
    from zoo.weights import resolve

    spec = get_spec(name)
    checked = []
    for variant, weights in spec.weights.items():
        if weights.uri.startswith("hf://"):
            continue  # not downloaded in tests; `zoo info` shows the card
        resolved = resolve(spec, variant, download=False)
        if not resolved.path.is_file():
            continue
        where = f"weights {name}:{variant}"
        if weights.card is None or not resolved.card:
            raise ConformanceError(f"{where} has no card; ship the card `zoo train` writes beside the weights")
        check_card(resolved.card, f"card of {where}")
        if resolved.card["model"] != name:
            raise ConformanceError(f"card of {where} is for model '{resolved.card['model']}'")
        try:
            model = load(f"{name}:{variant}")
        except ZooError as exc:
            raise ConformanceError(f"{where}: {exc}") from None
        check_forward(model.zoo_spec, model, batches=(2,))
        checked.append(variant)
    return checked


def check_weights_file(name: str, path: str | os.PathLike) -> None:
    """A local weights file loads into model `name`; a card beside it is checked too."""
    from zoo.api import load
    from zoo.config import read_toml
    from zoo.errors import ZooError
    from zoo.training import card_path
    from zoo.weights import file_sha256

    path = Path(path)
    try:
        model = load(name, path)
    except ZooError as exc:
        raise ConformanceError(f"weights {path}: {exc}") from None
    check_forward(model.zoo_spec, model, batches=(2,))
    card = card_path(path)
    if card.is_file():
        content = read_toml(card, "model card")
        check_card(content, f"card {card}")
        if content["sha256"] != file_sha256(path):
            raise ConformanceError(f"card {card} records another sha256 than {path} has")


def save_random_weights(name: str, path: str | os.PathLike, seed: int = 0, **config: Any) -> Path:
    """Write a randomly initialised model `name` as a weights file (for export checks before training)."""
    import torch

    from zoo.api import build
    from zoo.weights import save

    torch.manual_seed(seed)
    model = build(name, **config)
    save(model.state_dict(), Path(path), name, model.zoo_config)
    return Path(path)


def check_onnx_export(name: str, out: str | os.PathLike, weights: str | os.PathLike | None = None) -> Path:
    """Export through the core's pipeline (which validates against PyTorch); check the bundle
    describes the graphs resolved from the exported weights."""
    from zoo.api import resolve
    from zoo.errors import ZooError
    from zoo.exporting import export_model

    try:
        resolved = resolve(name, weights)
        bundle = export_model(resolved, "onnx", Path(out), log=lambda line: None)
    except ZooError as exc:
        raise ConformanceError(f"onnx export of model '{name}': {exc}") from None
    manifest = json.loads((bundle / "model.json").read_text())
    if manifest["model_config"] != resolved.config:
        raise ConformanceError(f"onnx export of model '{name}': the manifest's config is not the weights' config")
    for graph in resolved.graphs:
        entry = manifest["graphs"].get(graph.name)
        if entry is None or not (bundle / entry["file"]).is_file():
            raise ConformanceError(f"onnx export of model '{name}' wrote no file for graph '{graph.name}'")
        declared = [t.to_json() for t in graph.inputs], [t.to_json() for t in graph.outputs]
        if (entry["inputs"], entry["outputs"]) != declared:
            raise ConformanceError(f"onnx export of model '{name}': the manifest's graph '{graph.name}' is not the "
                                   f"graph resolved from the weights' config")
        failed = [output for output, parity in entry["parity"].items() if not parity["passed"]]
        if failed:
            raise ConformanceError(f"onnx export of model '{name}': outputs {failed} differ from PyTorch")
    return bundle


def train_briefly(name: str, data: str | os.PathLike, out: str | os.PathLike, steps: int = 3,
                  limit: int = 64, batch_size: int = 16, **config: Any) -> Path:
    """Train model `name` with its registered recipe for a few steps (real weights and card, in seconds).

    `config` overrides model config keys (a narrow model trains faster),
    exactly like `zoo train --set key=value`.
    """
    from zoo.api import get_spec, registry
    from zoo.training import OPTION_DEFAULTS, TrainOptions, train

    spec = get_spec(name)
    if not spec.trainer:
        raise ConformanceError(f"model '{name}' registers no trainer")
    defaults = {**OPTION_DEFAULTS, **registry().trainer(spec.trainer).defaults}
    options = TrainOptions(data=Path(data), epochs=defaults["epochs"], batch_size=batch_size, lr=defaults["lr"],
                           max_steps=steps, limit=limit, hparams=dict(config))
    settings = " ".join(f"--set {key}={json.dumps(value)}" for key, value in config.items())
    command = f"zoo.testing.train_briefly: zoo train {name} --data {data} --max-steps {steps} --limit {limit} " \
              f"--batch-size {batch_size} {settings} --out {out}"
    train(name, options, Path(out), command=command.strip())
    return Path(out)


def make_distribution(directory: Path, name: str, source: str, version: str = "0.1.0",
                      entry_points: dict[str, str] | None = None) -> Path:
    """Write module `name` (from `source`) and a distribution that registers it as plugin `name`.

    Put `directory` on sys.path (or PYTHONPATH for a subprocess) and the zoo
    discovers the plugin exactly as it discovers an installed package.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    info = directory / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    points = entry_points or {name: name}
    (info / "entry_points.txt").write_text("[zoo]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()))
    return directory
