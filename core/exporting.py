"""The export pipeline: resolve config, load the model, run the target's
exporter into a temporary directory, write the manifest, then move the
bundle into place. A failed export leaves nothing behind."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from zoo.api import ResolvedModel, configuration, load, registry, resolve
from zoo.errors import UnavailableError, UnknownNameError, ZooError
from zoo.files import atomic_directory, ensure_writable_dir, file_lock
from zoo.specs import GraphSpec, ModelSpec, import_dotted




@dataclass
class ExportJob:
    """What an exporter receives: the loaded model, the configuration and where to write.

    `spec` is the model's spec resolved for the weights being exported: its
    `config` is theirs and its `graphs` have their real shapes.
    `config` is the whole merged configuration ({section: {key: value}}, from
    the packaged defaults, files, environment and flags), including every
    target's own section; `export_config` is its `[export]` section and
    `target_config` the section of the target running the job. `out_dir` is
    a temporary directory that becomes the bundle when the exporter returns.
    `options` carries per-call inputs that are not configuration (`data`).
    """

    spec: ModelSpec
    variant: str
    model: Any
    weights_sha256: str
    config: dict[str, Any]
    out_dir: Path
    precision: str = "fp32"
    options: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = print
    target: str = "onnx"

    @property
    def export_config(self) -> dict[str, Any]:
        return self.config["export"]

    @property
    def target_config(self) -> dict[str, Any]:
        return self.config.get(self.target, {})

    def graph_dir(self, graph: GraphSpec) -> Path:
        """Where a graph's files go: the bundle root for one-graph models, a folder per graph otherwise."""
        folder = self.out_dir if len(self.spec.graphs) == 1 else self.out_dir / graph.name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def metadata(self, graph: GraphSpec) -> dict[str, str]:
        """The key/value pairs every exported file carries about itself."""
        from zoo import __version__

        return {
            "zoo.model": self.spec.name,
            "zoo.variant": self.variant,
            "zoo.graph": graph.name,
            "zoo.task": self.spec.task,
            "zoo.weights_sha256": self.weights_sha256,
            "zoo.version": __version__,
            "zoo.inputs": json.dumps([t.to_json() for t in graph.inputs]),
            "zoo.outputs": json.dumps([t.to_json() for t in graph.outputs]),
            "zoo.preprocessing": json.dumps(graph.preprocessing),
            "zoo.postprocessing": json.dumps(graph.postprocessing),
        }


@dataclass
class Report:
    """What `zoo export --check-only` prints: text for people, data for --json."""

    text: str
    data: dict[str, Any]


def inspect_model(
    name: str | ResolvedModel,
    target: str,
    weights: str | os.PathLike | None = None,
    config_overrides: dict[str, dict[str, Any]] | None = None,
    precision: str = "fp32",
) -> Report:
    """The target's report on `name`'s ONNX bundle (exported to the cache on first use)."""
    report = _target_function(target, "inspect", precision,
                              f"target '{target}' has no --check-only report; run `zoo export {name} --target {target}`")
    return report(cached_bundle(name, weights), configuration(config_overrides), precision)


def build_bundle(
    bundle: Path, target: str, precision: str = "fp32", config_overrides: dict[str, dict[str, Any]] | None = None,
    log: Callable[[str], None] = print,
) -> list[str]:
    """`zoo build-engine BUNDLE --target T`: the target adds its files to an existing ONNX bundle."""
    build = _target_function(target, "build", precision,
                             f"target '{target}' builds nothing from a bundle; export with `zoo export NAME --target {target}`")
    return build(Path(bundle), configuration(config_overrides), precision, log)


def _target_function(target: str, hook: str, precision: str, missing: str) -> Callable:
    """The function a target names in ExporterSpec field `hook`, once the target is known to have one
    (else `missing` is the error) and to support `precision`."""
    exporter = registry().exporter(target)
    path = getattr(exporter, hook)
    if not path:
        raise UnavailableError(missing)
    if precision not in exporter.precisions:
        raise UnknownNameError(f"target '{target}' does not support precision '{precision}'; use one of {', '.join(exporter.precisions)}")
    return import_dotted(path, f"the {hook} function of target '{target}'")


def bundle_name(spec: ModelSpec, variant: str) -> str:
    return spec.name if variant in ("default", "custom") else f"{spec.name}-{variant}"


