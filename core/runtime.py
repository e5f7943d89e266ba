"""Runtime backends behind one interface: `run(feeds) -> outputs`.

Every backend takes and returns numpy arrays keyed by the graph's tensor
names, so `zoo run`, `zoo eval` and `zoo bench` treat PyTorch and ONNX
Runtime alike and can compare them side by side. The ONNX Runtime backend
never imports torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from zoo.errors import UnavailableError, UnknownNameError
from zoo.specs import GraphSpec, ModelSpec, import_dotted

# "<runtime>[-<precision>]": onnx-int8 runs the int8 export on ONNX Runtime's CPU provider,
# trt-fp16 an fp16 TensorRT engine. Reduced-precision exports are made and validated on first use.
BACKENDS = (
    "torch", "onnx", "onnx-fp16", "onnx-int8", "onnx-cuda", "onnx-cuda-fp16", "onnx-trt",
    "trt", "trt-fp16", "trt-int8",
)
_PROVIDERS = {
    "onnx": ["CPUExecutionProvider"],
    "onnx-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "onnx-trt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
PRECISIONS = ("fp32", "fp16", "int8")


def split_backend(name: str) -> tuple[str, str]:
    """"onnx-int8" -> ("onnx", "int8"); names without a precision suffix are fp32."""
    runtime, _, last = name.rpartition("-")
    return (runtime, last) if last in PRECISIONS else (name, "fp32")


class Backend(Protocol):
    name: str
    graph: GraphSpec

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def graph_module(model: Any, graph: GraphSpec) -> Any:
    """The torch module a graph exports: the model, or what `graph.module` makes of it."""
    return import_dotted(graph.module, f"the module of graph '{graph.name}'")(model) if graph.module else model


class TorchBackend:
    """Eager PyTorch on the module the graph exports."""

    name = "torch"

    def __init__(self, module: Any, graph: GraphSpec, device: str = "cpu"):
        self.module, self.graph, self.device = module, graph, device

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            args = [torch.from_numpy(np.ascontiguousarray(feeds[t.name])).to(self.device) for t in self.graph.inputs]
            results = self.module(*args)
        if not isinstance(results, (tuple, list)):
            results = (results,)
        return {t.name: r.detach().cpu().numpy() for t, r in zip(self.graph.outputs, results)}


class OnnxBackend:
    """ONNX Runtime on an exported graph, with the providers `kind` names."""

    def __init__(self, path: Path, graph: GraphSpec, kind: str = "onnx", threads: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            raise UnavailableError("onnxruntime is not installed; pip install 'aigc-zoo[cpu]'") from None
        wanted = _PROVIDERS[split_backend(kind)[0]]
        if wanted[0] not in ort.get_available_providers():
            raise UnavailableError(
                f"backend '{kind}' needs ONNX Runtime's {wanted[0]}, which this installation lacks "
                f"(available: {', '.join(ort.get_available_providers())}); use --backend onnx"
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        self.name, self.graph, self.path = kind, graph, Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=wanted)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [t.name for t in self.graph.outputs]
        results = self.session.run(names, {t.name: feeds[t.name] for t in self.graph.inputs})
        return dict(zip(names, results))

    def run_values(self, feeds: dict[str, Any], keep: list[str]) -> dict[str, Any]:
        """Like `run`, but the outputs named in `keep` stay ONNX Runtime values in its memory,
        and feeds may be such values: a KV cache passes from one call to the next with no copy
        (numpy feeds are wrapped, not copied). The other outputs come back as numpy arrays."""
        from onnxruntime import OrtValue

        names = [t.name for t in self.graph.outputs]
        inputs = {}
        for tensor in self.graph.inputs:
            value = feeds[tensor.name]
            inputs[tensor.name] = value if isinstance(value, OrtValue) else OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value))
        results = self.session.run_with_ort_values(names, inputs)
        kept = set(keep)
        return {name: value if name in kept else value.numpy() for name, value in zip(names, results)}


def check_backend(name: str) -> None:
    if name not in BACKENDS:
        raise UnknownNameError(f"unknown backend '{name}'; use one of {', '.join(BACKENDS)}")


def open_backend(
    spec: ModelSpec,
    backend: str,
    reference: str | None = None,
    graph: str | None = None,
    weights: str | None = None,
    model: Any = None,
    data: str | None = None,
) -> Backend:
    """A backend for one graph of a model. ONNX backends use a cached export,
    made on first use; `model` reuses an already loaded torch model; `data`
    feeds the task metric that validates fp16/int8 exports."""
    check_backend(backend)
    graph_spec = spec.graph(graph)
    reference = reference or spec.name
    if backend == "torch":
        from zoo.api import load

        model = model if model is not None else load(reference, weights)
        return TorchBackend(graph_module(model, graph_spec), graph_spec)
    from zoo.exporting import cached_bundle

    runtime, precision = split_backend(backend)
    if runtime == "trt":
        from zoo.export.trt import engine_backend

        return engine_backend(cached_bundle(reference, weights), graph_spec, precision, backend)
    from zoo.config import load_config

    bundle = cached_bundle(reference, weights, precision, data)
    manifest = json.loads((bundle / "model.json").read_text())
    threads = load_config()["run"]["onnx_threads"]  # 1 with OMP_NUM_THREADS=1 compares one thread with one thread
    return OnnxBackend(bundle / manifest["graphs"][graph_spec.name]["file"], graph_spec, backend, threads=threads)
