"""The data that plugins register: model, trainer, exporter and task specs.

Specs are plain dataclasses with dotted paths ("package.module:attribute") for
anything heavy, so listing and describing models never imports torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from zoo.errors import PluginError

DTYPES = ("float32", "float16", "int64", "int32", "bool", "uint8")
EXAMPLE_KINDS = ("normal", "uniform", "image", "integers")
OPTION_TYPES = ("str", "int", "float", "path", "flag")
COMMANDS = ("run", "eval")
_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")
_DOTTED = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


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
    names the registered trainer that produces the weights. `task` names a
    registered `TaskSpec`; `task_config` holds what that task needs to know
    about this model (the classifier that judges a generator, ...), and
    `options` adds the model's own `zoo run` / `zoo eval` flags.
    """

    name: str
    task: str
    builder: str
    graphs: tuple[GraphSpec, ...]
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

    def graph(self, name: str | None = None) -> GraphSpec:
        if name is None:
            return self.graphs[0]
        for graph in self.graphs:
            if graph.name == name:
                return graph
        known = ", ".join(g.name for g in self.graphs)
        raise PluginError(f"model '{self.name}' has no graph '{name}'; its graphs are: {known}")

    def graph_with_role(self, role: str) -> GraphSpec | None:
        """The graph whose `role` is `role`, or None when the model has none."""
        return next((graph for graph in self.graphs if graph.role == role), None)


