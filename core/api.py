"""The Python API behind the `zoo` command line.

Listing and describing models never imports torch; building, loading and
exporting import it inside the functions that need it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zoo.config import load_config
from zoo.errors import WeightsError
from zoo.registry import Registry, load_registry
from zoo.specs import ModelSpec, import_dotted
from zoo.weights import ResolvedWeights, resolve, resolve_file, split_reference, stored_config, verify

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
    return resolve(spec, split_reference(name)[1], download)


def build(name: str, **config: Any):
    """A randomly initialised model with the default config updated by `config`."""
    spec = get_spec(name)
    return builder_of(spec)(**{**spec.config, **config})


def builder_of(spec: ModelSpec):
    """The model's `build` function; a path that does not import is a one-line PluginError."""
    plugin = registry().owner("models", spec.name)
    return import_dotted(spec.builder, f"the builder of model '{spec.name}' (plugin '{plugin}')")


def load(name: str, weights: str | os.PathLike | None = None, device: str = "cpu"):
    """A model with pretrained weights, in eval mode.

    `name` may carry a variant ("NAME:VARIANT"); `weights` loads a local
    safetensors file instead. The checksum from the card, the file's model
    name and every tensor shape are checked.
    """
    spec = get_spec(name)
    resolved = resolve_weights(name, weights)
    metadata = verify(resolved)
    config = {**spec.config, **stored_config(metadata), **_hub_config(spec, resolved.path, metadata)}
    try:
        model = builder_of(spec)(**config)
    except TypeError as exc:
        raise WeightsError(f"{resolved.path} carries a config that model '{spec.name}' does not accept ({exc})") from None
    from zoo.weights import load_state_dict

    try:
        model.load_state_dict(load_state_dict(resolved.path), strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise WeightsError(
            f"{resolved.path} does not fit model '{spec.name}' ({detail}); pass weights trained for '{spec.name}'"
        ) from None
    model.to(device).eval()
    model.zoo_weights = resolved
    model.zoo_config = config
    return model


def _hub_config(spec: ModelSpec, path: Path, metadata: dict[str, str]) -> dict[str, Any]:
    """For a file saved by another library (no zoo config inside), the config.json
    beside it (the hub's layout), mapped by the spec's `hub_config` function."""
    beside = Path(path).with_name("config.json")
    if "zoo.config" in metadata or not spec.hub_config or not beside.is_file():
        return {}
    import json

    return import_dotted(spec.hub_config)(json.loads(beside.read_text()))

