"""The training loop the core owns, and the `Recipe` a plugin supplies.

The loop seeds everything, shows a progress bar, writes a checkpoint every
few epochs (`--resume` continues from it), logs metrics as JSON lines, and
writes the final weights and their card atomically. A recipe only says how
to read the data, how to take one step and how to evaluate.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from zoo.errors import ConfigError, ZooError
from zoo.config import same_type, type_name
from zoo.specs import ModelSpec, TrainerSpec

# Per-recipe defaults a TrainerSpec may set and `zoo train` flags override.
OPTION_DEFAULTS = {"epochs": 1, "batch_size": 64, "lr": 2e-4, "max_steps": None}


@dataclass
class TrainOptions:
    """Options every recipe receives. `limit` keeps only the first N training
    examples (smoke tests); `hparams` holds recipe-specific `--set key=value` pairs."""

    data: Path
    epochs: int = 1
    batch_size: int = 64
    lr: float = 2e-4
    seed: int = 0
    device: str = "cpu"
    max_steps: int | None = None
    max_minutes: float | None = None  # one process only: ranks would cross a deadline at different steps
    limit: int | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    rank: int = 0
    world_size: int = 1
    out: Path | None = None  # the weights file; recipes write side files (a tokenizer) beside it


class Recipe:
    """How to train one model. Subclass it and register it with a TrainerSpec.

    The recipe is given `spec`, the model's spec for the config this run
    trains (the defaults with the `--set` model keys over them; its graphs
    are resolved for that config), and reads `self.spec`, `self.config` and
    `self.settings`: the hyperparameters its TrainerSpec declares, with the
    `--set` values given for them. In `__init__`, set `self.networks` (name -> module: everything that is
    checkpointed), `self.optimizers` (name -> optimizer) and `self.shipped`
    (the key of the network whose weights ship). `data_description` and
    `metric_descriptions` go into the card.
    """

    data_description = ""
    metric_descriptions: dict[str, str] = {}
    # True for recipes whose step calls a network's own methods (mapping, encoder and
    # decoder halves), which a DistributedDataParallel wrapper does not forward.
    single_process = False

    def __init__(self, spec: ModelSpec, options: TrainOptions):
        if self.single_process and options.world_size > 1:
            raise ZooError(f"{type(self).__name__} trains in one process only; drop --nproc-per-node/--nnodes")
        self.spec = spec
        self.config = dict(spec.config)
        self.settings = split_settings(spec, trainer_of(spec), options.hparams)[1]
        self.options = options
        self.networks: dict[str, Any] = {}
        self.optimizers: dict[str, Any] = {}
        self.shipped = ""

    def batches(self, epoch: int) -> Iterable[Any]:
        """The training batches of one epoch; shuffle with a generator seeded by
        `options.seed` and `epoch`, so a resumed run sees the same batches,
        and take only this process's shard (`index_batches` does both)."""
        raise NotImplementedError

    def index_batches(self, count: int, epoch: int) -> list[list[int]]:
        """Shuffled index batches over `count` examples for one epoch.

        A DistributedSampler shuffles by seed and epoch and gives each process
        every `world_size`-th index, so one step over N processes with batch B
        sees the same examples as one process with batch N*B.
        """
        from torch.utils.data import BatchSampler, DistributedSampler

        sampler = DistributedSampler(
            range(count), num_replicas=self.options.world_size, rank=self.options.rank,
            shuffle=True, seed=self.options.seed, drop_last=True,
        )
        sampler.set_epoch(epoch)
        size = min(self.options.batch_size, max(1, count // self.options.world_size))
        return list(BatchSampler(sampler, size, drop_last=True))

    def mnist_training_images(self, size: int):
        """The MNIST training split (the first `--limit` images), zero-padded to
        `size` x `size` and scaled to [-1, 1], as one tensor on the training device."""
        import torch

        from zoo.data import pad_to, read_mnist, to_unit_range

        images, _ = read_mnist(self.options.data, "train")
        if self.options.limit:
            images = images[: self.options.limit]
        return torch.from_numpy(to_unit_range(pad_to(images, size))).to(self.options.device)

    def distribute(self, device_ids: list[int] | None = None) -> None:
        """Wrap every network in DistributedDataParallel.

        `self.networks` keeps the bare modules (checkpoints and shipped weights
        have no "module." prefix); every attribute of the recipe that referred
        to a network now refers to its wrapper, so `step` synchronises
        gradients without knowing it runs distributed.
        """
        from torch.nn.parallel import DistributedDataParallel
        from torch.optim.swa_utils import AveragedModel

        for network in self.networks.values():
            if isinstance(network, AveragedModel):  # never trained by gradients; every rank averages the same weights
                continue
            wrapped = DistributedDataParallel(network, device_ids=device_ids)
            for attribute, value in list(vars(self).items()):
                if value is network:
                    setattr(self, attribute, wrapped)

    def step(self, batch: Any) -> dict[str, float]:
        """One optimisation step on `batch`; return the losses to log."""
        raise NotImplementedError

    def shipped_network(self):
        """The module whose weights ship: `self.networks[self.shipped]`, or the averaged module of a
        `moving_average`."""
        from torch.optim.swa_utils import AveragedModel

        network = self.networks[self.shipped]
        return network.module if isinstance(network, AveragedModel) else network

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics of the shipped network, recorded in the card."""
        return {}


def moving_average(network, decay: float):
    """An exponential moving average of `network`'s parameters and buffers (torch's AveragedModel); call its
    `update_parameters(network)` after each optimizer step. Put it in `Recipe.networks` (so checkpoints keep
    it) and name it in `Recipe.shipped`: generators ship the average, which samples better than the weights
    of any single step."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ZooError("--device cuda was asked for, but PyTorch sees no CUDA GPU; use --device cpu")
    return device


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".safetensors") + ".ckpt.safetensors")


