"""aigc-zoo: a plugin-based zoo of small generative and classic models.

    import zoo
    zoo.list_models()                     # specs of the installed models
    model = zoo.load("dcgan")             # a torch module with verified weights
    zoo.resolve("dcgan").graphs           # its graphs, shaped by the config in its weights
    zoo.export("dcgan", target="onnx", out="out/")

Importing zoo does not import torch.
"""

__version__ = "0.1.0"

from zoo.hookspecs import hookimpl  # noqa: E402
from zoo.errors import ZooError  # noqa: E402
from zoo.specs import ExporterSpec, GraphSpec, ModelSpec, Option, Setting, TaskSpec, TensorSpec, TrainerSpec, WeightsSpec  # noqa: E402
from zoo.api import ResolvedModel, build, get_spec, list_models, load, registry, resolve, resolve_weights  # noqa: E402
from zoo.exporting import ExportJob  # noqa: E402
from zoo.weights import file_sha256  # noqa: E402
from zoo.training import Recipe, TrainOptions  # noqa: E402
from zoo import export  # noqa: E402  (the package is callable: zoo.export(name, target, out))

__all__ = [
    "ExportJob",
    "ExporterSpec",
    "GraphSpec",
    "ModelSpec",
    "Option",
    "Recipe",
    "ResolvedModel",
    "Setting",
    "TaskSpec",
    "TensorSpec",
    "TrainOptions",
    "TrainerSpec",
    "WeightsSpec",
    "ZooError",
    "build",
    "export",
    "file_sha256",
    "get_spec",
    "hookimpl",
    "list_models",
    "load",
    "registry",
    "resolve",
    "resolve_weights",
]
