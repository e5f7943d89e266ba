"""An export target from outside the zoo: `zoo export MODEL --target pt2`.

Each graph becomes a torch.export ExportedProgram (`model.pt2`, loadable
with `torch.export.load` in Python or AOTInductor in C++), with the symbolic
axes of its GraphSpec kept dynamic. The saved program is loaded back and
compared with eager PyTorch before the bundle is written.

The target declares its own configuration section, `[pt2]` in zoo.toml
(`ZOO_PT2_TRACE_BATCH=4` in the environment, `--trace-batch 4` and
`--no-dynamic` on the command line), which the zoo validates like its own.
"""

from typing import Any

import zoo


@zoo.hookimpl
def register_exporters(register):
    register(
        zoo.ExporterSpec(
            name="pt2",
            export="zoo_denoise_unet.pt2:export",
            precisions=("fp32",),
            settings=(
                # torch.export specialises axes of size 1, so the trace batch must be 2 or more
                zoo.Setting("trace_batch", 2, "batch size of the example inputs torch.export traces", flag=True),
                zoo.Setting("dynamic", True, "keep the GraphSpec's symbolic axes dynamic (--no-dynamic: static shapes)", flag=True),
            ),
            description="torch.export ExportedProgram (.pt2), reloaded and validated against eager PyTorch",
        )
    )


def export(job: zoo.ExportJob) -> dict[str, Any]:
    """Write `model.pt2` per graph into `job.out_dir`; return the manifest's "graphs" entry."""
    import torch

    from zoo.errors import ConfigError
    from zoo.parity import Parity, Tolerance
    from zoo.runtime import TorchBackend, graph_module
    from zoo.tensors import example_inputs

    settings, export_config = job.target_config, job.export_config
    if settings["trace_batch"] < 2:
        raise ConfigError(f"pt2.trace_batch must be 2 or more (torch.export specialises axes of size 1), got {settings['trace_batch']}")
    # A static program only accepts the traced shapes, so it is validated at the trace batch.
    batches = export_config["validate_batch_sizes"] if settings["dynamic"] else [settings["trace_batch"]]
    graphs = {}
    for graph in job.spec.graphs:
        module = graph_module(job.model, graph)
        feeds = example_inputs(graph, settings["trace_batch"], export_config["seed"])
        dims: dict[str, Any] = {}
        dynamic_shapes = tuple(
            {i: dims.setdefault(d, torch.export.Dim(d)) for i, d in enumerate(t.shape) if isinstance(d, str)} or None
            for t in graph.inputs
        ) if settings["dynamic"] else None
        program = torch.export.export(
            module, tuple(torch.from_numpy(feeds[t.name]) for t in graph.inputs), dynamic_shapes=dynamic_shapes
        )
        path = job.graph_dir(graph) / "model.pt2"
        torch.export.save(program, str(path))

        eager, reloaded = TorchBackend(module, graph), TorchBackend(torch.export.load(str(path)).module(), graph)
        parity = Parity(graph, Tolerance(export_config["atol"], export_config["rtol"]))
        for batch in batches:
            feeds = example_inputs(graph, batch, export_config["seed"] + batch)
            parity.add(eager.run(feeds), reloaded.run(feeds), f" at batch {batch}")
        parity.check("the reloaded .pt2 program and eager PyTorch")
        job.log(f"{job.spec.name}/{graph.name}: reloaded .pt2 vs eager PyTorch at batch "
                f"{', '.join(map(str, batches))}: {parity.summary()}: ok")
        graphs[graph.name] = {
            "file": str(path.relative_to(job.out_dir)),
            "sha256": zoo.file_sha256(path),
            "inputs": [t.to_json() for t in graph.inputs],
            "outputs": [t.to_json() for t in graph.outputs],
            "parity": parity.to_json(batch_sizes=batches),
        }
    return {"torch_version": torch.__version__, "pt2": dict(settings), "graphs": graphs}