def card_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".safetensors") + ".card.toml")


def split_settings(spec: ModelSpec, trainer: TrainerSpec | None,
                   given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`--set` pairs checked and split into model config overrides and recipe settings.

    A key is either one of the model's config keys (it changes the
    architecture) or a hyperparameter the trainer declares; anything else,
    or a value of another type than the default's, is a one-line
    ConfigError naming what is accepted. Recipe settings come back complete,
    defaults filled in.
    """
    declared = {setting.key: setting for setting in (trainer.hyperparameters if trainer else ())}
    unknown = [key for key in given if key not in spec.config and key not in declared]
    if unknown:
        raise ConfigError(
            f"unknown --set key(s) {', '.join(unknown)} for {spec.name}; known keys: "
            f"{', '.join(spec.config) or 'none'} (model config), {', '.join(declared) or 'none'} (recipe); "
            f"`zoo train {spec.name} --help` describes them"
        )
    for key, value in given.items():
        default = declared[key].default if key in declared else spec.config[key]
        if default is not None and not same_type(value, default):
            what = declared[key].help if key in declared else "model config"
            raise ConfigError(f"--set {key}={json.dumps(value)}: expected {type_name(default)} ({what}), "
                              f"for example --set {key}={json.dumps(default)}")
    overrides = {key: value for key, value in given.items() if key in spec.config}
    settings = {key: given.get(key, setting.default) for key, setting in declared.items()}
    return overrides, settings


def settings_help(spec: ModelSpec, trainer: TrainerSpec | None) -> str:
    """What `zoo train MODEL --set KEY=VALUE` accepts: the model's config keys and the recipe's declared options."""
    lines = [f"--set KEY=VALUE keys of {spec.name} (values are JSON):",
             "  model config (changes the architecture; the weights record it):"]
    lines += [f"    {key:<22} default {json.dumps(value)}" for key, value in spec.config.items()]
    declared = trainer.hyperparameters if trainer else ()
    lines.append(f"  recipe (trainer '{trainer.name}'):" if trainer else "  recipe: none (no trainer)")
    lines += [f"    {s.key:<22} default {json.dumps(s.default):<10} {s.help}" for s in declared]
    if trainer and not declared:
        lines.append("    (declares none)")
    return "\n".join(lines)


def trainer_of(spec: ModelSpec) -> TrainerSpec | None:
    from zoo.api import registry

    return registry().trainer(spec.trainer) if spec.trainer else None


def train(reference: str, options: TrainOptions, out: Path, resume: bool = False,
          checkpoint_every: int = 1, log_every: int = 50, command: str = "") -> dict[str, Any] | None:
    """Train model `reference` with its registered recipe; write weights and card to `out`.

    Under torchrun every worker runs this; only rank 0 shows progress, logs,
    writes checkpoints and the final weights and card (the others return None).
    """
    import tomli_w  # noqa: F401  the card writer's; fail now rather than after the training run

    from zoo.distributed import join, leave
    from zoo.files import ensure_writable_dir

    spec, trainer, overrides = _check_request(reference, options)
    out = Path(out)
    ensure_writable_dir(out.parent, "--out")
    options.out = out
    if resume:
        checkpoint_progress(checkpoint_path(out))  # refuse a bad checkpoint before the data is read
    rank = join()
    _place(options, rank)
    recipe = _make_recipe(trainer, spec.with_config(overrides), options, rank)
    run = _Run(spec.name, recipe, options, out, rank)
    if resume:
        run.epoch, run.step = load_checkpoint(checkpoint_path(out), recipe)
    if rank.world_size > 1:
        recipe.distribute([rank.local_rank] if options.device.startswith("cuda") else None)
    run.loop(checkpoint_every, log_every, resume)
    if not rank.is_main:
        leave(rank)
        return None
    card = run.finish(command, resume)
    leave(rank)
    return card


def _check_request(reference: str, options: TrainOptions) -> tuple[ModelSpec, TrainerSpec, dict[str, Any]]:
    """The model, its trainer and the config overrides; a bad `--set` fails here, before any work."""
    from zoo.api import get_spec

    spec = get_spec(reference)
    trainer = trainer_of(spec)
    if trainer is None:
        raise ZooError(f"model '{spec.name}' registers no trainer, so `zoo train` cannot train it")
    overrides, _ = split_settings(spec, trainer, options.hparams)
    return spec, trainer, overrides


def _place(options: TrainOptions, rank) -> None:
    """This process's rank, world size and device."""
    options.rank, options.world_size = rank.rank, rank.world_size
    options.device = resolve_device(options.device)
    if options.device == "cuda" and rank.world_size > 1:
        options.device = f"cuda:{rank.local_rank}"


