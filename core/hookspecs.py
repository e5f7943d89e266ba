"""The hooks a zoo plugin can implement: models, trainers, exporters and tasks.

A plugin is a module (or object) registered under the ``zoo`` entry-point
group. It implements any of the hooks below with ``@zoo.hookimpl``; each hook
receives a ``register`` callback, so the core validates every spec, records
which plugin registered it and reports name collisions.
"""

import pluggy

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def register_models(register):
    """Register model architectures and their pretrained weights.

    Call ``register(spec)`` once per model with a ``zoo.ModelSpec``: its name,
    task, a dotted path to the builder, the default config, the weights
    variants and the export graphs. Import nothing heavy here: the spec is
    data, and torch is imported only when a model is built.
    """


@hookspec
def register_trainers(register):
    """Register training recipes.

    Call ``register(spec)`` once per recipe with a ``zoo.TrainerSpec`` whose
    ``recipe`` is a dotted path to a ``zoo.Recipe`` subclass. A model names
    its trainer in ``ModelSpec.trainer``; the core owns the loop (seed,
    epochs, progress, checkpoints, the final weights and card).
    """


@hookspec
def register_exporters(register):
    """Register export targets (onnx, trt, ...).

    Call ``register(spec)`` once per target with a ``zoo.ExporterSpec``: a
    dotted path to the export function, the precisions it supports and a
    dotted path to a check that says whether this machine can run it.
    """


@hookspec
def register_tasks(register):
    """Register tasks: what `zoo run` and `zoo eval` do for a kind of model.

    Call ``register(spec)`` once per task with a ``zoo.TaskSpec``: its name
    (what ``ModelSpec.task`` refers to), dotted paths to its ``run``,
    ``evaluate`` and ``quality`` functions, the command-line options it adds
    to ``zoo run`` / ``zoo eval`` and the data sets it reads. The modules the
    paths name must import without torch, so the ONNX Runtime path stays light.
    """
