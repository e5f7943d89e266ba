"""What `zoo run` and `zoo eval` do for each task, on any backend.

One module per task defines `run(spec, backend, options) -> str` (the line
to print) and `evaluate(spec, backend, options) -> dict` (metrics). A task
module may also define `quality(spec, backend, options) -> Quality`: one
headline task metric on `options["examples"]` examples read from
`options["data"]`, which validates reduced-precision exports (fp16, int8) by
the task's own measure rather than by raw output differences. Inputs
are drawn with numpy from a seed, so the same seed gives the same result on
PyTorch and ONNX Runtime, and the ONNX path never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from zoo.errors import ZooError

TASK_MODULES = {
    "image-generation": "zoo.tasks.image_generation",
    "policy": "zoo.tasks.policy",
    "image-classification": "zoo.tasks.image_classification",
    "text-generation": "zoo.tasks.text_generation",
    "image-to-image": "zoo.tasks.image_translation",
}


class Note(str):
    """What a run wrote where (a picture, a grid): `zoo run` prints it on stderr and keeps stdout for the
    product itself (generated text, class probabilities, an episode's return)."""


def task_function(task: str, function: str, model: str = "") -> Callable:
    """`run` or `evaluate` of a task's module."""
    if task not in TASK_MODULES:
        raise ZooError(f"`zoo {'eval' if function == 'evaluate' else function}` does not support {task} models such as '{model}' yet")
    return getattr(importlib.import_module(TASK_MODULES[task]), function)


@dataclass(frozen=True)
class Quality:
    """A task metric measured on a backend: what `quality` returns."""

    metric: str
    value: float
    higher_is_better: bool
    examples: int
    description: str = ""

    def relative_drop(self, reference: "Quality") -> float:
        """How much worse than `reference` this is, as a fraction of |reference| (negative: better)."""
        worse = reference.value - self.value if self.higher_is_better else self.value - reference.value
        return worse / max(abs(reference.value), 1e-12)


def quality_function(task: str) -> Callable | None:
    """The task module's `quality`, or None when the task defines none."""
    if task not in TASK_MODULES:
        return None
    return getattr(importlib.import_module(TASK_MODULES[task]), "quality", None)
