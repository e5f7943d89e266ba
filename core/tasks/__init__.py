"""What `zoo run` and `zoo eval` do for each task, on any backend.

One module per task defines `run(spec, backend, options) -> str` (the line
to print) and `evaluate(spec, backend, options) -> dict` (metrics). Inputs
are drawn with numpy from a seed, so the same seed gives the same result on
PyTorch and ONNX Runtime, and the ONNX path never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Callable

from zoo.errors import ZooError

TASK_MODULES = {
    "image-generation": "zoo.tasks.image_generation",
    "policy": "zoo.tasks.policy",
    "image-classification": "zoo.tasks.image_classification",
    "text-generation": "zoo.tasks.text_generation",
}


def task_function(task: str, function: str, model: str = "") -> Callable:
    """`run` or `evaluate` of a task's module."""
    if task not in TASK_MODULES:
        raise ZooError(f"`zoo {'eval' if function == 'evaluate' else function}` does not support {task} models such as '{model}' yet")
    return getattr(importlib.import_module(TASK_MODULES[task]), function)
