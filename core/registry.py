"""Plugin loading and the registry of models, trainers, exporters and tasks.

Each entry point of the ``zoo`` group loads in isolation: an import error, a
misspelled hook, a hook that raises or an invalid spec is recorded against the
plugin that caused it and reported by ``zoo plugins`` and a one-line warning,
while every other plugin keeps working.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Iterable

import pluggy

from zoo import hookspecs
from zoo.errors import PluginError, UnknownNameError
from zoo.specs import (
    ExporterSpec,
    ModelSpec,
    TaskSpec,
    TrainerSpec,
    validate_exporter_spec,
    validate_model_spec,
    validate_task_spec,
    validate_trainer_spec,
)

ENTRY_POINT_GROUP = "zoo"
_HOOKS = {
    "register_models": ("models", validate_model_spec),
    "register_trainers": ("trainers", validate_trainer_spec),
    "register_exporters": ("exporters", validate_exporter_spec),
    "register_tasks": ("tasks", validate_task_spec),
}


@dataclass
class PluginInfo:
    """What `zoo plugins` shows about one entry point."""

    name: str
    value: str
    distribution: str = ""
    version: str = ""
    hooks: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    disabled: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Registry:
    """Everything the loaded plugins registered, keyed by name."""

    models: dict[str, ModelSpec] = field(default_factory=dict)
    trainers: dict[str, TrainerSpec] = field(default_factory=dict)
    exporters: dict[str, ExporterSpec] = field(default_factory=dict)
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    collisions: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    plugins: dict[str, PluginInfo] = field(default_factory=dict)

    def model(self, name: str) -> ModelSpec:
        """The spec of model `name`; a "name:variant" reference is accepted."""
        return self._lookup("models", name.partition(":")[0], "model", "zoo list")

    def trainer(self, name: str) -> TrainerSpec:
        return self._lookup("trainers", name, "trainer", "zoo plugins")

    def exporter(self, name: str) -> ExporterSpec:
        return self._lookup("exporters", name, "export target", "zoo plugins")

    def task(self, name: str) -> TaskSpec:
        return self._lookup("tasks", name, "task", "zoo plugins")

    def config_sections(self) -> dict[str, dict[str, Any]]:
        """The configuration sections the export targets declare: {target: {key: default}}."""
        return {name: {s.key: s.default for s in spec.settings} for name, spec in self.exporters.items() if spec.settings}

    def backends(self) -> dict[str, tuple[str, str]]:
        """Runtime backends the export targets provide: {backend: (target, dotted path of its opener)}."""
        found: dict[str, tuple[str, str]] = {}
        for target, spec in sorted(self.exporters.items()):
            for backend, opener in spec.backends.items():
                if backend in found:
                    raise PluginError(
                        f"backend '{backend}' is provided by both target '{found[backend][0]}' and target '{target}'; "
                        f"disable one with ZOO_DISABLE_PLUGINS={self.owner('exporters', target)}"
                    )
                found[backend] = (target, opener)
        return found

    def backend(self, name: str) -> tuple[str, str]:
        """(target, opener) of runtime backend `name`."""
        table = self.backends()
        if name not in table:
            close = difflib.get_close_matches(name, list(table), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else "use one of torch, " + ", ".join(table)
            raise UnknownNameError(f"unknown backend '{name}'; {hint}")
        return table[name]

    def find_models(self, pattern: str = "*", task: str | None = None) -> list[ModelSpec]:
        return [
            spec
            for name, spec in sorted(self.models.items())
            if fnmatch.fnmatch(name, pattern) and (task is None or spec.task == task)
        ]

    def owner(self, kind: str, name: str) -> str:
        return self.owners.get((kind, name), "?")

    def _lookup(self, kind: str, name: str, label: str, hint: str) -> Any:
        table = getattr(self, kind)
        if name in table:
            return table[name]
        if (kind, name) in self.collisions:
            first, second = self.collisions[(kind, name)][:2]
            raise PluginError(
                f"{label} '{name}' is registered by both plugin '{first}' and plugin '{second}'; "
                f"disable one with ZOO_DISABLE_PLUGINS={second}"
            )
        disabled = sorted(p.name for p in self.plugins.values() if p.disabled)
        if name in disabled:
            raise UnknownNameError(
                f"unknown {label} '{name}': plugin '{name}' is disabled by ZOO_DISABLE_PLUGINS (or [plugins] disabled); "
                f"remove it from that list to use it"
            )
        close = difflib.get_close_matches(name, list(table), n=3, cutoff=0.5)
        hint_text = f"did you mean {', '.join(repr(c) for c in close)}?" if close else f"see `{hint}`"
        if disabled:
            hint_text += f"; plugins disabled by ZOO_DISABLE_PLUGINS (or [plugins] disabled): {', '.join(disabled)}"
        raise UnknownNameError(f"unknown {label} '{name}'; {hint_text}")


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("zoo")
    pm.add_hookspecs(hookspecs)
    return pm


def _trace(line: str) -> None:
    """ZOO_TRACE_PLUGINS=1 logs every plugin load, hook call and registration to stderr."""
    if os.environ.get("ZOO_TRACE_PLUGINS"):
        print(f"zoo: trace: {line}", file=sys.stderr)


def load_registry(
    entry_points: Iterable[metadata.EntryPoint] | None = None,
    disabled: Iterable[str] = (),
    strict: bool = False,
    warn: Callable[[str], None] | None = None,
) -> Registry:
    """Load plugins from entry points and collect what they register.

    `entry_points` defaults to the installed ``zoo`` group. With `strict`,
    the first plugin error raises instead of being recorded. `warn` receives
    one line per problem (default: stderr).
    """
    warn = warn or (lambda line: print(f"zoo: warning: {line}", file=sys.stderr))
    if entry_points is None:
        entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    disabled = set(disabled)
    pm = make_plugin_manager()
    registry = Registry()

    def fail(info: PluginInfo, problem: str) -> None:
        info.errors.append(problem)
        if strict:
            raise PluginError(f"plugin '{info.name}': {problem} (ZOO_STRICT_PLUGINS is set)")
        warn(f"plugin '{info.name}' {problem}; see `zoo plugins`")

    for ep in sorted(entry_points, key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            value=ep.value,
            distribution=dist.name if dist else "",
            version=dist.version if dist else "",
        )
        registry.plugins[ep.name] = info
        if ep.name in disabled:
            info.disabled = True
            continue
        _trace(f"loading plugin '{ep.name}' from {ep.value}")
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except (Exception, SystemExit) as exc:  # a broken plugin must not take the zoo down, even by exiting
            fail(info, f"failed to load: {_describe(exc)}")
            continue
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            pm.unregister(name=ep.name)
            fail(info, f"implements an unknown hook: {exc}")
            continue
        info.hooks = sorted(
            caller.name for caller in pm.get_hookcallers(pm.get_plugin(ep.name)) or []
        )
        for hook_name in _HOOKS:
            if callable(getattr(plugin, hook_name, None)) and hook_name not in info.hooks:
                fail(info, f"defines {hook_name} without @zoo.hookimpl, so it registers nothing; decorate it with @zoo.hookimpl")

    for hook_name, (kind, validate) in _HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            info = registry.plugins[impl.plugin_name]
            register = _make_register(registry, kind, validate, info, fail)
            _trace(f"calling {hook_name} of plugin '{info.name}'")
            try:
                impl.function(register=register)
            except PluginError as exc:
                fail(info, f"registered an invalid spec: {exc}")
            except (Exception, SystemExit) as exc:
                fail(info, f"raised in {hook_name}: {_describe(exc)}")
    for name, spec in registry.models.items():
        if spec.task not in registry.tasks:
            known = ", ".join(sorted(registry.tasks)) or "none"
            fail(registry.plugins[registry.owner("models", name)],
                 f"registers model '{name}' of task '{spec.task}', which no plugin registers (known tasks: {known}); "
                 f"install the plugin that provides the task, or `zoo run` and `zoo eval` cannot use the model")
    return registry


def _make_register(registry: Registry, kind: str, validate, info: PluginInfo, fail) -> Callable:
    table = getattr(registry, kind)

    def register(spec) -> None:
        validate(spec)
        if kind == "models" and not spec.package:
            # Relative weight and card paths resolve against the plugin's own package.
            spec = dataclasses.replace(spec, package=info.value.partition(":")[0])
        key = (kind, spec.name)
        if key in registry.collisions:
            registry.collisions[key].append(info.name)
            return
        if spec.name in table:
            first = registry.owners[key]
            del table[spec.name]
            registry.collisions[key] = [first, info.name]
            problem = (
                f"registers {kind[:-1]} '{spec.name}', which plugin '{first}' also registers; "
                f"neither is used until one is disabled (ZOO_DISABLE_PLUGINS={info.name})"
            )
            fail(info, problem)
            registry.plugins[first].errors.append(problem.replace(f"plugin '{first}'", f"plugin '{info.name}'"))
            return
        _trace(f"plugin '{info.name}' registered {kind[:-1]} '{spec.name}'")
        table[spec.name] = spec
        registry.owners[key] = info.name
        info.registered.append(f"{kind[:-1]}:{spec.name}")

    return register


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
