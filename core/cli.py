"""The `zoo` command line. Every user-fixable problem ends as one line on
stderr and a non-zero exit code, never a traceback."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from zoo import __version__
from zoo.argtypes import OneLineParser, bounded_float, bounded_int, int_list, non_negative_float, non_negative_int, positive_float, positive_int, seed
from zoo.errors import ZooError

MODEL_HELP = "model name, optionally with a weights variant: NAME:VARIANT (see `zoo list`)"
JSON_HELP = "print JSON for scripts"
RUNTIMES = ("ort", "ort-mobile", "opencv", "trt")
DATA_HELP = "the data root, the folder that holds mnist/, usps/, tinyshakespeare/ (default: $ZOO_DATA, else [data] root)"
EXAMPLES = """examples:
  zoo list
  zoo info dcgan
  zoo export dcgan --target onnx -o out/
  zoo run dcgan --backend onnx --n 64 --seed 0 -o samples.png
  zoo run stylegan --truncation 0.7 --style-mix -o mix.png
  zoo run stylegan --help
  zoo train dcgan --data DIR --epochs 25 --out dcgan.safetensors
  zoo data list
  zoo new-plugin mymodel --dir zoo-mymodel
"""


# A string, not a Path: Path("hf://owner/repo") would fold the "//".
WEIGHTS_HELP = ("weights instead of the shipped ones: a safetensors file, a folder in the hub's layout "
                "(model.safetensors, config.json, tokenizer) or hf://owner/repo[/file][@revision] from the Hugging Face cache")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from zoo.boundary import run_command

    def command() -> int | None:
        # `zoo run MODEL` and `zoo eval MODEL` read the registry to build their parser: inside the boundary.
        parser = build_parser(target_flags=_command(argv) in ("export", "build-engine"), argv=argv)
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            _reject_unknown(parser, argv, unknown, args)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 0
        args.argv = argv
        return args.handler(args)

    return run_command(command)


def _command(argv: list[str]) -> str | None:
    return next((word for word in argv if not word.startswith("-")), None)


def _reject_unknown(parser: argparse.ArgumentParser, argv: list[str], unknown: list[str], args=None) -> None:
    """Report unknown arguments with the usage of the command they were given to, and the nearest flag;
    for `zoo run MODEL` / `zoo eval MODEL`, name the model and where its options are listed."""
    import difflib

    command = parser
    for token in argv:
        choices = next((a.choices for a in command._actions if isinstance(a, argparse._SubParsersAction)), {})
        if token in choices:
            command = choices[token]
    flags = [s for action in command._actions for s in action.option_strings if s.startswith("--") or len(s) == 2]
    close = next((match[0] for word in unknown if word.startswith("-")
                  for match in [difflib.get_close_matches(word.split("=")[0], flags, n=1, cutoff=0.65)] if match), None)
    hint = f"; did you mean {close}?" if close else ""
    name = getattr(args, "command", None)
    if name in ("run", "eval") and getattr(args, "model", None):
        from zoo.api import get_spec

        spec = get_spec(args.model)
        raise ZooError(f"{spec.name} ({spec.task}) takes no option {unknown[0]}"
                       + (f" (did you mean {close}?)" if close else "") + "; "
                       f"`zoo {name} {args.model} --help` lists the options of its task and its own")
    command.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")


class ZooParser(OneLineParser):
    """A command's parser; `epilog_function` computes its epilog when help is shown (it may read the registry)."""

    def __init__(self, *args, epilog_function=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.epilog_function = epilog_function

    def format_help(self) -> str:
        if self.epilog_function:
            self.epilog = self.epilog_function()
        return super().format_help()


def _export_epilog() -> str:
    from zoo.api import registry

    lines = ["targets (--target):"]
    for name, exporter in sorted(registry().exporters.items()):
        lines.append(f"  {name:<8} {exporter.description} [precisions: {', '.join(exporter.precisions)}]")
    lines += [
        "precisions (--precision):",
        "  fp32     float32, checked against PyTorch (default)",
        "  fp16     float16 weights and activations, float32 inputs/outputs, checked by the task metric on the data root",
        "  int8     ONNX Runtime quantization of MatMul/Gemm/LSTM, checked by the task metric (the speed-up is reported)",
        "           with ZOO_EXPORT_INT8_MODE=tensorrt (and --target trt): Q/DQ on Conv/MatMul/Gemm for TensorRT",
        "runtimes (--runtime): " + ", ".join(RUNTIMES) + "; `zoo check BUNDLE --runtime R` says whether R loads a bundle",
    ]
    return "\n".join(lines)


class _TrainHelp(argparse.Action):
    """`zoo train [MODEL] --help`: the command's help, then the `--set` keys of MODEL when one is named."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help()
        if getattr(namespace, "model", None):
            from zoo.api import get_spec
            from zoo.training import settings_help, trainer_of

            try:
                spec = get_spec(namespace.model)
                print("\n" + settings_help(spec, trainer_of(spec)))
            except ZooError as exc:
                parser.exit(exc.exit_code, f"zoo: error: {exc}\n")
        else:
            print("\nname a model (zoo train MODEL --help) to see the --set keys it accepts")
        parser.exit()


def build_parser(target_flags: bool = False, argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `zoo` parser; with `target_flags`, `export` and `build-engine` also take the
    flags export targets declare (loading the plugins, which listing commands skip). For
    `zoo run MODEL` and `zoo eval MODEL` in `argv`, `run` and `eval` also take the options of
    MODEL's task and of MODEL itself, so `zoo run MODEL --help` lists them (two-stage parsing)."""
    parser = OneLineParser(
        prog="zoo",
        description="aigc-zoo: train, run, evaluate, benchmark and export small generative and classic models.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aigc-zoo {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=ZooParser)

    p = commands.add_parser("list", help="list installed models")
    p.add_argument("pattern", nargs="?", default="*", help="glob on model names, e.g. '*gan*'")
    p.add_argument("--task", help="only models of this task")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(handler=cmd_list)

    p = commands.add_parser("info", help="show a model's spec and card")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_info)

    p = commands.add_parser("plugins", help="list installed plugins and their load errors")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_plugins)

    p = commands.add_parser("new-plugin", help="write a new model plugin package to start from")
    p.add_argument("name", help="model and plugin name: lower-case letters, digits, '-' or '_'")
    p.add_argument("--dir", type=Path, help="folder to create (default: ./zoo-NAME)")
    p.set_defaults(handler=cmd_new_plugin)

    p = commands.add_parser("train", help="train a model with its registered recipe", add_help=False)
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("-h", "--help", action=_TrainHelp, nargs=0,
                   help="show this help; after MODEL (zoo train MODEL --help), also the --set keys MODEL accepts")
    p.add_argument("--data", type=Path, metavar="DIR", help=DATA_HELP)
    p.add_argument("--out", type=Path, required=True, help="weights file to write (.safetensors); the card goes beside it")
    p.add_argument("--epochs", type=positive_int, help="passes over the training data (default: the recipe's)")
    p.add_argument("--batch-size", type=positive_int, help="examples per step (default: the recipe's)")
    p.add_argument("--lr", type=positive_float, help="learning rate (default: the recipe's)")
    p.add_argument("--seed", type=seed, default=0, help="seed of initialisation, shuffling and sampling (default: 0)")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many steps")
    p.add_argument("--max-minutes", type=positive_float, help="stop after this much training time (one process only)")
    p.add_argument("--limit", type=positive_int, help="train on the first N examples only (smoke tests)")
    p.add_argument("--device", help="cpu, cuda or auto (default: [train] device)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint beside --out")
    p.add_argument("--checkpoint-every", type=positive_int, help="epochs between checkpoints")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a model config key or a recipe hyperparameter (JSON value); `zoo train MODEL --help` lists them")
    p.add_argument("--nproc-per-node", type=positive_int, default=1, help="data-parallel processes on this machine (torchrun)")
    p.add_argument("--nnodes", type=positive_int, default=1, help="machines taking part (each runs the same command)")
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="rendezvous address for --nnodes > 1")
    p.set_defaults(handler=cmd_train)

    p = commands.add_parser("export", help="export a model to a deployable bundle", epilog_function=_export_epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--target", default="onnx", help="export target, listed below (default: onnx)")
    p.add_argument("-o", "--out", type=Path, default=Path("out"), help="folder that receives <model>/ (default: out)")
    p.add_argument("--precision", default="fp32", help="fp32, fp16 or int8, listed below (default: fp32)")
    p.add_argument("--weights", help=WEIGHTS_HELP)
    p.add_argument("--opset", type=positive_int, help="ONNX opset (default: [export] opset)")
    p.add_argument("--atol", type=non_negative_float, help="absolute parity tolerance against PyTorch (default: [export] atol)")
    p.add_argument("--rtol", type=non_negative_float, help="relative parity tolerance against PyTorch (default: [export] rtol)")
    p.add_argument("--exporter", choices=("dynamo", "torchscript"), help="torch.onnx front end (default: [export] exporter)")
    p.add_argument("--static-batch", action="store_true", help="fix the batch axis at 1")
    p.add_argument("--runtime", choices=RUNTIMES,
                   help="write the bundle only if this runtime's pre-flight check (zoo check) predicts it loads; "
                        "the manifest records it")
    p.add_argument("--force", action="store_true",
                   help="write into an output folder that holds other files (files of the same names are replaced)")
    p.add_argument("--data", type=Path, metavar="DIR", help=DATA_HELP + "; read by the task metric that validates fp16/int8")
    p.add_argument("--check-only", action="store_true", help="report what the target would make of the model; write nothing")
    p.add_argument("--json", action="store_true", help="with --check-only: print the report as JSON")
    if target_flags:
        _add_target_flags(p)
    p.set_defaults(handler=cmd_export)

    p = commands.add_parser("build-engine", help="build TensorRT engines for an exported ONNX bundle (on the GPU machine)")
    p.add_argument("bundle", type=Path, help="a bundle folder written by `zoo export NAME --target onnx`")
    p.add_argument("--target", default="trt", help="the target that builds from the bundle (default: trt)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"), help="engine precision (default: fp32)")
    if target_flags:
        _add_target_flags(p, building=True)
    p.set_defaults(handler=cmd_build_engine)

    p = commands.add_parser("check", help="predict whether a runtime loads an exported bundle, naming each blocking operator")
    p.add_argument("bundle", type=Path, help="a bundle folder written by `zoo export`")
    p.add_argument("--runtime", required=True, choices=RUNTIMES, help="the runtime that will load it")
    p.add_argument("--runtime-version", metavar="VERSION",
                   help="predict for this version (default: the installed one, else the newest the check knows; "
                        "OpenCV: its C++ headers, then its Python package, else 4.6)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_check)

    model = _model_argument(argv or [])
    p = commands.add_parser("run", help="sample from or apply a model", epilog=MODEL_OPTIONS_EPILOG.format(command="run"))
    _add_backend_arguments(p)
    p.add_argument("--seed", type=seed, default=0, help="seed of the latents, noise and sampling (default: 0)")
    p.add_argument("-o", "--output", type=Path, help="output file (PNG grid for images)")
    p.add_argument("--input-dir", type=Path, metavar="DIR",
                   help="batch mode: every input file under DIR (pictures for classifiers); -o names the folder "
                        "that receives predictions.jsonl")
    p.add_argument("--batch-size", type=positive_int, default=64, help="with --input-dir: files per backend call (default 64)")
    p.add_argument("--json", action="store_true",
                   help="print the result as one JSON object on stdout (generated text, classes, files written)")
    if model and argv[0] == "run":
        _add_model_options(p, "run", model)
    p.set_defaults(handler=cmd_run, command="run")

    p = commands.add_parser("eval", help="score a model on held-out data", epilog=MODEL_OPTIONS_EPILOG.format(command="eval"))
    _add_backend_arguments(p)
    p.add_argument("--data", type=Path, metavar="DIR", help=DATA_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    if model and argv[0] == "eval":
        _add_model_options(p, "eval", model)
    p.set_defaults(handler=cmd_eval, command="eval")

    p = commands.add_parser("data", help="show the data root and its data sets; fetch one from the Hugging Face hub")
    data_commands = p.add_subparsers(title="data commands", metavar="ACTION")
    q = data_commands.add_parser("list", help="which data sets the data root holds, and where each belongs")
    q.add_argument("--data", type=Path, metavar="DIR", help=DATA_HELP)
    q.add_argument("--json", action="store_true", help="print JSON for scripts")
    q.set_defaults(handler=cmd_data_list)
    q = data_commands.add_parser("fetch", help="download a data set through huggingface_hub's cache into the data root")
    q.add_argument("name", help="mnist or tinyshakespeare (usps is not on the hub in a form the zoo can check)")
    q.add_argument("--data", type=Path, metavar="DIR", help=DATA_HELP)
    q.set_defaults(handler=cmd_data_fetch)
    p.set_defaults(handler=lambda args: cmd_data_list(argparse.Namespace(data=None, json=False)))

    p = commands.add_parser("bench", help="time backends side by side")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--weights", help=WEIGHTS_HELP)
    p.add_argument("--backends", default="torch,onnx", help="comma-separated, first is the baseline, e.g. torch,onnx,onnx-int8,trt-fp16")
    p.add_argument("--batch", type=int_list(minimum=1), default="1,64", help="comma-separated batch sizes")
    p.add_argument("--graph", help="which graph of a multi-graph model")
    p.add_argument("--runs", type=positive_int, default=50, help="timed runs per backend and batch; the median counts (default: 50)")
    p.add_argument("--warmup", type=non_negative_int, default=5, help="untimed runs first (default: 5)")
    p.add_argument("--data", type=Path, metavar="DIR", help=DATA_HELP + "; read when an fp16/int8 export is validated on first use")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_bench)
    return parser


MODEL_OPTIONS_EPILOG = "a model's task and the model itself add options: `zoo {command} MODEL --help` lists them"
_OPTION_TYPES = {"str": str, "path": Path}


def _model_argument(argv: list[str]) -> str | None:
    """The MODEL of `zoo run MODEL ...` / `zoo eval MODEL ...`, found before the full parse."""
    if argv[:1] not in (["run"], ["eval"]):
        return None
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("model", nargs="?")
    for flag in ("--backend", "--weights", "--data", "-o", "--output", "--seed", "--input-dir", "--batch-size"):
        peek.add_argument(flag)
    known, _ = peek.parse_known_args(argv[1:])
    return known.model


def _add_model_options(parser: argparse.ArgumentParser, command: str, model: str) -> None:
    """The options of MODEL's task and of MODEL itself, in two groups of `--help`."""
    from zoo.api import get_spec
    from zoo.tasks import task_spec

    spec = get_spec(model).with_config()  # the default config's graphs: their input names
    task = task_spec(spec)
    groups = ((f"options of the {task.name} task", task.options), (f"options of {spec.name}", spec.options))
    for title, options in groups:
        chosen = [option for option in options if command in option.commands]
        if not chosen:
            continue
        group = parser.add_argument_group(title)
        for option in chosen:
            _add_option(group, option, spec)
    if command == "run" and task.random_inputs:
        inputs = sorted({t.name for g in spec.graphs for t in g.inputs})
        parser.add_argument_group("graph inputs").add_argument(
            "--input", action="append", default=[], metavar="NAME=VALUE",
            help=f"fix a graph input that `zoo run` would draw at random, for every sample: a number or a JSON list "
                 f"(one example's values); {spec.name}'s inputs: {', '.join(inputs)}")


def _option_type(option) -> Any:
    """What parses an option's value: numbers are checked against the option's bounds as they are parsed."""
    if option.type == "int":
        return bounded_int(option.minimum, option.maximum)
    if option.type == "float":
        return bounded_float(option.minimum, option.maximum)
    return _OPTION_TYPES[option.type]


def _add_option(group, option, spec) -> None:
    help_text = option.help + (f" (fills graph input '{option.input}')" if option.input else "")
    if option.default is not None and option.type != "flag":
        help_text += f" (default: {option.default!r})"
    flag = f"--{option.name}"
    try:
        if option.type == "flag":
            group.add_argument(flag, action="store_true", help=help_text)
        else:
            group.add_argument(flag, type=_option_type(option), default=option.default, help=help_text,
                               choices=option.choices or None, metavar=option.metavar)
    except argparse.ArgumentError:
        raise ZooError(f"model '{spec.name}' or its task '{spec.task}' declares option {flag}, which `zoo` already "
                       f"has; rename it in the plugin's spec") from None


def _target_flags(building: bool = False) -> dict[str, list[tuple[str, Any]]]:
    """{"--max-batch": [(target, Setting), ...]}: the flags export targets declare."""
    from zoo.api import registry

    try:
        exporters = registry().exporters
    except ZooError:  # a broken config file: the command itself reports it in one line
        return {}
    flags: dict[str, list[tuple[str, Any]]] = {}
    for name, exporter in sorted(exporters.items()):
        if building and not exporter.build:
            continue
        for setting in exporter.settings:
            if setting.flag:
                flags.setdefault(setting.option, []).append((name, setting))
    return flags


def _add_target_flags(parser: argparse.ArgumentParser, building: bool = False) -> None:
    groups: dict[str, Any] = {}
    for option, owners in _target_flags(building).items():
        target, setting = owners[0]
        names = ", ".join(t for t, _ in owners)
        group = groups.setdefault(names, parser.add_argument_group(
            f"target {names} (default: [{names.replace(', ', '], [')}] in zoo.toml)"))
        kind, metavar = type(setting.default), setting.key.upper()
        if kind is bool:
            group.add_argument(option, dest=f"flag{option}", action=argparse.BooleanOptionalAction, help=setting.help)
        elif kind is list:
            inner = type(setting.default[0]) if setting.default else str
            group.add_argument(option, dest=f"flag{option}", type=inner, nargs="+", metavar=metavar, help=setting.help)
        else:
            group.add_argument(option, dest=f"flag{option}", type=kind, metavar=metavar, help=setting.help)


def target_overrides(args, target: str, building: bool = False) -> dict[str, dict[str, Any]]:
    """The config overrides of the target flags given on the command line; a flag of
    another target is an error (it would be ignored)."""
    overrides: dict[str, dict[str, Any]] = {}
    for option, owners in _target_flags(building).items():
        value = getattr(args, f"flag{option}", None)
        if value is None:
            continue
        mine = [setting for name, setting in owners if name == target]
        if not mine:
            owners_text = ", ".join(f"'{name}'" for name, _ in owners)
            raise ZooError(f"{option} is a setting of target {owners_text}, not of '{target}'; drop it or use --target {owners[0][0]}")
        overrides.setdefault(target, {})[mine[0].key] = value
    return overrides


def _add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=MODEL_HELP)
    parser.add_argument("--backend", help="torch, or a backend an export target provides: onnx, onnx-int8, onnx-fp16, "
                        "onnx-cuda, onnx-trt, trt, trt-fp16, trt-int8, ... (default: [run] backend)")
    parser.add_argument("--weights", help=WEIGHTS_HELP)


