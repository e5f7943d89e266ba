"""The Python API behind the `zoo` command line.

Listing and describing models never imports torch; building, loading and
exporting import it inside the functions that need it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.config import load_config
from zoo.errors import WeightsError
from zoo.registry import Registry, load_registry
from zoo.specs import GraphSpec, ModelSpec, import_dotted
from zoo.weights import ResolvedWeights, file_sha256, resolve_file, split_reference, stored_config, verify
from zoo.weights import resolve as locate_variant

_REGISTRY: Registry | None = None


def registry(reload: bool = False) -> Registry:
    """The registry of installed plugins, loaded once per process."""
    global _REGISTRY
    if _REGISTRY is None or reload:
        config = load_config()  # the core's sections: the targets' own are known once their plugins load
        loaded = load_registry(disabled=config["plugins"]["disabled"], strict=config["plugins"]["strict"])
        load_config(sections=loaded.config_sections())  # every section of every file and variable is checked now
        _REGISTRY = loaded
    return _REGISTRY


def configuration(overrides: dict[str, dict[str, Any]] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """The merged configuration with the sections of every installed export target (`[trt]`, ...)."""
    return load_config(overrides, cwd, sections=registry().config_sections())


def list_models(pattern: str = "*", task: str | None = None) -> list[ModelSpec]:
    """Specs of the installed models whose name matches a glob `pattern`."""
    return registry().find_models(pattern, task)


def get_spec(name: str) -> ModelSpec:
    """The spec of `name` ("NAME" or "NAME:VARIANT")."""
    return registry().model(name)


def resolve_weights(name: str, weights: str | os.PathLike | None = None, download: bool = True) -> ResolvedWeights:
    """The weights `load(name, weights)` would use: a variant's file, or the file `weights`
    names (a path, a folder in the hub's layout, or hf://owner/repo[/file][@revision])."""
    spec = get_spec(name)
    if weights is not None:
        return resolve_file(spec.name, weights, download)
    return locate_variant(spec, split_reference(name)[1], download)


@dataclass(frozen=True)
class ResolvedModel:
    """A model as one set of weights makes it: what `zoo.resolve` returns.

    `spec` is the registered spec with `config` set to the weights' config and
    `graphs` resolved for it; `weights` is the verified file, with its sha256.
    Everything downstream (export, manifests, `zoo run`/`eval`/`bench`, batch
    mode, Triton) takes its graphs from here, so they describe the real shapes.
    """

    reference: str
    spec: ModelSpec
    weights: ResolvedWeights

    @property
    def config(self) -> dict[str, Any]:
        return self.spec.config

    @property
    def graphs(self) -> tuple[GraphSpec, ...]:
        return self.spec.graphs  # type: ignore[return-value]  (always a tuple once resolved)

    @property
    def variant(self) -> str:
        return self.weights.variant

    @property
    def sha256(self) -> str:
        return self.weights.sha256 or ""


def resolve(
    model: str | ModelSpec | ResolvedModel,
    weights: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    download: bool = True,
) -> ResolvedModel:
    """Resolve a model's config and graphs from the weights actually used, once.

    `model` is a reference ("NAME", "NAME:VARIANT"), a registered spec (its default
    variant) or an already resolved model (returned as is). `weights` is a
    local safetensors file used instead of the variant's. The config is the
    spec's defaults, then the config stored in the file (or, for a hub file,
    its `config.json` through the spec's `hub_config`), then `overrides`; the
    graphs are the spec's graphs for that config. The file's integrity,
    checksum and model name are checked; torch is not imported.
    """
    if isinstance(model, ResolvedModel):
        return model
    reference = model.name if isinstance(model, ModelSpec) else model
    spec = get_spec(reference)
    located = resolve_weights(reference, weights, download=download)
    metadata = verify(located)
    located = ResolvedWeights(located.model, located.variant, located.path,
                              located.sha256 or file_sha256(located.path), located.card)
    config = {**stored_config(metadata, located.path), **_hub_config(spec, located.path, metadata), **(overrides or {})}
    return ResolvedModel(reference, spec.with_config(config), located)


def build(name: str, **config: Any):
    """A randomly initialised model with the default config updated by `config`.

    Like `load`, it carries `zoo_spec`: the spec resolved for that config.
    """
    spec = get_spec(name).with_config(config)
    model = builder_of(spec)(**spec.config)
    model.zoo_spec = spec
    model.zoo_config = spec.config
    return model


def builder_of(spec: ModelSpec):
    """The model's `build` function; a path that does not import is a one-line PluginError."""
    plugin = registry().owner("models", spec.name)
    return import_dotted(spec.builder, f"the builder of model '{spec.name}' (plugin '{plugin}')")


def load(model: str | ResolvedModel, weights: str | os.PathLike | None = None, device: str = "cpu"):
    """A model with pretrained weights, in eval mode.

    `model` is a reference, which may carry a variant ("NAME:VARIANT"), or what
    `resolve` returned; `weights` loads a local safetensors file instead.
    The checksum from the card, the file's model name and every tensor shape
    are checked. The module carries `zoo_resolved` (the `ResolvedModel`),
    `zoo_spec`, `zoo_weights` and `zoo_config`.
    """
    resolved = resolve(model, weights)
    spec, path = resolved.spec, resolved.weights.path
    try:
        module = builder_of(spec)(**spec.config)
    except TypeError as exc:
        raise WeightsError(f"{path} carries a config that model '{spec.name}' does not accept ({exc})") from None
    from zoo.weights import load_state_dict

    try:
        module.load_state_dict(load_state_dict(path), strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise WeightsError(
            f"{path} does not fit model '{spec.name}' ({detail}); pass weights trained for '{spec.name}'"
        ) from None
    module.to(device).eval()
    module.zoo_resolved = resolved
    module.zoo_spec = spec
    module.zoo_weights = resolved.weights
    module.zoo_config = spec.config
    return module


def _hub_config(spec: ModelSpec, path: Path, metadata: dict[str, str]) -> dict[str, Any]:
    """For a file saved by another library (no zoo config inside), the config.json
    beside it (the hub's layout), mapped by the spec's `hub_config` function."""
    beside = Path(path).with_name("config.json")
    if "zoo.config" in metadata or not spec.hub_config or not beside.is_file():
        return {}
    import json

    return import_dotted(spec.hub_config)(json.loads(beside.read_text()))

