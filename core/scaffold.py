"""`zoo new-plugin NAME`: write a complete, installable model plugin package.

The package is a working starting point, not a stub: a small convolutional
autoencoder for 28x28 images (model.py), its hook implementations
(__init__.py), a training recipe on MNIST (train.py), tests built on the
conformance kit (`zoo.testing`), and a README with the commands from
`pip install -e` to `zoo export`. Replace the architecture and keep the
shape of the files.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from zoo import __version__
from zoo.errors import ZooError
from zoo.files import atomic_directory

_VALID_NAME = re.compile(r"[a-z][a-z0-9_\-]*")

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "$name: a model plugin for aigc-zoo"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["aigc-zoo>=$zoo_version"]

[project.optional-dependencies]
test = ["pytest>=8", "onnxruntime>=1.18"]

# The zoo discovers plugins through this entry-point group: plugin name = module.
[project.entry-points.zoo]
$name = "$package"

[tool.setuptools]
packages = ["$package"]

[tool.setuptools.package-data]
"$package" = ["weights/*"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

INIT = '''\
"""$name: hook implementations. Import only `zoo` here (no torch, no numpy):
`zoo list` imports this module and must stay instant."""

import zoo

IMAGE_SIZE = 28


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="$name",
            task="image-reconstruction",
            description="convolutional autoencoder for 28x28 grayscale images",
            builder="$package.model:build",
            config={"channels": 1, "width": 16},
            # `zoo train $name --out $package/weights/default.safetensors` writes
            # this file and its card; until then export with --weights.
            weights={
                "default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml"),
            },
            trainer="$name",
            graphs=(
                zoo.GraphSpec(
                    inputs=(
                        zoo.TensorSpec("image", ("batch", 1, IMAGE_SIZE, IMAGE_SIZE), example="uniform",
                                       description="grayscale image in [0, 1]"),
                    ),
                    outputs=(
                        zoo.TensorSpec("reconstruction", ("batch", 1, IMAGE_SIZE, IMAGE_SIZE),
                                       description="reconstructed image in [0, 1]"),
                    ),
                    preprocessing={"image": {"layout": "NCHW", "range": [0.0, 1.0], "from_uint8": "x / 255"}},
                    postprocessing={"reconstruction": {"layout": "NCHW", "range": [0.0, 1.0], "to_uint8": "x * 255"}},
                ),
            ),
        )
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="$name",
            recipe="$package.train:${cls}Recipe",
            defaults={"epochs": 2, "batch_size": 64, "lr": 1e-3},
            description="mean squared reconstruction error, Adam, MNIST training split",
        )
    )
'''

MODEL = '''\
"""$name: a small convolutional autoencoder for 28x28 grayscale images.

Replace it with your architecture; keep a config dataclass, plain PyTorch
modules and `build(**config)`, and update the GraphSpec in __init__.py when
the inputs or outputs change.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ${cls}Config:
    channels: int = 1  # image channels
    width: int = 16  # channels of the first hidden layer; the second has twice as many


class ${cls}(nn.Module):
    def __init__(self, config: ${cls}Config):
        super().__init__()
        self.config = config
        width = config.width
        self.encoder = nn.Sequential(
            nn.Conv2d(config.channels, width, 3, stride=2, padding=1), nn.ReLU(),  # 28 -> 14
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),  # 14 -> 7
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(width, config.channels, 4, stride=2, padding=1), nn.Sigmoid(),  # 14 -> 28
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image (batch, channels, 28, 28) in [0, 1] -> reconstruction of the same shape in [0, 1]."""
        return self.decoder(self.encoder(image))


def build(**config) -> ${cls}:
    return ${cls}(${cls}Config(**config))
'''

TRAIN = '''\
"""The training recipe of $name: mean squared reconstruction error with Adam.

