"""Layered configuration.

Layers, lowest first: the packaged zoo.toml, the user file ($ZOO_CONFIG or
~/.config/zoo/zoo.toml), ./zoo.toml, ZOO_<SECTION>_<KEY> environment
variables (and the aliases below, such as ZOO_DATA), then command-line flags.
A relative `[data] root` in a file is relative to that file. The packaged file
is also the schema of the core's sections; each export target declares its
own section (`ExporterSpec.settings`, `[trt]` for the TensorRT target),
checked the same way: a key the schema lacks or a value of another type is an
error naming the file, the key and the expected type.
"""

from __future__ import annotations

import copy
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from zoo.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Numeric keys whose value must lie in a range (inclusive), checked in every layer.
# ONNX opsets below 7 predate the operators any exported graph uses; 23 is the newest
# that torch.onnx's exporters accept.
RANGES = {
    ("export", "opset"): (7, 23),
    ("export", "atol"): (0.0, None),
    ("export", "rtol"): (0.0, None),
    ("export", "quality_examples"): (1, None),
    ("export", "max_quality_drop"): (0.0, 1.0),
    ("export", "calibration_examples"): (1, None),
    ("export", "validate_batch_sizes"): (1, None),
    ("trt", "min_batch"): (1, None),
    ("trt", "opt_batch"): (1, None),
    ("trt", "max_batch"): (1, None),
    ("trt", "workspace_mb"): (1, None),
    ("trt", "calibration_batches"): (1, None),
    ("triton", "max_batch_size"): (1, None),
    ("triton", "preferred_batch_sizes"): (1, None),
    ("triton", "max_queue_delay_us"): (0, None),
    ("run", "onnx_threads"): (0, None),
    ("train", "checkpoint_every"): (1, None),
    ("train", "log_every"): (1, None),
}

_ALIASES = {
    "ZOO_DATA": ("data", "root"),
    "ZOO_DISABLE_PLUGINS": ("plugins", "disabled"),
    "ZOO_STRICT_PLUGINS": ("plugins", "strict"),
}


def read_toml(path: Path, what: str = "file") -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid {what} {path}: {exc}; fix the TOML syntax") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None


def defaults() -> dict[str, Any]:
    with resources.as_file(resources.files("zoo") / "zoo.toml") as path:
        return read_toml(path, "packaged config")


def user_config_path() -> Path | None:
    """$ZOO_CONFIG (which must exist; set it empty for no user file), else ~/.config/zoo/zoo.toml."""
    if "ZOO_CONFIG" in os.environ:
        if not os.environ["ZOO_CONFIG"]:
            return None
        path = Path(os.environ["ZOO_CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"ZOO_CONFIG={os.environ['ZOO_CONFIG']} names no file; create it, or set ZOO_CONFIG= (empty) for no user config")
        return path
    base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return base / "zoo" / "zoo.toml"


def load_config(
    overrides: dict[str, dict[str, Any]] | None = None,
    cwd: Path | None = None,
    sections: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The merged configuration; `overrides` are the CLI flags ({section: {key: value}}).

    `sections` are the export targets' own sections with their defaults
    (`zoo.api.configuration()` passes those of the installed targets). Without
    them only the core's sections are read and checked, and sections the core
    does not know are skipped: the registry checks them once the plugins that
    declare them are loaded.
    """
    config = defaults()
    for section, keys in (sections or {}).items():
        config.setdefault(section, copy.deepcopy(keys))
    schema = copy.deepcopy(config)
    skip = sections is None
    for path in (user_config_path(), (cwd or Path.cwd()) / "zoo.toml"):
        if path is not None and path.is_file():
            layer = read_toml(path, "config file")
            _merge(config, layer, schema, str(path), skip)
            _anchor_paths(config, layer, path.parent)
    _merge(config, _from_environment(schema), schema, "environment")
    if overrides:
        _merge(config, overrides, schema, "command line", skip)
    return config


def _anchor_paths(config: dict[str, Any], layer: dict[str, Any], folder: Path) -> None:
    """A relative data root in a config file is relative to that file, so it holds from any cwd."""
    root = layer.get("data", {}).get("root")
    if root and not Path(root).expanduser().is_absolute():
        config["data"]["root"] = os.path.normpath(folder.absolute() / Path(root).expanduser())


def _from_environment(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    layer: dict[str, dict[str, Any]] = {}
    for section, keys in schema.items():
        for key, default in keys.items():
            env = f"ZOO_{section}_{key}".upper()
            if env in os.environ:
                layer.setdefault(section, {})[key] = _parse_env(env, os.environ[env], default)
    for env, (section, key) in _ALIASES.items():
        if env in os.environ:
            layer.setdefault(section, {})[key] = _parse_env(env, os.environ[env], schema[section][key])
    return layer


def _parse_env(env: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"invalid {env}={raw!r}: expected 1/0, true/false")
    if isinstance(default, list):
        return [item.strip() for item in raw.split(",") if item.strip()] if "[" not in raw else _toml_value(env, raw)
    if isinstance(default, str):
        return raw
    return _toml_value(env, raw)


def _toml_value(env: str, raw: str) -> Any:
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        raise ConfigError(f"invalid {env}={raw!r}: not a number or list") from None


def _merge(config: dict, layer: dict, schema: dict, source: str, skip_unknown_sections: bool = False) -> None:
    for section, values in layer.items():
        if section not in schema and skip_unknown_sections:
            continue
        if section not in schema:
            known = ", ".join(schema)
            raise ConfigError(f"invalid config {source}: unknown section [{section}]; known sections: {known}")
        if not isinstance(values, dict):
            raise ConfigError(f"invalid config {source}: [{section}] must be a table")
        for key, value in values.items():
            if key not in schema[section]:
                known = ", ".join(schema[section])
                raise ConfigError(f"invalid config {source}: unknown key {section}.{key}; known keys: {known}")
            expected = schema[section][key]
            if not same_type(value, expected):
                raise ConfigError(
                    f"invalid config {source}: {section}.{key} must be {type_name(expected)}, got {value!r}"
                )
            _check_range(section, key, value, source)
            config[section][key] = float(value) if isinstance(expected, float) else value


def _check_range(section: str, key: str, value: Any, source: str) -> None:
    if (section, key) not in RANGES:
        return
    low, high = RANGES[(section, key)]
    for item in value if isinstance(value, list) else [value]:
        if (low is not None and item < low) or (high is not None and item > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            env = f"ZOO_{section}_{key}".upper()
            raise ConfigError(f"invalid config {source}: {section}.{key} ({env}) = {value!r} must be {bound}")


def same_type(value: Any, expected: Any) -> bool:
    """Whether `value` has the type of `expected` (an int passes for a float; list items are checked)."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(expected, bool)
    if isinstance(expected, float):
        return isinstance(value, (int, float))
    if isinstance(expected, list):
        return isinstance(value, list) and all(
            not expected or same_type(item, expected[0]) for item in value
        )
    return isinstance(value, type(expected))


def type_name(value: Any) -> str:
    """How a message names the type of `value`: "an integer", "a list of strings"."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, list):
        inner = type_name(value[0]) if value else "values"
        return f"a list of {inner.removeprefix('a ').removeprefix('an ')}s"
    return {int: "an integer", float: "a number", str: "a string"}.get(type(value), type(value).__name__)
