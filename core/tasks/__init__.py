"""The built-in tasks: what `zoo run` and `zoo eval` do for the zoo's kinds of model.

Each task is a `zoo.TaskSpec` registered through the `register_tasks` hook
by this module, the `tasks` plugin, exactly as a third-party task would be.
One module per task defines `run(spec, backend, options) -> RunResult` (what
`zoo run` prints, for people and for `--json`), `evaluate(spec, backend, options) -> dict` (metrics) and
`quality(spec, backend, options) -> Quality`: one headline task metric on
`options["examples"]` examples read from `options["data"]`, which validates
reduced-precision exports (fp16, int8) by the task's own measure rather
than by raw output differences. Inputs are drawn with numpy from a seed, so
the same seed gives the same result on PyTorch and ONNX Runtime, and the
ONNX path never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from zoo.errors import ZooError
from zoo.hookspecs import hookimpl
from zoo.specs import ModelSpec, Option, TaskSpec, import_dotted

TASKS = (
    TaskSpec(
        name="image-generation",
        description="sample grids from latent inputs; sample quality against held-out MNIST",
        run="zoo.tasks.image_generation:run",
        evaluate="zoo.tasks.image_generation:evaluate",
        quality="zoo.tasks.image_generation:quality",
        options=(Option("n", type="int", default=64, minimum=1, help="number of samples"),),
        random_inputs=True,
        data=("mnist",),
    ),
    TaskSpec(
        name="image-classification",
        description="top classes of a picture or a folder of them; accuracy on the data sets a variant names",
        run="zoo.tasks.image_classification:run",
        evaluate="zoo.tasks.image_classification:evaluate",
        quality="zoo.tasks.image_classification:quality",
        options=(Option("image", type="path", help="picture to classify (PNG, JPEG)"),),
        batch="zoo.tasks.image_classification:BATCH",
        data=("mnist", "usps"),
    ),
    TaskSpec(
        name="image-to-image",
        description="translate digits between two data sets (one graph per direction); label preservation",
        run="zoo.tasks.image_translation:run",
        evaluate="zoo.tasks.image_translation:evaluate",
        quality="zoo.tasks.image_translation:quality",
        options=(
            Option("image", type="path", help="picture to translate (PNG, JPEG); without it, test images of the source domain"),
            Option("n", type="int", default=64, minimum=1, help="without --image: test images to translate"),
            Option("direction", help="the graph that translates (one of the model's graphs; default: the first)",
                   selects_graph=True),
        ),
        data=("mnist", "usps"),
    ),
    TaskSpec(
        name="image-reconstruction",
        description="rebuild pictures through the model (autoencoders); mean squared error on held-out MNIST",
        run="zoo.tasks.image_reconstruction:run",
        evaluate="zoo.tasks.image_reconstruction:evaluate",
        quality="zoo.tasks.image_reconstruction:quality",
        options=(
            Option("image", type="path", help="picture to reconstruct (PNG, JPEG); without it, held-out MNIST digits"),
            Option("n", type="int", default=16, minimum=1, help="without --image: held-out digits to reconstruct"),
        ),
        data=("mnist",),
    ),
    TaskSpec(
        name="text-generation",
        description="continue a prompt; bits per character on held-out Tiny Shakespeare",
        run="zoo.tasks.text_generation:run",
        evaluate="zoo.tasks.text_generation:evaluate",
        quality="zoo.tasks.text_generation:quality",
        options=(
            Option("prompt", default="\n", help="text to continue"),
            Option("max-new-tokens", type="int", default=200, minimum=1, help="tokens to generate"),
            Option("temperature", type="float", default=0.8, minimum=0, help="sampling temperature; 0 = greedy"),
            Option("top-k", type="int", default=40, minimum=0, help="sample among the k likeliest tokens; 0 = all"),
        ),
        data=("tinyshakespeare",),
    ),
    TaskSpec(
        name="policy",
        description="play episodes of the graph's gymnasium environment; return statistics",
        run="zoo.tasks.policy:run",
        evaluate="zoo.tasks.policy:evaluate",
        quality="zoo.tasks.policy:quality",
        options=(
            Option("render", type="path", metavar="OUT.gif", help="write an animated GIF of the episode"),
            Option("episodes", type="int", commands=("eval",), minimum=1,
                   help="evaluation episodes, reset seeds 0..N-1 (default 100)"),
        ),
    ),
)


@dataclass(frozen=True)
class RunResult:
    """What a task's `run` produced. `product` is printed on stdout (generated text, class probabilities, an
    episode's return) and `note` on stderr (what was written where), so that `zoo run ... > file` captures the
    product alone; `data` is what `zoo run --json` prints instead, as one JSON object (the command adds
    `model` and `backend`). A `run` may also return a plain string: it is the product."""

    data: dict[str, Any] = field(default_factory=dict)
    product: str = ""
    note: str = ""

    @classmethod
    def of(cls, returned: "RunResult | str") -> "RunResult":
        """A task's return value as a RunResult (a plain string is the product)."""
        return returned if isinstance(returned, RunResult) else cls(data={"text": str(returned)}, product=str(returned))


@hookimpl
def register_tasks(register):
    for task in TASKS:
        register(task)


def task_spec(spec: ModelSpec) -> TaskSpec:
    """The registered task of a model, or a one-line error naming the fix."""
    from zoo.api import registry

    tasks = registry().tasks
    if spec.task not in tasks:
        raise ZooError(f"model '{spec.name}' is a {spec.task} model, and no installed plugin registers that task "
                       f"(installed tasks: {', '.join(sorted(tasks)) or 'none'}); install the plugin that provides it")
    return tasks[spec.task]


def task_function(spec: ModelSpec, function: str) -> Callable:
    """The task's `run` or `evaluate` function for a model."""
    task = task_spec(spec)
    path = getattr(task, function)
    if path is None:
        command = "eval" if function == "evaluate" else function
        raise ZooError(f"task '{task.name}' defines no `{function}`, so `zoo {command}` cannot score '{spec.name}'")
    return import_dotted(path, f"the {function} function of task '{task.name}'")


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
    """The registered task's `quality`, or None when the task defines none or is not installed."""
    from zoo.api import registry

    spec = registry().tasks.get(task)
    if spec is None or spec.quality is None:
        return None
    return import_dotted(spec.quality, f"the quality function of task '{task}'")
