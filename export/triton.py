"""The Triton target: a Triton Inference Server model repository.

    <bundle>/                    the repository: tritonserver --model-repository <bundle>
      model.json                 the zoo manifest (Triton ignores files at the top)
      <model>/config.pbtxt       one Triton model per graph: <model> for one-graph models,
      <model>/1/model.onnx       <model>_<graph> for multi-graph models

Inputs and outputs carry the graph's names, dtypes and dims; a graph with a
"batch" axis gets max_batch_size and dynamic batching, and its dims leave the
batch axis out, as Triton expects. Other symbolic axes become -1.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import zoo
from zoo.errors import ValidationError
from zoo.specs import GraphSpec, TensorSpec

TRITON_DTYPES = {
    "float32": "TYPE_FP32", "float16": "TYPE_FP16", "int64": "TYPE_INT64",
    "int32": "TYPE_INT32", "bool": "TYPE_BOOL", "uint8": "TYPE_UINT8",
}


@zoo.hookimpl
def register_exporters(register):
    register(
        zoo.ExporterSpec(
            name="triton",
            export="zoo.export.triton:export",
            check="zoo.export.onnx:check",
            precisions=("fp32", "fp16", "int8"),
            settings=(
                zoo.Setting("max_batch_size", 64, "Triton's max_batch_size for graphs with a batch axis", flag=True),
                zoo.Setting("preferred_batch_sizes", [8, 32], "batch sizes dynamic batching tries to form"),
                zoo.Setting("max_queue_delay_us", 100, "how long dynamic batching waits to fill a batch"),
            ),
            description="Triton Inference Server model repository (config.pbtxt + 1/model.onnx per graph)",
        )
    )


def model_name(spec_name: str, graph: GraphSpec, graph_count: int) -> str:
    return spec_name if graph_count == 1 else f"{spec_name}_{graph.name}"


def _batched(graph: GraphSpec) -> bool:
    return all(t.shape and t.shape[0] == "batch" for t in graph.inputs + graph.outputs)


def _tensor(tensor: TensorSpec, batched: bool, static_batch: bool) -> str:
    dims = tensor.shape[1:] if batched else tensor.shape
    # A static export fixed "batch" at 1; other symbolic axes stay variable (-1).
    dims_text = ", ".join(("1" if d == "batch" and static_batch else "-1") if isinstance(d, str) else str(d) for d in dims)
    return f'  {{\n    name: "{tensor.name}"\n    data_type: {TRITON_DTYPES[tensor.dtype]}\n    dims: [ {dims_text} ]\n  }}'


def config_text(name: str, graph: GraphSpec, triton: dict[str, Any], dynamic_batch: bool) -> str:
    """config.pbtxt for one graph, in protobuf text format."""
    batched = dynamic_batch and _batched(graph)
    lines = [f'name: "{name}"', 'platform: "onnxruntime_onnx"', f"max_batch_size: {triton['max_batch_size'] if batched else 0}"]
    lines.append("input [\n" + ",\n".join(_tensor(t, batched, not dynamic_batch) for t in graph.inputs) + "\n]")
    lines.append("output [\n" + ",\n".join(_tensor(t, batched, not dynamic_batch) for t in graph.outputs) + "\n]")
    if batched:
        preferred = ", ".join(str(b) for b in triton["preferred_batch_sizes"] if b <= triton["max_batch_size"])
        lines.append(
            "dynamic_batching {\n"
            + (f"  preferred_batch_size: [ {preferred} ]\n" if preferred else "")
            + f"  max_queue_delay_microseconds: {triton['max_queue_delay_us']}\n}}"
        )
    return "\n".join(lines) + "\n"


def model_config_pb2():
    """Triton's own ModelConfig protobuf module (tritonclient), or None when not installed.

    `tritonclient.grpc` imports grpc in its __init__, so without the grpc
    extra the generated module is loaded from its file directly.
    """
    import importlib.util

    try:
        from tritonclient.grpc import model_config_pb2 as module

        return module
    except (ImportError, RuntimeError):
        pass
    found = importlib.util.find_spec("tritonclient")
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("zoo_triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_config(text: str):
    """Parse config.pbtxt with Triton's schema; None when tritonclient is missing."""
    from google.protobuf import text_format

    schema = model_config_pb2()
    if schema is None:
        return None
    return text_format.Parse(text, schema.ModelConfig())


def check_config(text: str, onnx_path: Path, graph: GraphSpec) -> str:
    """The config must parse with Triton's schema and name the ONNX file's inputs and outputs."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {t.name for t in model.graph.initializer}
    onnx_inputs = [v.name for v in model.graph.input if v.name not in initializers]
    onnx_outputs = [v.name for v in model.graph.output]
    try:
        parsed = parse_config(text)
    except Exception as exc:
        raise ValidationError(f"the generated config.pbtxt for '{graph.name}' does not parse with Triton's schema: {exc}") from None
    if parsed is None:
        return "tritonclient not installed: config checked against the ONNX file only"
    declared = ([i.name for i in parsed.input], [o.name for o in parsed.output])
    if declared != (onnx_inputs, onnx_outputs):
        raise ValidationError(f"config.pbtxt names {declared}, the ONNX graph {onnx_inputs, onnx_outputs}; the bundle was not written")
    return "parsed with tritonclient's model_config_pb2; names match the ONNX graph"


def export(job: zoo.ExportJob) -> dict[str, Any]:
    from zoo.export import onnx as onnx_target

    entries = onnx_target.export(job)
    repository: dict[str, Any] = {}
    for graph in job.spec.graphs:
        entry = entries["graphs"][graph.name]
        name = model_name(job.spec.name, graph, len(job.spec.graphs))
        version = job.out_dir / name / "1"
        version.mkdir(parents=True, exist_ok=True)
        source = job.out_dir / entry["file"]
        shutil.move(source, version / "model.onnx")
        test_data = job.out_dir / entry["test_data"]
        shutil.move(test_data, job.out_dir / name / "test_data_set_0")
        if len(job.spec.graphs) > 1 and source.parent != job.out_dir and not any(source.parent.iterdir()):
            source.parent.rmdir()
        text = config_text(name, graph, job.target_config, job.export_config["dynamic_batch"])
        (job.out_dir / name / "config.pbtxt").write_text(text)
        checked = check_config(text, version / "model.onnx", graph)
        job.log(f"{job.spec.name}/{graph.name}: Triton model '{name}': {checked}")
        entry["file"] = f"{name}/1/model.onnx"
        entry["test_data"] = f"{name}/test_data_set_0"
        repository[graph.name] = {"model": name, "config": f"{name}/config.pbtxt", "config_check": checked}
    entries["triton"] = repository
    return entries

