"""An export target from outside the zoo: `zoo export MODEL --target pt2`.

Each graph becomes a torch.export ExportedProgram (`model.pt2`, loadable
with `torch.export.load` in Python or AOTInductor in C++), with the symbolic
axes of its GraphSpec kept dynamic. The saved program is loaded back and
compared with eager PyTorch before the bundle is written.
"""

from typing import Any

import zoo

TRACE_BATCH = 2  # torch.export specialises axes of size 1


@zoo.hookimpl
def register_exporters(register):
    register(
        zoo.ExporterSpec(
            name="pt2",
            export="zoo_denoise_unet.pt2:export",
            precisions=("fp32",),
            description="torch.export ExportedProgram (.pt2), reloaded and validated against eager PyTorch",
        )
    )


def export(job: zoo.ExportJob) -> dict[str, Any]:
    """Write `model.pt2` per graph into `job.out_dir`; return the manifest's "graphs" entry."""
    import numpy as np
    import torch

    from zoo.errors import ValidationError
    from zoo.runtime import graph_module
    from zoo.tensors import example_inputs

    graphs = {}
    for graph in job.spec.graphs:
        module = graph_module(job.model, graph)
        feeds = example_inputs(graph, TRACE_BATCH, job.config["seed"])
        dims: dict[str, Any] = {}
        dynamic_shapes = tuple(
            {i: dims.setdefault(d, torch.export.Dim(d)) for i, d in enumerate(t.shape) if isinstance(d, str)} or None
            for t in graph.inputs
        )
        program = torch.export.export(
            module, tuple(torch.from_numpy(feeds[t.name]) for t in graph.inputs), dynamic_shapes=dynamic_shapes
        )
        path = job.graph_dir(graph) / "model.pt2"
        torch.export.save(program, str(path))

        reloaded = torch.export.load(str(path)).module()
        atol, rtol = job.config["atol"], job.config["rtol"]
        worst = 0.0
        for batch in job.config["validate_batch_sizes"]:
            feeds = example_inputs(graph, batch, job.config["seed"] + batch)
            args = [torch.from_numpy(feeds[t.name]) for t in graph.inputs]
            with torch.inference_mode():
                expected, actual = module(*args), reloaded(*args)
            expected = expected if isinstance(expected, (tuple, list)) else (expected,)
            actual = actual if isinstance(actual, (tuple, list)) else (actual,)
            for tensor, want, got in zip(graph.outputs, expected, actual):
                want, got = want.numpy(), got.numpy()
                error = np.abs(got.astype(np.float64) - want.astype(np.float64))
                worst = max(worst, float(error.max(initial=0.0)))
                if got.shape != want.shape or not np.all(error <= atol + rtol * np.abs(want)):
                    raise ValidationError(
                        f"pt2 export of graph '{graph.name}' differs from eager PyTorch on output '{tensor.name}' "
                        f"at batch {batch}; the bundle was not written"
                    )
        job.log(f"{job.spec.name}/{graph.name}: reloaded .pt2 vs eager PyTorch at batch "
                f"{', '.join(map(str, job.config['validate_batch_sizes']))}: max abs {worst:.2e}: ok")
        graphs[graph.name] = {
            "file": str(path.relative_to(job.out_dir)),
            "sha256": zoo.file_sha256(path),
            "inputs": [t.to_json() for t in graph.inputs],
            "outputs": [t.to_json() for t in graph.outputs],
            "max_abs": worst,
        }
    return {"torch_version": torch.__version__, "graphs": graphs}
