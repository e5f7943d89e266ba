"""The ONNX target: trace each graph, check it, validate it against PyTorch,
and write it with test vectors in the ONNX test-data format."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import zoo
from zoo.export import precision
from zoo.boundary import check_interrupted, one_line
from zoo.errors import ValidationError, ZooError
from zoo.bundles import graph_path, read_manifest
from zoo.export.portable import split_unsqueezes
from zoo.parity import Parity, Tolerance
from zoo.runtime import BackendRequest, OnnxBackend, TorchBackend, graph_module
from zoo.specs import GraphSpec
from zoo.tensors import example_inputs

TRACE_BATCH = 2  # torch.export specialises axes of size 1, so trace with 2
# "<runtime>[-<precision>]": onnx-int8 runs the int8 export on ONNX Runtime's CPU provider.
# Reduced-precision exports are made and validated on first use.
ONNX_RUNTIME_BACKENDS = ("onnx", "onnx-fp16", "onnx-int8", "onnx-cuda", "onnx-cuda-fp16")


@zoo.hookimpl
def register_exporters(register):
    register(
        zoo.ExporterSpec(
            name="onnx",
            export="zoo.export.onnx:export",
            check="zoo.export.onnx:check",
            precisions=("fp32", "fp16", "int8"),
            backends={name: "zoo.export.onnx:open_backend" for name in ONNX_RUNTIME_BACKENDS},
            description="ONNX graph validated against PyTorch, with manifest and test vectors; "
            "fp16/int8 validated by the task metric",
        )
    )


def open_backend(request: BackendRequest) -> OnnxBackend:
    """`--backend onnx[-cuda][-fp16|-int8]`: ONNX Runtime on the cached export at the backend's precision."""
    bundle = request.bundle(request.precision)
    threads = request.config()["run"]["onnx_threads"]  # 1 with OMP_NUM_THREADS=1 compares one thread with one thread
    path = graph_path(bundle, read_manifest(bundle), request.graph.name)
    return OnnxBackend(path, request.graph, request.name, threads=threads)


def check() -> str | None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "the onnx target validates with onnxruntime, which is not installed; pip install 'aigc-zoo[cpu]'"
    return None


def export(job: zoo.ExportJob) -> dict[str, Any]:
    """Export every graph of the model; return the manifest's "graphs" entry."""
    precision.check_prerequisites(job.precision)  # before any tracing: a missing package is known now
    graphs = {}
    written = {}
    for graph in job.spec.graphs:
        folder = job.graph_dir(graph)
        path = folder / "model.onnx"
        module = graph_module(job.model, graph)
        write_onnx(module, graph, path, job.export_config, job.metadata(graph))
        written[graph.name] = (path, *validate(module, graph, path, job.export_config))
    if job.precision == "int8":
        precision.check_int8_applies(job.spec, {name: entry[0] for name, entry in written.items()}, job.export_config["int8_mode"])
    for graph in job.spec.graphs:
        path, parity, vectors = written[graph.name]
        folder = path.parent
        job.log(f"{job.spec.name}/{graph.name}: " + describe_parity(parity))
        reduced = None
        if job.precision != "fp32":
            reduced = precision.reduce_graph(job, graph, path)
            # The test vectors are what this file computes, so consumers can check they run it right.
            vectors = (vectors[0], OnnxBackend(path, graph).run(vectors[0]))
        test_dir = write_test_data(folder / "test_data_set_0", graph, vectors)
        graphs[graph.name] = {
            "file": str(path.relative_to(job.out_dir)),
            "sha256": zoo.file_sha256(path),
            "inputs": [t.to_json() for t in graph.inputs],
            "outputs": [t.to_json() for t in graph.outputs],
            "preprocessing": graph.preprocessing,
            "postprocessing": graph.postprocessing,
            "test_data": str(test_dir.relative_to(job.out_dir)),
            "parity": parity,
            **({"reduced_precision": reduced} if reduced else {}),
        }
    return {"opset": job.export_config["opset"], "exporter": job.export_config["exporter"], "graphs": graphs}


def _symbolic_axes(graph: GraphSpec, dynamic_batch: bool) -> dict[str, dict[int, str]]:
    axes = {}
    for tensor in graph.inputs + graph.outputs:
        named = {
            index: dim
            for index, dim in enumerate(tensor.shape)
            if isinstance(dim, str) and (dynamic_batch or dim != "batch")
        }
        axes[tensor.name] = named
    return axes


def _match_signature(module, shapes: tuple) -> tuple:
    """torch.export wants dynamic shapes nested like the forward's parameters: a
    `*args` parameter (a variable number of cache tensors) takes one tuple."""
    import inspect

    parameters = list(inspect.signature(module.forward).parameters.values())
    for index, parameter in enumerate(parameters):
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return shapes[:index] + (shapes[index:],)
    return shapes