def export_model(
    name: str | ResolvedModel,
    target: str = "onnx",
    out: Path = Path("out"),
    precision: str = "fp32",
    weights: str | os.PathLike | None = None,
    config_overrides: dict[str, dict[str, Any]] | None = None,
    options: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
    force: bool = False,
    out_flag: str = "-o",
    runtime: str | None = None,
) -> Path:
    """Export model `name` (optionally "name:variant", or a `ResolvedModel`) to `out/<bundle>`; return the bundle path.

    An existing `out/<bundle>` is replaced only when it is a previous bundle of
    the same model and variant (its model.json says so); a folder holding
    anything else is refused unless `force` (see `zoo.files.atomic_directory`).
    With `runtime` ("ort", "ort-mobile", "opencv", "trt"), the bundle is written only if that runtime's
    pre-flight check (`zoo check`) predicts it loads, and the manifest records the runtime."""
    exporter = registry().exporter(target)
    if precision not in exporter.precisions:
        raise UnknownNameError(
            f"target '{target}' does not support precision '{precision}'; use one of {', '.join(exporter.precisions)}"
        )
    resolved = resolve(name, weights)
    spec = resolved.spec
    if exporter.tasks and spec.task not in exporter.tasks:
        raise UnavailableError(f"target '{target}' does not apply to {spec.task} models such as '{spec.name}'")
    if exporter.check:
        reason = import_dotted(exporter.check, f"the check of target '{target}'")()
        if reason:
            raise UnavailableError(reason.replace("<model>", spec.name))
    config = configuration(config_overrides)
    out = ensure_writable_dir(Path(out), out_flag)
    model = load(resolved)
    sha256 = resolved.sha256
    bundle = out / bundle_name(spec, resolved.variant)
    from zoo import __version__
    from zoo.bundles import BUNDLE_FORMAT, is_bundle_of  # here, not at the top: zoo.bundles imports numpy

    def previous_bundle(path: Path) -> bool:
        return is_bundle_of(path, spec.name, resolved.variant)

    with atomic_directory(bundle, out_flag, previous_bundle, force, what=f"bundle of '{spec.name}'") as temporary:
        job = ExportJob(spec, resolved.variant, model, sha256, config, temporary, precision, options or {}, log, target)
        entries = import_dotted(exporter.export, f"the export function of target '{target}'")(job)
        manifest = {
            "format": BUNDLE_FORMAT,
            "model": spec.name,
            "variant": resolved.variant,
            "task": spec.task,
            "description": spec.description,
            "target": target,
            "precision": precision,
            "zoo_version": __version__,
            "weights_sha256": sha256,
            "model_config": resolved.config,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **entries,
        }
        (temporary / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if runtime:
            _check_runtime(temporary, manifest, runtime, spec.name)
    return bundle


def _check_runtime(bundle: Path, manifest: dict[str, Any], runtime: str, name: str) -> None:
    from zoo.preflight import check_bundle

    report = check_bundle(bundle, runtime)
    if not report.loads:
        blocking = "; ".join(f"{g.graph}: {g.blockers[0]}" for g in report.graphs if not g.loads)
        raise UnavailableError(f"{runtime} {report.version} would not load the export of '{name}' ({blocking}); "
                               f"`zoo check BUNDLE --runtime {runtime}` lists every blocking operator")
    manifest["runtime"] = {"name": runtime, "version": report.version, "checked": "zoo check predicts it loads"}
    (bundle / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")


def cache_root() -> Path:
    if os.environ.get("ZOO_CACHE_DIR"):
        return Path(os.environ["ZOO_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zoo"


def _code_fingerprint(spec: ModelSpec) -> str:
    """A short hash of the Python sources an export depends on: the model's plugin package
    and the zoo's export code."""
    import hashlib
    import importlib.util

    folders = [Path(importlib.util.find_spec(spec.package).origin).parent]
    folders += [Path(location) for location in importlib.util.find_spec("zoo.export").submodule_search_locations]
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for folder in folders:
        for source in sorted(folder.rglob("*.py")):
            digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def cached_bundle(
    reference: str | ResolvedModel, weights: str | os.PathLike | None = None, precision: str = "fp32", data: str | None = None,
    int8_mode: str | None = None,
) -> Path:
    """An ONNX bundle of `reference` at `precision` from the export cache, exported on first use;
    `int8_mode` overrides `[export] int8_mode` (TensorRT engines need "tensorrt": Q/DQ).

    The cache key holds the weights' sha256, the opset, the zoo version and a
    hash of the code that shapes the graph, so new weights, a new zoo or an
    edited model or exporter never reuse a stale export. Finding a cached
    bundle imports neither torch nor onnx.
    """
    from zoo import __version__

    resolved = resolve(reference, weights)
    spec, sha256 = resolved.spec, resolved.sha256
    opset = configuration()["export"]["opset"]
    suffix = "" if precision == "fp32" else f"-{precision}"
    if precision == "int8" and int8_mode:
        suffix += f"-{int8_mode}"
    key = f"{sha256[:16]}-opset{opset}-{__version__}-code{_code_fingerprint(spec)}"
    folder = cache_root() / "exports" / f"{spec.name}-{resolved.variant}-{key}{suffix}"
    bundle = folder / bundle_name(spec, resolved.variant)
    if _cache_problem(bundle) is None:
        return bundle
    exports = ensure_writable_dir(folder.parent, "ZOO_CACHE_DIR")
    with file_lock(exports / f".{folder.name}.lock", f"waiting for another zoo process exporting {resolved.reference} to the cache"):
        problem = _cache_problem(bundle)  # another process may have filled it while this one waited
        if problem is None:
            return bundle
        if folder.exists():
            # The entry is the zoo's own (a truncated file, an edited manifest): rebuild it.
            print(f"zoo: the cached export {bundle} is damaged ({problem}); exporting it again", file=sys.stderr)
            shutil.rmtree(folder)
        print(f"zoo: exporting {resolved.reference} ({precision}) to the cache ({bundle}) on first use", file=sys.stderr)
        export_model(
            resolved, "onnx", folder, precision=precision,
            config_overrides={"export": {"int8_mode": int8_mode}} if precision == "int8" and int8_mode else None,
            options={"data": data} if data else None, log=lambda line: print(line, file=sys.stderr),
            out_flag="ZOO_CACHE_DIR",
        )
    return bundle


def _cache_problem(bundle: Path) -> str | None:
    """Why a cache entry cannot be used as it is (None when every graph matches its sha256)."""
    from zoo.bundles import graph_path, read_manifest

    if not (bundle / "model.json").is_file():
        return "missing"
    try:
        manifest = read_manifest(bundle)
        for graph in manifest["graphs"]:
            graph_path(bundle, manifest, graph)
    except ZooError as exc:
        return str(exc)
    return None