def _make_recipe(trainer: TrainerSpec, spec: ModelSpec, options: TrainOptions, rank) -> Recipe:
    """The recipe, seeded so every rank builds identical initial weights and then draws its own noise."""
    import numpy as np
    import torch

    from zoo.specs import import_dotted

    random.seed(options.seed)
    np.random.seed(options.seed)
    torch.manual_seed(options.seed)
    recipe = import_dotted(trainer.recipe, f"the recipe of trainer '{trainer.name}'")(spec, options)
    if rank.world_size > 1:
        torch.manual_seed(options.seed + rank.rank)
    return recipe


@dataclass
class _Run:
    """One training run's state: where it is (epoch, step) and how long it has taken."""

    model: str
    recipe: Recipe
    options: TrainOptions
    out: Path
    rank: Any
    epoch: int = 0
    step: int = 0
    wall_time: float = 0.0

    def loop(self, checkpoint_every: int, log_every: int, resume: bool) -> None:
        """Epochs of steps until --epochs, --max-steps or --max-minutes, with progress, a metrics log and checkpoints."""
        from tqdm import tqdm

        from zoo.distributed import barrier

        options, rank, started = self.options, self.rank, time.perf_counter()
        log_path = self.out.with_name(self.out.name.removesuffix(".safetensors") + ".metrics.jsonl")
        log = open(log_path, "a" if resume else "w") if rank.is_main else None
        running: dict[str, float] = {}
        description = f"train {self.model}" + (f" ({rank.world_size} processes)" if rank.world_size > 1 else "")
        with tqdm(total=self._total_steps(), initial=self.step, desc=description, unit="step", dynamic_ncols=True,
                  disable=not rank.is_main) as bar:
            while self.epoch < options.epochs and not _done(self.step, options, started):
                for batch in self.recipe.batches(self.epoch):
                    losses = self.recipe.step(batch)
                    self.step += 1
                    for key, value in losses.items():
                        running[key] = value if key not in running else 0.9 * running[key] + 0.1 * value
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in running.items()}, refresh=False)
                    if log and self.step % log_every == 0:
                        log.write(json.dumps({"epoch": self.epoch, "step": self.step, **losses}) + "\n")
                        log.flush()
                    if _done(self.step, options, started):
                        break
                self.epoch += 1
                if self.epoch % checkpoint_every == 0 or _done(self.step, options, started) or self.epoch == options.epochs:
                    if rank.is_main:
                        save_checkpoint(checkpoint_path(self.out), self.recipe, self.epoch, self.step)
                    barrier(rank)
        if log:
            log.close()
        self.wall_time = time.perf_counter() - started

    def _total_steps(self) -> int | None:
        """For the progress bar: steps per epoch times epochs, capped by --max-steps (None when unknown)."""
        sample_epoch = self.recipe.batches(self.epoch)
        per_epoch = len(sample_epoch) if hasattr(sample_epoch, "__len__") else None
        total = per_epoch * self.options.epochs if per_epoch else None
        if self.options.max_steps:
            total = min(total or self.options.max_steps, self.options.max_steps)
        return total

    def finish(self, command: str, resume: bool) -> dict[str, Any]:
        """Evaluate, write the shipped weights and their card; return the card."""
        import torch

        from zoo import __version__
        from zoo.weights import rounded_metrics, save

        recipe, options = self.recipe, self.options
        metrics = recipe.evaluate()
        shipped = recipe.shipped_network()
        sha256 = save(shipped.state_dict(), self.out, self.model, dict(recipe.config))
        card = {
            "model": self.model,
            "file": self.out.name,
            "sha256": sha256,
            "parameters": sum(p.numel() for p in shipped.state_dict().values()),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "zoo_version": __version__,
            "data": recipe.data_description,
            "training": {
                "command": command,
                "seed": options.seed,
                "epochs": self.epoch,
                "steps": self.step,
                "batch_size": options.batch_size,
                "processes": self.rank.world_size,
                "lr": options.lr,
                "hparams": options.hparams,
                "wall_time_s": round(self.wall_time, 1),
                "device": options.device,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}",
                "resumed": resume,
            },
            "config": dict(recipe.config),
            "metrics": rounded_metrics(metrics),
            "metric_descriptions": {k: v for k, v in recipe.metric_descriptions.items() if k in metrics},
        }
        write_card(card, card_path(self.out))
        return card