@dataclass(frozen=True)
class TrainerSpec:
    """A training recipe: `recipe` is a dotted path to a `zoo.Recipe` subclass.

    `defaults` holds the recipe's default options (epochs, batch_size, lr, ...),
    which `zoo train` flags override.
    """

    name: str
    recipe: str
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Setting:
    """One key of an exporter's own configuration section, `[<exporter name>]`.

    `default` fixes the type (bool, int, float, str or a list of them), which
    is checked in files, environment variables (`ZOO_<SECTION>_<KEY>`) and
    flags exactly like the core's sections. With `flag`, `zoo export` and
    `zoo build-engine` also take it as `--<key with dashes>`.
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


def validate_model_spec(spec: ModelSpec) -> None:
    """Raise PluginError naming the first problem of a model spec."""
    _check(isinstance(spec, ModelSpec), f"expected a ModelSpec, got {type(spec).__name__}")
    _check(_NAME.match(spec.name or ""), f"model name {spec.name!r} must be lower-case letters, digits, '-' or '_'")
    _check(_NAME.match(spec.task or ""), f"model '{spec.name}': task {spec.task!r} must name a registered task")
    _check(_DOTTED.match(spec.builder or ""), f"model '{spec.name}': builder {spec.builder!r} must be 'module:function'")
    _check(spec.graphs, f"model '{spec.name}': at least one graph is required")
    _check(spec.hub_config is None or _DOTTED.match(spec.hub_config), f"model '{spec.name}': hub_config {spec.hub_config!r} must be 'module:function'")
    names = [g.name for g in spec.graphs]
    _check(len(set(names)) == len(names), f"model '{spec.name}': graph names repeat: {names}")
    for graph in spec.graphs:
        _check(graph.module is None or _DOTTED.match(graph.module), f"model '{spec.name}': graph module {graph.module!r} must be 'module:function'")
        _check(graph.inputs and graph.outputs, f"model '{spec.name}': graph '{graph.name}' needs inputs and outputs")
        outputs = {t.name for t in graph.outputs}
        for key, values in graph.tolerances.items():
            output, _, precision = key.partition("@")
            _check(output == "*" or output in outputs, f"model '{spec.name}': graph '{graph.name}' has a tolerance for unknown output {output!r}")
            _check(precision in ("", "fp16", "int8"), f"model '{spec.name}': tolerance key {key!r} may end in @fp16 or @int8 only")
            _check(isinstance(values, dict) and set(values) <= {"atol", "rtol", "mismatch"}, f"model '{spec.name}': tolerance {key!r} must be a dict of atol, rtol, mismatch")
        for tensor in graph.inputs + graph.outputs:
            _check(tensor.dtype in DTYPES, f"model '{spec.name}': tensor '{tensor.name}' has dtype {tensor.dtype!r}, expected one of {', '.join(DTYPES)}")
            _check(tensor.example in EXAMPLE_KINDS, f"model '{spec.name}': tensor '{tensor.name}' has example {tensor.example!r}, expected one of {', '.join(EXAMPLE_KINDS)}")
    for variant in spec.weights:
        _check(_NAME.match(variant), f"model '{spec.name}': variant name {variant!r} is invalid")
    _check(isinstance(spec.task_config, dict), f"model '{spec.name}': task_config must be a dict")
    _validate_options(spec.options, f"model '{spec.name}'")
    inputs = {tensor.name for graph in spec.graphs for tensor in graph.inputs}
    for option in spec.options:
        _check(option.input is None or option.input in inputs,
               f"model '{spec.name}': option '{option.name}' fills input {option.input!r}, which no graph has")


def validate_trainer_spec(spec: TrainerSpec) -> None:
    _check(isinstance(spec, TrainerSpec), f"expected a TrainerSpec, got {type(spec).__name__}")
    _check(_NAME.match(spec.name or ""), f"trainer name {spec.name!r} is invalid")
    _check(_DOTTED.match(spec.recipe or ""), f"trainer '{spec.name}': recipe {spec.recipe!r} must be 'module:Class'")


def validate_exporter_spec(spec: ExporterSpec) -> None:
    _check(isinstance(spec, ExporterSpec), f"expected an ExporterSpec, got {type(spec).__name__}")
    _check(_NAME.match(spec.name or ""), f"exporter name {spec.name!r} is invalid")
    _check(_DOTTED.match(spec.export or ""), f"exporter '{spec.name}': export {spec.export!r} must be 'module:function'")
    for path in (spec.check, spec.inspect, spec.build, *spec.backends.values()):
        _check(path is None or _DOTTED.match(path), f"exporter '{spec.name}': {path!r} must be 'module:function'")
    for backend in spec.backends:
        _check(_NAME.match(backend) and backend != "torch", f"exporter '{spec.name}': backend name {backend!r} is invalid")
    if spec.settings:
        from zoo.config import defaults

        _check(spec.name not in defaults(), f"exporter '{spec.name}': its settings would replace the core's [{spec.name}] section; rename the target")
    for setting in spec.settings:
        _check(isinstance(setting, Setting) and re.match(r"^[a-z][a-z0-9_]*$", setting.key or ""),
               f"exporter '{spec.name}': settings must be zoo.Setting with lower_case keys, got {setting!r}")
        _check(isinstance(setting.default, (bool, int, float, str, list)),
               f"exporter '{spec.name}': setting '{setting.key}' needs a TOML default (bool, int, float, str or list)")


def validate_task_spec(spec: TaskSpec) -> None:
    _check(isinstance(spec, TaskSpec), f"expected a TaskSpec, got {type(spec).__name__}")
    _check(_NAME.match(spec.name or ""), f"task name {spec.name!r} is invalid")
    for what in ("run", "evaluate", "quality", "batch"):
        path = getattr(spec, what)
        _check((what != "run" and path is None) or _DOTTED.match(path or ""),
               f"task '{spec.name}': {what} {path!r} must be 'module:attribute'")
    _validate_options(spec.options, f"task '{spec.name}'")


def _validate_options(options: tuple[Option, ...], owner: str) -> None:
    names = [option.name for option in options]
    _check(len(set(names)) == len(names), f"{owner}: option names repeat: {names}")
    for option in options:
        _check(isinstance(option, Option), f"{owner}: options must be zoo.Option, got {type(option).__name__}")
        _check(_NAME.match(option.name or ""), f"{owner}: option name {option.name!r} must be lower-case letters, digits, '-' or '_'")
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
