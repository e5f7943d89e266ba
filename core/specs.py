"""The data that plugins register: model, trainer, exporter and task specs.

Specs are plain dataclasses with dotted paths ("package.module:attribute") for
anything heavy, so listing and describing models never imports torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from zoo.errors import PluginError

DTYPES = ("float32", "float16", "int64", "int32", "bool", "uint8")
EXAMPLE_KINDS = ("normal", "uniform", "image", "integers")
OPTION_TYPES = ("str", "int", "float", "path", "flag")
COMMANDS = ("run", "eval")
_NAME = re.compile(r"[a-z][a-z0-9_\-]*")
_DOTTED = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output.

    `shape` mixes ints and names: a name ("batch") is a symbolic axis.
    `example` says how the core draws random inputs for export and validation:
    "normal" (standard normal), "uniform" (0..1), "image" (-1..1) or
    "integers" (uniform ints in `[low, high)`).
    """

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"
    example: str = "normal"
    low: int = 0
    high: int = 2
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "description": self.description,
        }


@dataclass(frozen=True)
class GraphSpec:
    """One exported graph of a model.

    Most models export a single graph named "model". Models that deploy as
    several graphs (an encoder and a decoder, two translation directions) list
    one `GraphSpec` each. `module` is a dotted path to a function
    `(model) -> torch.nn.Module` that returns the callable to export, taking
    the inputs in order; None exports the model itself. `tolerances` loosens
    or tightens the parity check of this graph (see `zoo.parity`): keys are
    "*" (every output) or an output name, optionally suffixed "@fp16" or
    "@int8" for reduced-precision targets; values hold "atol", "rtol" and
    "mismatch" (the share of elements allowed outside atol + rtol * |ref|).
    `axis_ranges` gives symbolic axes other than "batch" the (min, opt, max)
    sizes a deployed graph accepts, for engine profiles (a KV cache from 0 to
    the model's context).
    `role` says what the graph is to the model's task ("encoder", "mapping",
    "features", ...): tasks find the graphs they need by role, never by name.
    """

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    name: str = "model"
    module: str | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    postprocessing: dict[str, Any] = field(default_factory=dict)
    example_axes: dict[str, int] = field(default_factory=dict)
    description: str = ""
    tolerances: dict[str, dict[str, float]] = field(default_factory=dict)
    axis_ranges: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    role: str = ""

    def axis_sizes(self, batch: int) -> dict[str, int]:
        """Sizes for every symbolic axis: `batch` for "batch", examples for the rest."""
        return {**self.example_axes, "batch": batch}