def write_onnx(module, graph: GraphSpec, path: Path, config: dict[str, Any], metadata: dict[str, str]) -> None:
    """Trace `module` to a self-contained, checked ONNX file with `metadata` in metadata_props."""
    import onnx
    import torch

    sizes = graph.axis_sizes(TRACE_BATCH if config["dynamic_batch"] else 1)
    feeds = example_inputs(graph, TRACE_BATCH if config["dynamic_batch"] else 1, config["seed"], sizes)
    args = tuple(torch.from_numpy(feeds[t.name]) for t in graph.inputs)
    axes = _symbolic_axes(graph, config["dynamic_batch"])
    kwargs: dict[str, Any] = {}
    if config["exporter"] == "dynamo":
        dims: dict[str, Any] = {}
        shapes = tuple(
            {index: dims.setdefault(name, torch.export.Dim(name)) for index, name in axes[t.name].items()} or None
            for t in graph.inputs
        )
        kwargs["dynamic_shapes"] = _match_signature(module, shapes)
    else:
        kwargs["dynamic_axes"] = {name: named for name, named in axes.items() if named}
        kwargs["do_constant_folding"] = True
    captured = io.StringIO()
    # torch.onnx logs registry notes (e.g. "torchvision is not installed") through handlers
    # bound to the real stderr, which redirect_stderr cannot reach.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=[t.name for t in graph.inputs],
                output_names=[t.name for t in graph.outputs],
                opset_version=config["opset"],
                dynamo=config["exporter"] == "dynamo",
                external_data=False,
                **kwargs,
            )
    except Exception as exc:
        check_interrupted(exc)  # a Ctrl-C or a full disk is not the model's fault
        first = one_line(exc)[:300]
        raise ZooError(
            f"torch.onnx could not export graph '{graph.name}' ({type(exc).__name__}: {first}); "
            f"try ZOO_EXPORT_EXPORTER=torchscript or fix the model's forward"
        ) from None
    model = onnx.load(str(path))
    written = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != config["opset"]:
        raise ZooError(
            f"torch.onnx wrote graph '{graph.name}' at opset {written}, not the requested {config['opset']}; "
            f"set export.opset (ZOO_EXPORT_OPSET, --opset) to one the exporter supports, such as {written}"
        )
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ZooError(f"the exported graph '{graph.name}' fails the ONNX checker: {str(exc).splitlines()[0]}") from None
    model = onnx.shape_inference.infer_shapes(inline_constant_identities(model))
    model = split_unsqueezes(model)  # for OpenCV's importer, see zoo.export.portable
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def inline_constant_identities(model):
    """Replace Identity nodes on initializers by initializers of the output's name.

    The TorchScript exporter emits them for weights shared after batch-norm
    folding; OpenCV's DNN importer (and other small runtimes) reject Identity on
    a constant. The graph computes the same thing without them.
    """
    from onnx import numpy_helper

    initializers = {t.name: t for t in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    kept = []
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in initializers and node.output[0] not in outputs:
            copy = numpy_helper.from_array(numpy_helper.to_array(initializers[node.input[0]]), node.output[0])
            model.graph.initializer.append(copy)
            initializers[copy.name] = copy
        else:
            kept.append(node)
    if len(kept) != len(model.graph.node):
        del model.graph.node[:]
        model.graph.node.extend(kept)
    return model


def validate(module, graph: GraphSpec, path: Path, config: dict[str, Any]):
    """Compare ONNX Runtime with PyTorch on fresh random inputs at each batch size.

    `config` is the [export] section. Returns the per-output parity report
    and the last (inputs, expected outputs) pair for the test vectors;
    raises ValidationError when an output is outside the tolerance (`[export]
    atol/rtol`, or the graph's own `tolerances`) or has another shape.
    """
    torch_backend = TorchBackend(module, graph)
    onnx_backend = OnnxBackend(path, graph)
    batches = config["validate_batch_sizes"] if config["dynamic_batch"] else [1]
    parity = Parity(graph, Tolerance(config["atol"], config["rtol"]))
    vectors = None
    for offset, batch in enumerate(batches):
        feeds = example_inputs(graph, batch, config["seed"] + 1 + offset)
        expected, produced = torch_backend.run(feeds), onnx_backend.run(feeds)
        for name, reference in expected.items():
            if produced[name].dtype != reference.dtype:
                raise ValidationError(
                    f"export of graph '{graph.name}': output '{name}' is {produced[name].dtype} in ONNX Runtime and "
                    f"{reference.dtype} in PyTorch; the export failed validation and the bundle was not written"
                )
        parity.add(expected, produced, f" at batch {batch}")
        vectors = (feeds, expected)
    parity.check("ONNX Runtime and PyTorch", "the export failed validation and the bundle was not written")
    return parity.to_json(batch_sizes=batches), vectors


def describe_parity(report: dict[str, dict[str, Any]]) -> str:
    parts = [f"{name} max abs {e['max_abs']:.2e}, max rel {e['max_rel']:.2e}" for name, e in report.items()]
    first = next(iter(report.values()))
    batches = ", ".join(str(b) for b in first["batch_sizes"])
    return f"ONNX Runtime vs PyTorch at batch {batches}: " + "; ".join(parts) + f" (atol {first['atol']:g}, rtol {first['rtol']:g}): ok"


def write_test_data(folder: Path, graph: GraphSpec, vectors) -> Path:
    """input_<i>.pb / output_<i>.pb TensorProtos, as the onnx/models zoo ships them."""
    from onnx import numpy_helper

    feeds, expected = vectors
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, tensors, arrays in (("input", graph.inputs, feeds), ("output", graph.outputs, expected)):
        for index, tensor in enumerate(tensors):
            proto = numpy_helper.from_array(np.ascontiguousarray(arrays[tensor.name]), tensor.name)
            (folder / f"{prefix}_{index}.pb").write_bytes(proto.SerializeToString())
    return folder


def read_test_data(folder: Path, graph_manifest: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The inverse of `write_test_data`, for checks and for consumers in Python."""
    from onnx import TensorProto, numpy_helper

    def load(prefix: str, tensors: list[dict]) -> dict[str, np.ndarray]:
        arrays = {}
        for index, tensor in enumerate(tensors):
            proto = TensorProto()
            proto.ParseFromString((Path(folder) / f"{prefix}_{index}.pb").read_bytes())
            arrays[tensor["name"]] = numpy_helper.to_array(proto)
        return arrays

    return load("input", graph_manifest["inputs"]), load("output", graph_manifest["outputs"])