def cmd_list(args) -> int:
    from zoo.api import registry

    reg = registry()
    rows = [_model_row(reg, spec) for spec in reg.find_models(args.pattern, args.task)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no models match" + (f" '{args.pattern}'" if args.pattern != "*" else ""))
        return 0
    columns = ("name", "task", "plugin", "weights", "params", "targets")
    table = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    return 0


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, int):
        return _short_count(value)
    return str(value) if value not in (None, "") else "-"


def _short_count(n: int) -> str:
    for unit, size in (("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _model_row(reg, spec) -> dict[str, Any]:
    from zoo.errors import WeightsError
    from zoo.weights import parameter_count, resolve

    params = None
    if spec.default_variant:
        try:
            params = parameter_count(resolve(spec, download=False).path)
        except WeightsError:
            params = None
    return {
        "name": spec.name,
        "task": spec.task,
        "plugin": reg.owner("models", spec.name),
        "weights": list(spec.weights),
        "params": params,
        "targets": [name for name, e in sorted(reg.exporters.items()) if not e.tasks or spec.task in e.tasks],
        "description": spec.description,
    }


def cmd_info(args) -> int:
    from zoo.api import get_spec, registry
    from zoo.weights import read_card, rounded_metrics, split_reference

    spec = get_spec(args.model)
    _, only = split_reference(args.model)
    variants = {name: read_card(spec, w) for name, w in spec.weights.items() if only in (None, name)}
    if only and only not in variants:
        from zoo.weights import variant_spec

        variant_spec(spec, only)
    from zoo.training import trainer_of

    shaped = _shaped_spec(args.model)
    trainer = trainer_of(spec)
    info = {
        **_model_row(registry(), spec),
        "builder": spec.builder,
        "config": shaped.config,
        "trainer": spec.trainer,
        "task_config": spec.task_config,
        "options": [f"--{option.name}" for option in spec.options],
        "hyperparameters": [
            {"key": setting.key, "default": setting.default, "help": setting.help}
            for setting in (trainer.hyperparameters if trainer else ())
        ],
        "graphs": [
            {"name": g.name, "role": g.role, "inputs": [t.to_json() for t in g.inputs], "outputs": [t.to_json() for t in g.outputs]}
            for g in shaped.graphs
        ],
        "variants": {name: {"uri": spec.weights[name].uri, "card": card} for name, card in variants.items()},
    }
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"{spec.name}: {spec.description}")
    task = registry().tasks.get(spec.task)
    print(f"  task     {spec.task}" + (f" (data: {', '.join(task.data)})" if task and task.data else ""))
    print(f"  plugin   {info['plugin']}")
    print(f"  builder  {spec.builder}")
    print(f"  config   {json.dumps(shaped.config)}")
    print(f"  trainer  {spec.trainer or '-'}")
    for setting in info["hyperparameters"]:
        print(f"    --set {setting['key']}={json.dumps(setting['default'])}  {setting['help']}")
    if spec.task_config:
        print(f"  task_config {json.dumps(spec.task_config)}")
    if spec.options:
        print(f"  options  {', '.join(info['options'])} (`zoo run {spec.name} --help`)")
    print(f"  targets  {', '.join(info['targets']) or '-'}")
    for graph in info["graphs"]:
        signature = lambda ts: ", ".join(f"{t['name']} {t['dtype']}{t['shape']}" for t in ts)  # noqa: E731
        role = f" ({graph['role']})" if graph["role"] else ""
        print(f"  graph {graph['name']}{role}: ({signature(graph['inputs'])}) -> ({signature(graph['outputs'])})")
        for kind in ("inputs", "outputs"):
            for tensor in graph[kind]:
                if tensor["description"]:
                    print(f"    {kind[:-1]:<6} {tensor['name']}: {tensor['description']}")
    for name, variant in info["variants"].items():
        card = variant["card"]
        print(f"\nweights {spec.name}:{name}  ({variant['uri']})")
        if not card:
            print("  no card")
            continue
        training = card.get("training", {})
        print(f"  sha256      {card.get('sha256', '-')}")
        print(f"  parameters  {card.get('parameters', '-')}")
        print(f"  data        {card.get('data', '-')}")
        print(f"  command     {training.get('command', '-')}")
        print(f"  seed        {training.get('seed', '-')}   wall time {training.get('wall_time_s', '-')} s on {training.get('machine', '-')}")
        descriptions = card.get("metric_descriptions", {})
        for metric, value in rounded_metrics(card.get("metrics", {})).items():
            print(f"  {metric:<18} {value}")
            if metric in descriptions:
                print(f"  {'':<18} ({descriptions[metric]})")
    return 0


def _shaped_spec(reference: str):
    """The spec resolved for the variant's weights when they are on disk, else for the default config."""
    from zoo.api import get_spec, resolve
    from zoo.errors import WeightsError

    try:
        return resolve(reference, download=False).spec
    except WeightsError:
        return get_spec(reference).with_config()


def cmd_plugins(args) -> int:
    from zoo.api import registry

    plugins = list(registry().plugins.values())
    if args.json:
        print(json.dumps([p.to_json() for p in plugins], indent=2))
        return 0
    for plugin in plugins:
        state = "disabled" if plugin.disabled else ("error" if plugin.errors else "ok")
        source = f"{plugin.distribution} {plugin.version}".strip() or "-"
        print(f"{plugin.name:<14} {state:<8} {source:<22} {plugin.value}")
        if plugin.hooks:
            print(f"{'':<14} hooks: {', '.join(plugin.hooks)}")
        if plugin.registered:
            print(f"{'':<14} registers: {', '.join(plugin.registered)}")
        for error in plugin.errors:
            print(f"{'':<14} error: {error}")
    return 0


def cmd_new_plugin(args) -> int:
    from zoo.scaffold import new_plugin, package_name

    directory = new_plugin(args.name, args.dir)
    package = package_name(args.name)
    print(f"wrote {directory}/: pyproject.toml, README.md, {package}/ (__init__.py, model.py, train.py), tests/")
    print("next:")
    print(f"  pip install -e '{directory}[test]'    # the plugin, and pytest for its tests")
    print(f"  zoo list {args.name}")
    print(f"  pytest {directory}")
    print(f"  zoo train {args.name} --data DIR --out {directory}/{package}/weights/default.safetensors   # DIR holds mnist/")
    print(f"  zoo export {args.name} --target onnx -o out/")
    return 0


def cmd_train(args) -> int:
    from zoo.api import get_spec
    from zoo.config import load_config
    from zoo.distributed import is_worker, launch
    from zoo.data import data_root
    from zoo.training import OPTION_DEFAULTS, TrainOptions, split_settings, train, trainer_of

    config = load_config()
    spec = get_spec(args.model)
    trainer = trainer_of(spec)
    defaults = {**OPTION_DEFAULTS, **(trainer.defaults if trainer else {})}
    options = TrainOptions(
        data=data_root(args.data),
        epochs=args.epochs or defaults["epochs"],
        batch_size=args.batch_size or defaults["batch_size"],
        lr=args.lr or defaults["lr"],
        seed=args.seed,
        device=args.device or config["train"]["device"],
        max_steps=args.max_steps or defaults["max_steps"],
        max_minutes=args.max_minutes,
        limit=args.limit,
        hparams=dict(_parse_assignment(item) for item in args.set),
    )
    if not args.out.name.endswith(".safetensors"):
        raise ZooError(f"--out {args.out} must end in .safetensors")
    split_settings(spec, trainer, options.hparams)  # a mistyped --set fails before any process starts
    if (args.nproc_per_node > 1 or args.nnodes > 1) and args.max_minutes:
        raise ZooError("--max-minutes stops a single process only; with --nproc-per-node use --max-steps or --epochs")
    if (args.nproc_per_node > 1 or args.nnodes > 1) and not is_worker():
        started = time.time()
        launch(args.argv, args.nproc_per_node, args.nnodes, args.rdzv_endpoint)
        processes = args.nproc_per_node * args.nnodes
        if args.out.is_file() and args.out.stat().st_mtime >= started:
            _note(f"wrote {args.out} with {processes} processes")
        else:  # rank 0 ran on another node and wrote the weights there
            _note(f"trained with {processes} processes; the node that ran rank 0 wrote the weights to {args.out} on "
                  f"its own machine, this node wrote nothing")
        return 0
    try:
        card = train(
            args.model,
            options,
            args.out,
            resume=args.resume,
            checkpoint_every=args.checkpoint_every or config["train"]["checkpoint_every"],
            log_every=config["train"]["log_every"],
            command="zoo " + shlex.join(args.argv),
        )
    except RuntimeError as exc:
        # A survivor of a dead peer: the launcher reports the root cause in one line.
        if is_worker() and "by peer" in str(exc):
            print(f"zoo: worker rank {options.rank} stopped: another worker went away", file=sys.stderr)
            return 1
        raise
    if card is None:  # a worker other than rank 0
        return 0
    _note(f"wrote {args.out} (sha256 {card['sha256'][:16]}...) in {card['training']['wall_time_s']} s")
    for metric, value in card["metrics"].items():
        _note(f"  {metric}: {value}")
    return 0


def _parse_assignment(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ZooError(f"--set {item!r} must look like key=value")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _note(line: str) -> None:
    """Progress and what was written where go to stderr; stdout carries a command's product alone."""
    print(line, file=sys.stderr, flush=True)


def cmd_export(args) -> int:
    from zoo.exporting import export_model

    overrides = {
        "export": {
            key: value
            for key, value in (
                ("opset", args.opset),
                ("atol", args.atol),
                ("rtol", args.rtol),
                ("exporter", args.exporter),
                ("dynamic_batch", False if args.static_batch else None),
            )
            if value is not None
        }
    }
    overrides.update(target_overrides(args, args.target))
    if args.check_only:
        from zoo.exporting import inspect_model

        report = inspect_model(args.model, args.target, weights=args.weights, config_overrides=overrides, precision=args.precision)
        print(json.dumps(report.data, indent=2) if args.json else report.text)
        return 0
    options = {"data": str(args.data)} if args.data else {}
    bundle = export_model(
        args.model, args.target, args.out, precision=args.precision, weights=args.weights,
        config_overrides=overrides, options=options, runtime=args.runtime, force=args.force, log=_note,
    )
    _note(f"wrote {bundle}/ ({', '.join(sorted(p.name for p in bundle.iterdir()))})")
    return 0


def cmd_check(args) -> int:
    """Exit status 0 when every graph should load, 1 when some will not."""
    from zoo.preflight import check_bundle

    report = check_bundle(args.bundle, args.runtime, args.runtime_version)
    print(json.dumps(report.to_json(), indent=2) if args.json else report.text())
    return 0 if report.loads else 1


def cmd_build_engine(args) -> int:
    from zoo.exporting import build_bundle

    for line in build_bundle(args.bundle, args.target, args.precision, target_overrides(args, args.target, building=True)):
        print(line)
    return 0


def _open(args, graph: str | None = None, resolved=None):
    """The model resolved once from the weights `args` name, and a backend for one of its graphs."""
    from zoo.api import resolve
    from zoo.config import load_config
    from zoo.runtime import open_backend

    resolved = resolved or resolve(args.model, args.weights)
    backend = args.backend or load_config()["run"]["backend"]
    data = str(args.data) if getattr(args, "data", None) else None
    return resolved.spec, open_backend(resolved, backend, graph=graph, data=data)


def _graph_choice(spec, options: dict[str, Any]) -> str | None:
    """The graph an option with `selects_graph` names (a translation direction), or None for the first."""
    from zoo.tasks import task_spec

    for option in task_spec(spec).options + spec.options:
        if option.selects_graph and options.get(option.key):
            return options[option.key]
    return None


def _fixed_inputs(spec, options: dict[str, Any]) -> dict[str, Any]:
    """Graph inputs fixed from the command line: `--input NAME=VALUE` and options that declare `input`."""
    from zoo.tasks import task_spec
    from zoo.tensors import fixed_value

    tensors = {}
    for graph in spec.graphs:
        for tensor in graph.inputs:
            tensors.setdefault(tensor.name, tensor)
    fixed = {}
    for option in task_spec(spec).options + spec.options:
        if option.input and options.get(option.key) is not None:
            fixed[option.input] = fixed_value(tensors[option.input], options[option.key], f"--{option.name}")
    for item in options.get("input") or []:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ZooError(f"--input {item!r} must look like NAME=VALUE, for example --input {next(iter(tensors))}=0")
        if name not in tensors:
            raise ZooError(f"--input {item}: {spec.name} has no graph input '{name}'; its inputs are {', '.join(tensors)}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise ZooError(f"--input {item}: the value must be a number or a JSON list of numbers") from None
        fixed[name] = fixed_value(tensors[name], value)
    return fixed


def cmd_run(args) -> int:
    from zoo.api import resolve
    from zoo.tasks import RunResult, task_function

    resolved = resolve(args.model, args.weights)
    spec = resolved.spec
    options = vars(args)
    options["inputs"] = _fixed_inputs(spec, options)
    graph = _graph_choice(spec, options)
    if args.input_dir is not None:
        from zoo.batch import prepare

        job = prepare(spec, options)  # checked before an ONNX backend may export
        backend = _open(args, graph=graph, resolved=resolved)[1]
        result = job.run(backend)
    else:
        run = task_function(spec, "run")
        spec, backend = _open(args, graph=graph, resolved=resolved)
        result = RunResult.of(run(spec, backend, options))
    if args.json:
        print(json.dumps({"model": args.model, "backend": backend.name, **result.data}, indent=2, default=str))
    elif result.product:
        print(result.product)
    if result.note:
        print(result.note.strip() if args.json else result.note, file=sys.stderr)
    return 0


def cmd_eval(args) -> int:
    from zoo.api import get_spec, resolve_weights
    from zoo.data import DATASETS, data_root, dataset_dir
    from zoo.tasks import task_function, task_spec

    evaluate = task_function(get_spec(args.model), "evaluate")
    root = data_root(args.data)
    for name in task_spec(get_spec(args.model)).data:
        if name in DATASETS:  # a missing data set is reported before a backend (perhaps an export) is made
            dataset_dir(root, name)
    spec, backend = _open(args)
    options = {**vars(args), "data": root}
    metrics = evaluate(spec, backend, options)
    card = {} if args.weights else resolve_weights(args.model).card.get("metrics", {})
    if args.json:
        print(json.dumps({"model": args.model, "backend": backend.name, "metrics": metrics, "card": card}, indent=2))
        return 0
    print(f"{args.model} ({backend.name})")
    for metric, value in metrics.items():
        recorded = f"   card: {card[metric]}" if metric in card else ""
        print(f"  {metric:<18} {value}{recorded}")
    return 0


def cmd_data_list(args) -> int:
    from zoo.data import DATASETS, HUB_DATASETS, data_root, dataset_dir

    root = data_root(args.data)
    rows = []
    for name, dataset in DATASETS.items():
        try:
            folder = str(dataset_dir(root, name))
        except ZooError:
            folder = None
        rows.append({"name": name, "folder": folder, "files": list(dataset.files), "what": dataset.what,
                     "on_hub": name in HUB_DATASETS})
    if args.json:
        print(json.dumps({"root": str(root), "datasets": rows}, indent=2))
        return 0
    print(f"data root {root}")
    for row in rows:
        where = row["folder"] or f"missing: put {', '.join(row['files'])} in {root / row['name']}/" + (
            f" or run `zoo data fetch {row['name']}`" if row["on_hub"] else "")
        print(f"  {row['name']:<16} {where}")
    return 0


def cmd_data_fetch(args) -> int:
    from zoo.data import data_root
    from zoo.datahub import fetch

    fetch(args.name, data_root(args.data), log=lambda line: print(line, file=sys.stderr))
    return 0


def cmd_bench(args) -> int:
    from tqdm import tqdm

    from zoo.api import load, resolve
    from zoo.bench import format_table, measure
    from zoo.errors import UnavailableError
    from zoo.runtime import check_backend, open_backend

    resolved = resolve(args.model, args.weights)
    spec = resolved.spec
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for name in backends:
        check_backend(name)
    batches = args.batch
    model = load(resolved) if "torch" in backends else None
    data = str(args.data) if args.data else None
    opened, skipped = [], []
    for name in backends:
        try:
            opened.append(open_backend(resolved, name, graph=args.graph, loaded=model, data=data))
        except UnavailableError as exc:  # int8 without MatMul/Gemm/LSTM, TensorRT without a GPU: say so, bench the rest
            skipped.append({"backend": name, "reason": str(exc)})
    if not opened:
        raise UnavailableError("no backend could run: " + "; ".join(f"{s['backend']}: {s['reason']}" for s in skipped))
    results = []
    with tqdm(total=len(opened) * len(batches) * args.runs, desc=f"bench {spec.name}", unit="run", leave=False) as bar:
        for batch in batches:
            for backend in opened:
                results.append(measure(backend, batch, args.runs, args.warmup, bar))
    if args.json:
        print(json.dumps([m.to_json() for m in results] + skipped, indent=2))
    else:
        print(f"{args.model}, graph '{spec.graph(args.graph).name}', {args.warmup} warm-up runs, median of {args.runs}")
        print(format_table(results))
        for entry in skipped:
            print(f"skipped {entry['backend']}: {entry['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