@dataclass(frozen=True)
class Option:
    """A command-line option that a task or a model adds to `zoo run` or `zoo eval`.

    `name` is the flag without its dashes ("style-mix" gives `--style-mix`);
    the value reaches the task's functions as `options["style_mix"]`. `type`
    is "str", "int", "float", "path" or "flag" (true when given). `commands`
    says where the flag appears. `input`, when set, names a graph input the
    value fills for every example, in place of the value `zoo run` would draw
    at random (a class label, a truncation psi); `selects_graph` makes the
    value the name of the graph `zoo run` opens (a translation direction).
    `minimum` and `maximum` bound an "int" or "float" value when the command
    line is parsed.
    """

    name: str
    type: str = "str"
    default: Any = None
    help: str = ""
    commands: tuple[str, ...] = ("run",)
    choices: tuple[Any, ...] = ()
    input: str | None = None
    selects_graph: bool = False
    metavar: str | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def key(self) -> str:
        """The option's key in the `options` dict a task function receives."""
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class WeightsSpec:
    """A weights variant: where the safetensors file is and what it must hash to.

    `uri` is a path relative to the plugin package, an absolute or `~` path,
    or `hf://owner/repo/path/in/repo.safetensors@revision`. `card` is the
    variant's card (TOML, relative to the plugin package); when `sha256` is
    not given here it is read from the card. `evaluation` names the data
    `zoo eval` scores the variant on, as "dataset/split" strings, the first
    being the variant's own (for example ("usps/test", "mnist/heldout")).
    """

    uri: str
    card: str | None = None
    sha256: str | None = None
    description: str = ""
    evaluation: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """A model architecture and its pretrained variants.

    `builder` is a dotted path to `build(**config) -> torch.nn.Module`;
    `config` holds the default hyper-parameters. `weights` maps variant names
    to `WeightsSpec`; "default" is used when none is asked for. `trainer`
    names the registered trainer that produces the weights.

    `graphs` is either a tuple of `GraphSpec` (a model whose shapes never
    change) or a dotted path "module:function" to a torch-free
    `graphs(config: dict) -> Sequence[GraphSpec]`, for a model whose shapes
    follow its config (a latent size, a vocabulary, a number of layers). The
    core calls it once with the config stored in the weights actually used
    (`zoo.resolve`), or with the config a run trains (`with_config`); code
    downstream of that only ever sees the resolved tuple.

    `task` names a registered `TaskSpec`; `task_config` holds what that task
    needs to know about this model (the classifier that judges a generator,
    ...), and `options` adds the model's own `zoo run` / `zoo eval` flags.
    """

    name: str
    task: str
    builder: str
    graphs: tuple[GraphSpec, ...] | str
    config: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, WeightsSpec] = field(default_factory=dict)
    trainer: str | None = None
    description: str = ""
    package: str = ""
    hub_config: str | None = None  # "module:fn" mapping a hub config.json to `config` keys, for foreign weights
    task_config: dict[str, Any] = field(default_factory=dict)
    options: tuple[Option, ...] = ()

    @property
    def default_variant(self) -> str | None:
        if "default" in self.weights:
            return "default"
        return next(iter(self.weights), None)

    @property
    def resolved(self) -> bool:
        """True when `graphs` is a tuple: fixed by the plugin, or resolved for one config."""
        return not isinstance(self.graphs, str)

    def with_config(self, config: dict[str, Any] | None = None) -> "ModelSpec":
        """This spec for one config: `config` over the defaults, graphs resolved for it.

        A graph function that fails, or returns graphs that do not validate,
        raises PluginError naming the model and the function.
        """
        merged = {**self.config, **(config or {})}
        if self.resolved:
            return replace(self, config=merged)
        function: Callable[[dict[str, Any]], Any] = import_dotted(self.graphs, f"the graphs function of model '{self.name}'")
        try:
            graphs = tuple(function(dict(merged)))
        except Exception as exc:  # a plugin's bug or a config it cannot describe: one line, attributed
            raise PluginError(f"the graphs function {self.graphs!r} of model '{self.name}' failed for config "
                              f"{json.dumps(merged, default=str)}: {type(exc).__name__}: {exc}") from None
        _check_graphs(self.name, graphs)
        return replace(self, config=merged, graphs=graphs)

    def graph(self, name: str | None = None) -> GraphSpec:
        graphs = self._resolved_graphs()
        if name is None:
            return graphs[0]
        for graph in graphs:
            if graph.name == name:
                return graph
        known = ", ".join(g.name for g in self.graphs)
        raise PluginError(f"model '{self.name}' has no graph '{name}'; its graphs are: {known}")

    def graph_with_role(self, role: str) -> GraphSpec | None:
        """The graph whose `role` is `role`, or None when the model has none."""
        return next((graph for graph in self._resolved_graphs() if graph.role == role), None)

    def _resolved_graphs(self) -> tuple[GraphSpec, ...]:
        if not self.resolved:
            raise PluginError(f"the graphs of model '{self.name}' follow its config; resolve them first with "
                              f"zoo.resolve('{self.name}', weights=...) or spec.with_config(config)")
        return self.graphs  # type: ignore[return-value]


@dataclass(frozen=True)
class TrainerSpec:
    """A training recipe: `recipe` is a dotted path to a `zoo.Recipe` subclass.

    `defaults` holds the recipe's default options (epochs, batch_size, lr, ...),
    which `zoo train` flags override. `hyperparameters` declares the recipe's
    own options as `Setting`s (`zoo train --set KEY=VALUE`, typed by their
    defaults); the recipe reads them as `self.settings`.
    """

    name: str
    recipe: str
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    hyperparameters: tuple[Setting, ...] = ()