The zoo's loop drives it (seed, epochs, progress bar, checkpoints, the
weights file and its card); the recipe says how to read the data, take one
step and evaluate.
"""

import torch
import torch.nn.functional as F

import zoo
from zoo.data import read_mnist
from $package.model import ${cls}, ${cls}Config


def to_tensor(images) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    return torch.from_numpy(images).float().unsqueeze(1) / 255.0


class ${cls}Recipe(zoo.Recipe):
    data_description = "MNIST t10k, training split (index % 5 != 0, 8,000 images), scaled to [0, 1]"
    metric_descriptions = {
        "heldout_mse": "mean squared reconstruction error on the 2,000 held-out MNIST images (pixels in [0, 1]); lower is better",
    }

    def __init__(self, spec, options):
        super().__init__(spec, options)
        images, _ = read_mnist(options.data, "train")
        if options.limit:
            images = images[: options.limit]
        self.images = to_tensor(images).to(options.device)
        self.model = ${cls}(${cls}Config(**self.config)).to(options.device)
        self.networks = {"model": self.model}
        self.optimizers = {"model": torch.optim.Adam(self.model.parameters(), lr=options.lr)}
        self.shipped = "model"

    def batches(self, epoch):
        return [self.images[index] for index in self.index_batches(len(self.images), epoch)]

    def step(self, images):
        self.model.train()
        loss = F.mse_loss(self.model(images), images)
        self.optimizers["model"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["model"].step()
        return {"mse": loss.item()}

    def evaluate(self):
        model = self.networks["model"].eval()
        images, _ = read_mnist(self.options.data, "heldout")
        heldout = to_tensor(images).to(self.options.device)
        with torch.no_grad():
            return {"heldout_mse": round(F.mse_loss(model(heldout), heldout).item(), 5)}
'''

TESTS = '''\
"""The checks the zoo relies on (`zoo.testing`), and a short real training run."""

import os

import pytest

from zoo import testing
from zoo.data import data_root

MODEL = "$name"
# The data root: ZOO_TEST_DATA, else the one zoo commands use (ZOO_DATA or [data] root).
MNIST = data_root(os.environ.get("ZOO_TEST_DATA")) / "mnist"


def test_conformance(tmp_path):
    """Spec, light import, build, forward signature, shipped weights (if trained) and ONNX export."""
    report = testing.check_model(MODEL, tmp_path)
    assert "onnx export" in report.passed


@pytest.mark.skipif(not (MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason=f"MNIST not found under {MNIST.parent}; set ZOO_TEST_DATA to the data root")
def test_a_few_training_steps_give_weights_that_load_and_export(tmp_path):
    weights = testing.train_briefly(MODEL, MNIST, tmp_path / "tiny.safetensors", steps=3, limit=64, width=4)
    report = testing.check_model(MODEL, tmp_path, weights=weights)
    assert f"weights {weights}" in report.passed
'''

README = '''\
# $distribution

`$name`, a model plugin for aigc-zoo written by
`zoo new-plugin $name`. It starts as a small convolutional autoencoder for
28x28 grayscale images; replace the architecture in `$package/model.py`
and the signature in `$package/__init__.py`.

## Files

| file | what it holds |
| --- | --- |
| `pyproject.toml` | the distribution and its `zoo` entry point (`$name = "$package"`) |
| `$package/__init__.py` | hook implementations: the `ModelSpec` and `TrainerSpec` (imports no torch) |
| `$package/model.py` | config dataclass, modules, `build(**config)` |
| `$package/train.py` | the `zoo.Recipe` that `zoo train` drives |
| `$package/weights/` | `default.safetensors` and its card, once trained |
| `tests/test_$package.py` | the zoo's conformance kit and a short training run |

## From nothing to an ONNX bundle

    pip install -e ".[test]"    # the plugin and pytest; offline: add --no-deps --no-build-isolation
    zoo list                    # shows $name
    zoo plugins                 # shows the plugin, its hooks and any errors
    pytest                      # conformance kit: spec, build, forward, ONNX export
    zoo train $name --data DIR --out $package/weights/default.safetensors   # DIR holds mnist/
    zoo info $name              # the card: data, command, wall time, metrics
    zoo run $name -o reconstructions.png    # held-out digits beside their reconstructions
    zoo eval $name              # held-out mean squared error (the image-reconstruction task)
    zoo export $name --target onnx -o out/

Before training, export random weights to try the pipeline:

    python -c "from zoo import testing; testing.save_random_weights('$name', 'random.safetensors')"
    zoo export $name --target onnx --weights random.safetensors -o out/

See the zoo's `docs/plugins.md` for every hook, spec field and environment
variable (`ZOO_DISABLE_PLUGINS`, `ZOO_STRICT_PLUGINS`, `ZOO_TRACE_PLUGINS`).
'''

GITIGNORE = '''\
__pycache__/
*.egg-info/
out/
*.ckpt.safetensors
*.metrics.jsonl
'''


def package_name(name: str) -> str:
    """The Python package of plugin `name`: 'my-model' -> 'zoo_my_model'."""
    return "zoo_" + name.replace("-", "_")


def class_name(name: str) -> str:
    """'my-model' -> 'MyModel'."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", name) if part)


def plugin_files(name: str) -> dict[str, str]:
    """Relative path -> text of every file of a new plugin package."""
    package = package_name(name)
    values = {
        "name": name,
        "package": package,
        "distribution": f"zoo-{name}",
        "cls": class_name(name),
        "zoo_version": __version__,
    }
    templates = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        ".gitignore": GITIGNORE,
        f"{package}/__init__.py": INIT,
        f"{package}/model.py": MODEL,
        f"{package}/train.py": TRAIN,
        f"tests/test_{package}.py": TESTS,
    }
    return {path: Template(text).substitute(values) for path, text in templates.items()}


def new_plugin(name: str, directory: Path | None = None) -> Path:
    """Write plugin package `name` into `directory` (default ./zoo-NAME); return the directory."""
    if not _VALID_NAME.fullmatch(name):
        raise ZooError(f"plugin name {name!r} must be lower-case letters, digits, '-' or '_', starting with a letter")
    from zoo.api import registry

    reg = registry()
    if name in reg.models:
        raise ZooError(f"model '{name}' is already registered by plugin '{reg.owner('models', name)}'; choose another name")
    directory = Path(directory or f"zoo-{name}")
    with atomic_directory(directory, "--dir", what="plugin package", can_force=False) as temporary:
        for relative, text in plugin_files(name).items():
            path = temporary / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (temporary / package_name(name) / "weights").mkdir()
    return directory
