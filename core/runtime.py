"""Runtime backends behind one interface: `run(feeds) -> outputs`.

Every backend takes and returns numpy arrays keyed by the graph's tensor
names, so `zoo run`, `zoo eval` and `zoo bench` treat PyTorch and ONNX
Runtime alike and can compare them side by side. The ONNX Runtime backend
never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from zoo.errors import UnavailableError
from zoo.specs import GraphSpec, ModelSpec, import_dotted

# ONNX Runtime providers of the core's own ONNX Runtime backends, by runtime name; targets
# that provide other backends (TensorRT's) pass their providers and options to OnnxBackend.
PROVIDERS = {
    "onnx": ["CPUExecutionProvider"],
    "onnx-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
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
    """ONNX Runtime on an exported graph.

    `providers` lists ONNX Runtime execution providers, first choice first,
    each a name or a (name, options) pair; by default those of PROVIDERS for
    `kind`. ONNX Runtime falls back to a later provider silently when the
    first cannot start (a missing CUDA library, an unsupported graph), so the
    session's active provider is checked: a fallback is an error, or with
    `on_fallback="warn"` one line on stderr.
    """

    def __init__(
        self, path: Path, graph: GraphSpec, kind: str = "onnx", threads: int = 0,
        providers: list[Any] | None = None, on_fallback: str = "fail",
    ):
        try:
            import onnxruntime as ort
        except ImportError:
            raise UnavailableError("onnxruntime is not installed; pip install 'aigc-zoo[cpu]'") from None
        wanted = providers or PROVIDERS[split_backend(kind)[0]]
        first = wanted[0] if isinstance(wanted[0], str) else wanted[0][0]
        if first not in ort.get_available_providers():
            raise UnavailableError(
                f"backend '{kind}' needs ONNX Runtime's {first}, which this installation lacks "
                f"(available: {', '.join(ort.get_available_providers())}); use --backend onnx"
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        self.name, self.graph, self.path = kind, graph, Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=wanted)
        active = self.session.get_providers()[0]
        if active != first:
            message = (f"backend '{kind}' asked ONNX Runtime for {first}, but the session runs on {active} "
                       f"(ONNX Runtime fell back; its log at severity 0-2 says why)")
            if on_fallback != "warn":
                raise UnavailableError(message + "; use --backend onnx or fix the provider's installation")
            import sys

            print(f"zoo: warning: {message}", file=sys.stderr)
        self.provider = active

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


@dataclass
class BackendRequest:
    """What a target's backend opener receives (`ExporterSpec.backends`).

    `model` is the `zoo.ResolvedModel` (spec and weights) to run and `graph`
    its graph, resolved for those weights. `name` is the backend asked for
    ("trt-fp16"), `precision` its suffix. `bundle()` is the cached ONNX
    export of the model at a precision, made and validated on first use
    (`zoo.bundles.graph_path` finds a graph's checked file in it); `config()`
    the merged configuration, including every target's own section.
    """

    model: Any
    graph: GraphSpec
    name: str
    data: str | None = None

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    @property
    def precision(self) -> str:
        return split_backend(self.name)[1]

    def bundle(self, precision: str = "fp32", int8_mode: str | None = None) -> Path:
        """`int8_mode` picks another int8 quantization than the configured one ("tensorrt": Q/DQ)."""
        from zoo.exporting import cached_bundle

        return cached_bundle(self.model, precision=precision, data=self.data, int8_mode=int8_mode)

    def config(self) -> dict[str, Any]:
        from zoo.api import configuration

        return configuration()


def check_backend(name: str) -> None:
    """An unknown backend name is a one-line error listing the known ones."""
    if name != "torch":
        from zoo.api import registry

        registry().backend(name)


def open_backend(
    model: Any,
    backend: str,
    graph: str | None = None,
    weights: str | None = None,
    loaded: Any = None,
    data: str | None = None,
) -> Backend:
    """A backend for one graph of a model: "torch", or a backend an export target
    provides (`onnx`, `onnx-int8`, `trt-fp16`, ...: `ExporterSpec.backends`), which
    runs a cached export made on first use.

    `model` is a reference ("NAME:VARIANT"), a spec (its default variant) or a
    `zoo.ResolvedModel`; `weights` a local file instead of the variant's. The
    graph's shapes are those of the weights used. `loaded` reuses a torch model
    from `zoo.load` or `zoo.build` (its own config then decides the graphs);
    `data` feeds the task metric that validates fp16/int8 exports."""
    if backend == "torch":
        from zoo.api import load

        loaded = loaded if loaded is not None else load(model, weights)
        graph_spec = loaded.zoo_spec.graph(graph)
        return TorchBackend(graph_module(loaded, graph_spec), graph_spec)
    from zoo.api import registry, resolve

    target, opener = registry().backend(backend)
    resolved = resolve(model, weights)
    request = BackendRequest(resolved, resolved.spec.graph(graph), backend, data)
    return import_dotted(opener, f"the '{backend}' backend of target '{target}'")(request)