@dataclass(frozen=True)
class Setting:
    """One declared option: a key of an exporter's own configuration section,
    `[<exporter name>]`, or a recipe hyperparameter (`TrainerSpec.hyperparameters`).

    `default` fixes the type (bool, int, float, str or a list of them), which
    is checked in files, environment variables (`ZOO_<SECTION>_<KEY>`), flags
    and `zoo train --set` exactly like the core's sections. With `flag`,
    `zoo export` and `zoo build-engine` also take an exporter's setting as
    `--<key with dashes>`.
    """

    key: str
    default: Any
    help: str = ""
    flag: bool = False

    @property
    def option(self) -> str:
        return "--" + self.key.replace("_", "-")


@dataclass(frozen=True)
class ExporterSpec:
    """An export target.

    `export` is a dotted path to `export(job: zoo.ExportJob) -> dict`, which
    writes files into `job.out_dir` and returns the manifest entries it adds.
    `check` is a dotted path to `check() -> str | None` returning why the
    target cannot run on this machine, or None when it can. `inspect`, when
    given, is a dotted path to `inspect(bundle, config, precision) ->
    zoo.exporting.Report`: what the target would make of an ONNX bundle,
    computed without the target's runtime (`zoo export --check-only`).
    `build`, when given, is a dotted path to `build(bundle, config, precision,
    log) -> list[str]` that adds the target's files to an existing ONNX
    bundle on the machine that runs them (`zoo build-engine BUNDLE --target
    NAME`). `settings` declare the target's configuration section
    `[NAME]` (and its flags); the job's `config` holds it after files,
    environment and flags. `backends` maps the runtime backends the target
    provides (`zoo run --backend NAME`) to dotted paths of
    `open(request: zoo.runtime.BackendRequest) -> backend`.
    """

    name: str
    export: str
    precisions: tuple[str, ...] = ("fp32",)
    tasks: tuple[str, ...] = ()  # () applies to every task
    check: str | None = None
    inspect: str | None = None
    build: str | None = None
    settings: tuple[Setting, ...] = ()
    backends: dict[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class TaskSpec:
    """What `zoo run` and `zoo eval` do for the models of one task.

    `run`, `evaluate` and `quality` are dotted paths to functions
    `(spec, backend, options)` returning the line `zoo run` prints, the
    metrics `zoo eval` prints, and a `zoo.tasks.Quality` (the one measure
    that fp16/int8 exports must keep); `evaluate` and `quality` may be None.
    The modules they name must import without torch. `options` are the
    task's own `zoo run` / `zoo eval` flags; `batch` is a dotted path to a
    `zoo.batch.BatchTask` when the task reads input files
    (`zoo run --input-dir`); `random_inputs` says that `run` draws graph
    inputs at random (latents, noise), so `--input NAME=VALUE` may fix them.
    `data` names the data sets (folders under the data root) that `evaluate`
    and `quality` read.
    """

    name: str
    run: str
    evaluate: str | None = None
    quality: str | None = None
    options: tuple[Option, ...] = ()
    batch: str | None = None
    random_inputs: bool = False
    data: tuple[str, ...] = ()
    description: str = ""


_HUB_URI = re.compile(r"hf://[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*(/[^@\s/][^@\s]*)?(@[\w.\-/]+)?")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _check_types(label: str, obj: Any, fields: dict[str, Any]) -> None:
    """Each attribute of `obj` named in `fields` is an instance of the type(s) given."""
    for name, expected in fields.items():
        value = getattr(obj, name, None)
        wanted = expected if isinstance(expected, tuple) else (expected,)
        names = " or ".join("None" if t is type(None) else t.__name__ for t in wanted)
        _check(isinstance(value, wanted), f"{label}: {name} must be {names}, got {type(value).__name__} {value!r:.60}")


def _check_model_types(spec: ModelSpec) -> None:
    """Wrong-typed fields fail at registration, not later in every command that reads them."""
    label = f"model {spec.name!r}"
    optional_str = (str, type(None))
    _check_types(label, spec, {"name": str, "task": str, "builder": str, "graphs": (tuple, list, str), "config": dict,
                               "weights": dict, "trainer": optional_str, "description": str, "package": str,
                               "hub_config": optional_str})
    for variant, weights in spec.weights.items():
        _check(isinstance(weights, WeightsSpec), f"{label}: weights[{variant!r}] must be a WeightsSpec, got {type(weights).__name__}")
        _check_types(f"{label} variant {variant!r}", weights, {"uri": str, "card": optional_str, "sha256": optional_str})
        _check(not weights.uri.startswith("hf://") or _HUB_URI.fullmatch(weights.uri),
               f"{label}: weights uri {weights.uri!r} must look like hf://owner/repo[/file.safetensors][@revision]")
        _check(weights.sha256 is None or _SHA256.fullmatch(weights.sha256),
               f"{label}: variant {variant!r} sha256 must be 64 lower-case hex digits")


def validate_model_spec(spec: ModelSpec) -> None:
    """Raise PluginError naming the first problem of a model spec."""
    _check(isinstance(spec, ModelSpec), f"expected a ModelSpec, got {type(spec).__name__}")
    _check_model_types(spec)
    _check(_NAME.fullmatch(spec.name or ""), f"model name {spec.name!r} must be lower-case letters, digits, '-' or '_'")
    _check(_NAME.fullmatch(spec.task or ""), f"model '{spec.name}': task {spec.task!r} must name a registered task")
    _check(_DOTTED.fullmatch(spec.builder or ""), f"model '{spec.name}': builder {spec.builder!r} must be 'module:function'")
    _check(spec.hub_config is None or _DOTTED.fullmatch(spec.hub_config), f"model '{spec.name}': hub_config {spec.hub_config!r} must be 'module:function'")
    if isinstance(spec.graphs, str):
        _check(_DOTTED.fullmatch(spec.graphs), f"model '{spec.name}': graphs {spec.graphs!r} must be a tuple of GraphSpec or 'module:function'")
    else:
        _check_graphs(spec.name, spec.graphs)
    for variant in spec.weights:
        _check(_NAME.fullmatch(variant), f"model '{spec.name}': variant name {variant!r} is invalid")
    _check(isinstance(spec.task_config, dict), f"model '{spec.name}': task_config must be a dict")
    _validate_options(spec.options, f"model '{spec.name}'")
    if not isinstance(spec.graphs, str):  # a graph function's inputs are known once it is resolved
        inputs = {tensor.name for graph in spec.graphs for tensor in graph.inputs}
        for option in spec.options:
            _check(option.input is None or option.input in inputs,
                   f"model '{spec.name}': option '{option.name}' fills input {option.input!r}, which no graph has")


def _check_graph_types(label: str, graphs: Any) -> None:
    optional_str = (str, type(None))
    for graph in graphs:
        _check(isinstance(graph, GraphSpec), f"{label}: graphs must hold GraphSpecs, got {type(graph).__name__}")
        _check_types(f"{label} graph", graph, {"name": str, "inputs": (tuple, list), "outputs": (tuple, list),
                                               "module": optional_str})
        for tensor in (*graph.inputs, *graph.outputs):
            _check(isinstance(tensor, TensorSpec), f"{label}: graph '{graph.name}' must hold TensorSpecs, got {type(tensor).__name__}")
            _check_types(f"{label} graph '{graph.name}' tensor", tensor, {"name": str, "shape": (tuple, list), "dtype": str})
            _check(all(isinstance(d, (int, str)) and not isinstance(d, bool) for d in tensor.shape),
                   f"{label}: tensor '{tensor.name}' has shape {tensor.shape!r}; use whole numbers and axis names")


def _check_graphs(model: str, graphs: Any) -> None:
    """Fixed graphs, or the graphs a graph function returned: types first, then meaning."""
    _check(isinstance(graphs, (tuple, list)) and graphs, f"model '{model}': at least one graph is required")
    _check_graph_types(f"model {model!r}", graphs)
    names = [g.name for g in graphs]
    _check(len(set(names)) == len(names), f"model '{model}': graph names repeat: {names}")
    for graph in graphs:
        _check(graph.module is None or _DOTTED.fullmatch(graph.module), f"model '{model}': graph module {graph.module!r} must be 'module:function'")
        _check(graph.inputs and graph.outputs, f"model '{model}': graph '{graph.name}' needs inputs and outputs")
        outputs = {t.name for t in graph.outputs}
        for key, values in graph.tolerances.items():
            output, _, precision = key.partition("@")
            _check(output == "*" or output in outputs, f"model '{model}': graph '{graph.name}' has a tolerance for unknown output {output!r}")
            _check(precision in ("", "fp16", "int8"), f"model '{model}': tolerance key {key!r} may end in @fp16 or @int8 only")
            _check(isinstance(values, dict) and set(values) <= {"atol", "rtol", "mismatch"}, f"model '{model}': tolerance {key!r} must be a dict of atol, rtol, mismatch")
        for axis, sizes in graph.axis_ranges.items():
            _check(len(sizes) == 3 and all(isinstance(n, int) for n in sizes) and 0 <= sizes[0] <= sizes[1] <= sizes[2],
                   f"model '{model}': graph '{graph.name}' axis_ranges[{axis!r}] must be (min, opt, max) ints, 0 <= min <= opt <= max")
        for tensor in graph.inputs + graph.outputs:
            _check(tensor.dtype in DTYPES, f"model '{model}': tensor '{tensor.name}' has dtype {tensor.dtype!r}, expected one of {', '.join(DTYPES)}")
            _check(tensor.example in EXAMPLE_KINDS, f"model '{model}': tensor '{tensor.name}' has example {tensor.example!r}, expected one of {', '.join(EXAMPLE_KINDS)}")
        for kind in ("preprocessing", "postprocessing"):
            _check_processing(f"model '{model}': graph '{graph.name}' {kind}", getattr(graph, kind))


def _check_processing(where: str, value: Any) -> None:
    """The documented form: {key: {field: JSON value}}, the key a tensor name (or a note on the
    whole graph, such as "environment"), so C++ programs and tasks can read `[key][field]`."""
    _check(isinstance(value, dict), f"{where} must be a dict {{tensor name: {{field: value}}}}, got {type(value).__name__}")
    for key, fields in value.items():
        _check(isinstance(key, str), f"{where}: key {key!r} must be a string (a tensor name)")
        _check(isinstance(fields, dict), f"{where}['{key}'] must be a dict {{field: value}}, got {type(fields).__name__} {fields!r}")
        try:
            json.dumps(fields)
        except (TypeError, ValueError) as exc:
            raise PluginError(f"{where}['{key}'] must hold JSON values (strings, numbers, lists, dicts): {exc}") from None


def validate_trainer_spec(spec: TrainerSpec) -> None:
    _check(isinstance(spec, TrainerSpec), f"expected a TrainerSpec, got {type(spec).__name__}")
    _check_types(f"trainer {spec.name!r}", spec, {"name": str, "recipe": str, "defaults": dict, "hyperparameters": (tuple, list)})
    _check(_NAME.fullmatch(spec.name or ""), f"trainer name {spec.name!r} is invalid")
    _check(_DOTTED.fullmatch(spec.recipe or ""), f"trainer '{spec.name}': recipe {spec.recipe!r} must be 'module:Class'")
    _check_settings(f"trainer '{spec.name}'", "hyperparameters", spec.hyperparameters)


def validate_exporter_spec(spec: ExporterSpec) -> None:
    _check(isinstance(spec, ExporterSpec), f"expected an ExporterSpec, got {type(spec).__name__}")
    _check_types(f"exporter {spec.name!r}", spec, {"name": str, "export": str, "precisions": (tuple, list),
                                                   "tasks": (tuple, list), "check": (str, type(None)),
                                                   "inspect": (str, type(None))})
    _check(_NAME.fullmatch(spec.name or ""), f"exporter name {spec.name!r} is invalid")
    _check(_DOTTED.fullmatch(spec.export or ""), f"exporter '{spec.name}': export {spec.export!r} must be 'module:function'")
    for path in (spec.check, spec.inspect, spec.build, *spec.backends.values()):
        _check(path is None or _DOTTED.fullmatch(path), f"exporter '{spec.name}': {path!r} must be 'module:function'")
    for backend in spec.backends:
        _check(_NAME.fullmatch(backend) and backend != "torch", f"exporter '{spec.name}': backend name {backend!r} is invalid")
    if spec.settings:
        from zoo.config import defaults

        _check(spec.name not in defaults(), f"exporter '{spec.name}': its settings would replace the core's [{spec.name}] section; rename the target")
    _check_settings(f"exporter '{spec.name}'", "settings", spec.settings)


def _check_settings(owner: str, field_name: str, settings: Any) -> None:
    """Declared settings: zoo.Setting objects with lower_case keys, distinct, each with a TOML default (its type)."""
    for setting in settings:
        _check(isinstance(setting, Setting) and re.fullmatch(r"[a-z][a-z0-9_]*", setting.key or ""),
               f"{owner}: {field_name} must be zoo.Setting with lower_case keys, got {setting!r}")
        _check(isinstance(setting.default, (bool, int, float, str, list)),
               f"{owner}: setting '{setting.key}' needs a TOML default (bool, int, float, str or list), which fixes its type")
    keys = [setting.key for setting in settings]
    _check(len(set(keys)) == len(keys), f"{owner}: {field_name} keys repeat: {keys}")


def validate_task_spec(spec: TaskSpec) -> None:
    _check(isinstance(spec, TaskSpec), f"expected a TaskSpec, got {type(spec).__name__}")
    _check(_NAME.fullmatch(spec.name or ""), f"task name {spec.name!r} is invalid")
    for what in ("run", "evaluate", "quality", "batch"):
        path = getattr(spec, what)
        _check((what != "run" and path is None) or _DOTTED.fullmatch(path or ""),
               f"task '{spec.name}': {what} {path!r} must be 'module:attribute'")
    _validate_options(spec.options, f"task '{spec.name}'")


def _validate_options(options: tuple[Option, ...], owner: str) -> None:
    names = [option.name for option in options]
    _check(len(set(names)) == len(names), f"{owner}: option names repeat: {names}")
    for option in options:
        _check(isinstance(option, Option), f"{owner}: options must be zoo.Option, got {type(option).__name__}")
        _check(_NAME.fullmatch(option.name or ""), f"{owner}: option name {option.name!r} must be lower-case letters, digits, '-' or '_'")
        _check(option.type in OPTION_TYPES, f"{owner}: option '{option.name}' has type {option.type!r}, expected one of {', '.join(OPTION_TYPES)}")
        _check(option.commands and set(option.commands) <= set(COMMANDS),
               f"{owner}: option '{option.name}' has commands {option.commands!r}, expected some of {', '.join(COMMANDS)}")


def _check(condition: Any, message: str) -> None:
    if not condition:
        raise PluginError(message)


def import_dotted(path: str, what: str = "") -> Any:
    """Import 'package.module:attribute' and return the attribute.

    A path that does not import (a typo in a spec, a missing dependency of
    the plugin) raises PluginError naming `what` ("the builder of model
    'x'"), the path and the cause, instead of a traceback.
    """
    import importlib

    module_name, _, attribute = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        cause = (str(exc).strip().splitlines() or [""])[0]
        raise PluginError(
            f"{what or 'the plugin object'} {path!r} cannot be imported ({type(exc).__name__}: {cause}); "
            f"fix the dotted path in the plugin's spec or install what the plugin needs"
        ) from None
    return obj