def _done(step: int, options: TrainOptions, started: float) -> bool:
    if options.max_minutes and step > 0 and time.perf_counter() - started >= options.max_minutes * 60:
        return True
    return bool(options.max_steps) and step >= options.max_steps


def write_card(card: dict[str, Any], path: Path) -> None:
    import tomli_w

    from zoo.files import atomic_file

    with atomic_file(path, "--out") as temporary:
        temporary.write_text(tomli_w.dumps(card))


def save_checkpoint(path: Path, recipe: Recipe, epoch: int, step: int) -> None:
    """Networks, optimizers and the torch RNG in one safetensors file (no pickle)."""
    import torch
    from safetensors.torch import save_file

    from zoo.files import atomic_file

    tensors: dict[str, Any] = {"rng.torch": torch.get_rng_state()}
    extra: dict[str, Any] = {"epoch": epoch, "step": step, "optimizers": {}}
    for name, network in recipe.networks.items():
        for key, tensor in network.state_dict().items():
            tensors[f"networks.{name}.{key}"] = tensor.detach().cpu().contiguous()
    for name, optimizer in recipe.optimizers.items():
        state = optimizer.state_dict()
        scalars = {}
        for index, values in state["state"].items():
            for key, value in values.items():
                if torch.is_tensor(value):
                    tensors[f"optimizers.{name}.{index}.{key}"] = value.detach().cpu().contiguous()
                else:
                    scalars[f"{index}.{key}"] = value
        extra["optimizers"][name] = {"param_groups": state["param_groups"], "scalars": scalars}
    with atomic_file(path, "--out") as temporary:
        save_file(tensors, str(temporary), metadata={"zoo.checkpoint": json.dumps(extra)})


def checkpoint_progress(path: Path) -> dict[str, Any]:
    """The epoch, step and optimizer state a checkpoint records, checked without loading a tensor."""
    from zoo.weights import read_header

    if not path.is_file():
        raise ZooError(f"--resume: no checkpoint at {path}; start without --resume")
    _, metadata = read_header(path)
    if "zoo.checkpoint" not in metadata:
        raise ZooError(f"--resume: {path} is not a training checkpoint (a plain weights file?); start without --resume")
    try:
        extra = json.loads(metadata["zoo.checkpoint"])
    except json.JSONDecodeError:
        extra = None
    if not isinstance(extra, dict) or not {"epoch", "step", "optimizers"} <= extra.keys():
        raise ZooError(f"--resume: the checkpoint {path} is corrupt; delete it and start without --resume")
    return extra


def load_checkpoint(path: Path, recipe: Recipe) -> tuple[int, int]:
    import torch
    from safetensors import safe_open

    extra = checkpoint_progress(path)
    tensors = {}
    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():
            tensors[key] = handle.get_tensor(key)
    for name, network in recipe.networks.items():
        prefix = f"networks.{name}."
        network.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    for name, optimizer in recipe.optimizers.items():
        saved = extra["optimizers"][name]
        state: dict[int, dict[str, Any]] = {}
        prefix = f"optimizers.{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, _, field_name = key[len(prefix):].partition(".")
                state.setdefault(int(index), {})[field_name] = value
        for key, value in saved["scalars"].items():
            index, _, field_name = key.partition(".")
            state.setdefault(int(index), {})[field_name] = value
        optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    return extra["epoch"], extra["step"]
