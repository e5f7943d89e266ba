"""The TensorRT target: engines built with the TensorRT Python API from the
validated ONNX bundle, and a build plan that needs no GPU.

Engines are specific to a GPU and a TensorRT version, so they are built on
the machine that runs them: `zoo export NAME --target trt` there, or
`zoo export NAME [--precision P]` anywhere and `zoo build-engine BUNDLE/` on
the GPU machine. What can be known without a GPU (operators against the
ONNX operators TensorRT documents as supported, known traps, the precision
route, the optimization profile per axis, the Q/DQ operators, the validation
points) comes from `zoo export NAME --target trt --check-only`.

One code path serves TensorRT 10.x and 11.x, chosen by feature detection
(`features`), never by version strings:

- networks are strongly typed (the STRONGLY_TYPED creation flag on 10.x; the
  only kind 11.x builds), so precision comes from the ONNX graph: an fp16
  engine is built from the fp16 ONNX and an int8 engine from the explicitly
  quantized (Q/DQ) ONNX, both validated by the task metric on ONNX Runtime
  when they were exported. Only a TensorRT without strong typing gets the
  old precision builder flags (FP16, INT8) instead;
- float32 layers run without TF32 (where the flag exists) unless [trt] tf32;
- each symbolic axis gets a profile range (batch from [trt] and the flags,
  others from `GraphSpec.axis_ranges`), and an engine is kept only after it
  matched ONNX Runtime at the min, opt and max of every axis;
- the timing cache is keyed by TensorRT version and GPU, and an engine whose
  TensorRT version or GPU differs from this machine's is rebuilt on load.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import zoo
from zoo.errors import ConfigError, UnavailableError, ZooError
from zoo.bundles import contained, graph_path, read_manifest
from zoo.exporting import Report, cache_root
from zoo.files import atomic_file
from zoo.parity import Parity, Tolerance
from zoo.runtime import BackendRequest, OnnxBackend
from zoo.specs import GraphSpec
from zoo.tensors import example_inputs

# From onnx-tensorrt's docs/operators.md for TensorRT 10: the ONNX operators marked "N".
# Operators outside both lists (new or contrib ops) are reported as undocumented.
TRT_UNSUPPORTED_OPS = frozenset("""
AffineGrid Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor CenterCropPad Col2Im Compress
ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear ImageDecoder MatMulInteger MaxRoiPool MaxUnpool
MelWeightMatrix Multinomial NegativeLogLikelihoodLoss Optional OptionalGetElement OptionalHasElement QLinearConv
QLinearMatMul RegexFullMatch SequenceAt SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength
SequenceMap SoftmaxCrossEntropyLoss SplitToSequence StringConcat StringNormalizer StringSplit TfIdfVectorizer Unique
""".split())
# ... and those marked "Y".
TRT_SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool BatchNormalization BlackmanWindow
Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DeformConv
DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample
GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If ImageScaler
InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM
LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression
NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform
RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin
ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RMSNormalization RNN RoiAlign
RotaryEmbedding Round STFT ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh
Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh TensorScatter ThresholdedRelu
Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())
SETTINGS = (
    zoo.Setting("min_batch", 1, "smallest batch of the optimization profile", flag=True),
    zoo.Setting("opt_batch", 8, "batch TensorRT tunes for", flag=True),
    zoo.Setting("max_batch", 64, "largest batch of the optimization profile; larger calls are split", flag=True),
    zoo.Setting("workspace_mb", 2048, "builder workspace memory pool, MiB", flag=True),
    zoo.Setting("timing_cache", "", "timing cache file, its name extended by the TensorRT version and GPU; "
                "\"\" means <cache dir>/tensorrt/timing.cache", flag=True),
    zoo.Setting("tf32", False, "let float32 layers use TF32 (faster on Ampere and later, ~1e-3 relative error)", flag=True),
    zoo.Setting("atol_fp32", 1e-3, "engine vs ONNX Runtime absolute tolerance of fp32 engines"),
    zoo.Setting("atol_fp16", 5e-2, "... of fp16 engines (against the fp16 ONNX)"),
    zoo.Setting("atol_int8", 0.25, "... of int8 engines (against the Q/DQ ONNX)"),
    zoo.Setting("rtol", 1e-3, "engine vs ONNX Runtime relative tolerance, every precision"),
    zoo.Setting("provider_fallback", "fail", "onnx-trt when ONNX Runtime runs without its TensorRT provider: fail or warn"),
)
PRECISION_ROUTES = {
    "fp32": "the fp32 ONNX validated against PyTorch",
    "fp16": "the fp16 ONNX of `zoo export --precision fp16` (onnxconverter-common, float32 inputs and outputs, "
            "validated by the task metric)",
    "int8": "the explicitly quantized ONNX of `zoo export --precision int8` with export.int8_mode = \"tensorrt\" "
            "(Q/DQ by onnxruntime.quantization, calibrated on task inputs, validated by the task metric)",
}
WEAK_TYPING_FLAGS = {"fp32": [], "fp16": ["FP16"], "int8": ["INT8", "FP16"]}  # only for a TensorRT without strong typing
BACKENDS = {"trt": "fp32", "trt-fp16": "fp16", "trt-int8": "int8"}


@zoo.hookimpl
def register_exporters(register):
    register(
        zoo.ExporterSpec(
            name="trt",
            export="zoo.export.trt:export",
            check="zoo.export.trt:check",
            inspect="zoo.export.trt:inspect",
            build="zoo.export.trt:build_engines",
            precisions=("fp32", "fp16", "int8"),
            settings=SETTINGS,
            backends={**{name: "zoo.export.trt:open_backend" for name in BACKENDS}, "onnx-trt": "zoo.export.trt:open_onnx_trt"},
            description="TensorRT engines beside the validated ONNX bundle (needs an NVIDIA GPU and TensorRT 10 or 11)",
        )
    )


# -- what this machine has ---------------------------------------------------------------------------


def gpu_count() -> int:
    """NVIDIA GPUs the CUDA driver sees (0 without a driver)."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def gpu_identity() -> dict[str, str]:
    """Name and compute capability of GPU 0 (the device engines are built for), from the CUDA driver API."""
    cuda = ctypes.CDLL("libcuda.so.1")
    device, name = ctypes.c_int(0), ctypes.create_string_buffer(256)
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    cuda.cuInit(0)
    cuda.cuDeviceGet(ctypes.byref(device), 0)
    cuda.cuDeviceGetName(name, 256, device)
    cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device)  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
    cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device)  # ..._MINOR
    return {"gpu": name.value.decode(), "compute_capability": f"{major.value}.{minor.value}"}


# The modules the engine path imports; the `trt` extra installs them all.
REQUIRED_MODULES = {"tensorrt": "TensorRT", "polygraphy": "polygraphy", "onnxruntime": "onnxruntime"}


def missing() -> str | None:
    """What this machine lacks for building and running engines, or None."""
    lacking = [label for module, label in REQUIRED_MODULES.items() if importlib.util.find_spec(module) is None]
    problems = [] if gpu_count() > 0 else ["no NVIDIA GPU"]
    if lacking:
        problems.append(f"no {', '.join(lacking)} (pip install 'aigc-zoo[trt]')")
    return " and ".join(problems) or None


def check() -> str | None:
    lacking = missing()
    if lacking is None:
        return None
    return (
        f"TensorRT engines are built on the GPU that runs them, and this machine has {lacking}: "
        f"run `zoo export <model> --target onnx` here, then `zoo build-engine out/<model>/` on the target machine "
        f"(`zoo export <model> --target trt --check-only` reports readiness here)"
    )


@dataclass(frozen=True)
class Features:
    """What the installed TensorRT's Python API offers, found by looking, not by its version string."""

    version: str
    strongly_typed_flag: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED (10.x)
    precision_flags: bool  # BuilderFlag.FP16 and INT8 (deprecated in 10.x, removed in 11.x)
    tf32_flag: bool  # BuilderFlag.TF32

    @property
    def strongly_typed(self) -> bool:
        """Whether networks can be strongly typed: by the flag (10.x), or because nothing else is left (11.x)."""
        return self.strongly_typed_flag or not self.precision_flags


def features(trt) -> Features:
    creation, builder = trt.NetworkDefinitionCreationFlag, trt.BuilderFlag
    return Features(
        version=str(trt.__version__),
        strongly_typed_flag=hasattr(creation, "STRONGLY_TYPED"),
        precision_flags=hasattr(builder, "FP16") and hasattr(builder, "INT8"),
        tf32_flag=hasattr(builder, "TF32"),
    )


def network_settings(found: Features | None, precision: str, tf32: bool) -> dict[str, Any]:
    """How the network and builder are set up for `precision`; `found` None (no TensorRT here)
    describes what TensorRT 10.x and 11.x both do."""
    if found is None:
        return {"network": "strongly typed (STRONGLY_TYPED flag on TensorRT 10.x, the only kind on 11.x)",
                "network_flags": ["STRONGLY_TYPED"], "builder_flags": [], "cleared_flags": [] if tf32 else ["TF32"]}
    if found.strongly_typed:
        network = f"strongly typed ({'STRONGLY_TYPED flag' if found.strongly_typed_flag else 'the only kind'} on TensorRT {found.version})"
        network_flags, builder_flags = (["STRONGLY_TYPED"] if found.strongly_typed_flag else []), []
    else:
        network = f"weakly typed with precision builder flags (TensorRT {found.version} has no strong typing)"
        network_flags, builder_flags = [], list(WEAK_TYPING_FLAGS[precision])
    cleared = ["TF32"] if found.tf32_flag and not tf32 else []
    return {"network": network, "network_flags": network_flags, "builder_flags": builder_flags, "cleared_flags": cleared}


def installed() -> tuple[Any, Features, dict[str, str]]:
    """The tensorrt module, its features and this machine's GPU, for building and loading engines."""
    import tensorrt as trt

    return trt, features(trt), {"tensorrt_version": str(trt.__version__), **gpu_identity()}


_LOGGER = None


def logger(trt):
    """One TensorRT logger per process, with TensorRT's own plugins registered once."""
    global _LOGGER
    if _LOGGER is None:
        _LOGGER = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(_LOGGER, "")
    return _LOGGER


# -- the build plan, as data ---------------------------------------------------------------------------


def onnx_input_shapes(path: Path) -> dict[str, list[int | str]]:
    """Each graph input's dims from the ONNX file: ints, or the symbolic axis name."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {t.name for t in model.graph.initializer}
    return {
        value.name: [d.dim_param if d.dim_param else d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in model.graph.input
        if value.name not in initializers
    }


def axis_ranges(graph: GraphSpec, input_shapes: dict[str, list[int | str]], trt_config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """min/opt/max of every symbolic input axis: "batch" from [trt] (and its flags), the others as
    the graph declares them (`GraphSpec.axis_ranges`: a KV cache from 0 to the context), or fixed
    at their example size when the graph declares no range."""
    axes: dict[str, dict[str, Any]] = {}
    for name, dims in input_shapes.items():
        for dim in dims:
            if not isinstance(dim, str) or dim in axes:
                continue
            if dim == "batch":
                low, mid, high = trt_config["min_batch"], trt_config["opt_batch"], trt_config["max_batch"]
                if not 1 <= low <= mid <= high:
                    raise ConfigError(f"TensorRT batch profile must satisfy 1 <= min ({low}) <= opt ({mid}) <= max ({high}); "
                                      f"fix [trt] or --min-batch/--opt-batch/--max-batch")
                source = "[trt] min/opt/max_batch"
            elif dim in graph.axis_ranges:
                low, mid, high = graph.axis_ranges[dim]
                if not 0 <= low <= mid <= high:
                    raise ConfigError(f"graph '{graph.name}' declares axis '{dim}' as {graph.axis_ranges[dim]}; "
                                      f"it must be (min, opt, max) with 0 <= min <= opt <= max")
                source = "the graph's axis_ranges"
            elif dim in graph.example_axes:
                low = mid = high = graph.example_axes[dim]
                source = "fixed at its example size: the graph declares no range (GraphSpec.axis_ranges)"
            else:
                raise ConfigError(f"input '{name}' has symbolic axis '{dim}' with neither a range nor an example size; "
                                  f"declare it in the GraphSpec's axis_ranges")
            axes[dim] = {"min": int(low), "opt": int(mid), "max": int(high), "source": source}
    return axes


def validation_points(axes: dict[str, dict[str, Any]]) -> list[dict[str, int]]:
    """Where an engine is checked: every axis at its min, every axis at its opt, then each axis at
    its max with the others at their min (two axes at their max together may describe no valid
    input: a cache as long as the context plus a prompt as long as the context)."""
    lowest = {axis: r["min"] for axis, r in axes.items()}
    points = [lowest, {axis: r["opt"] for axis, r in axes.items()}]
    points += [{**lowest, axis: r["max"]} for axis, r in axes.items()]
    unique: list[dict[str, int]] = []
    for point in points:
        if point not in unique:
            unique.append(point)
    return unique


def engine_plan(
    graph: GraphSpec, input_shapes: dict[str, list[int | str]], trt_config: dict[str, Any], precision: str,
    found: Features | None = None,
) -> dict[str, Any]:
    """The builder configuration of one graph: precision route, network, flags, memory, profile per axis."""
    if precision not in PRECISION_ROUTES:
        raise ConfigError(f"TensorRT precision {precision!r} must be one of {', '.join(PRECISION_ROUTES)}")
    axes = axis_ranges(graph, input_shapes, trt_config)
    profile = {
        name: {key: [axes[d][key] if isinstance(d, str) else int(d) for d in dims] for key in ("min", "opt", "max")}
        for name, dims in input_shapes.items()
    }
    return {
        "precision": precision,
        "precision_route": PRECISION_ROUTES[precision],
        **network_settings(found, precision, trt_config["tf32"]),
        "workspace_bytes": int(trt_config["workspace_mb"]) * (1 << 20),
        "axes": axes,
        "profile": profile,
        "validation_points": validation_points(axes),
    }


def timing_cache_path(trt_config: dict[str, Any], tensorrt_version: str, gpu: str, key: str | None = None) -> Path:
    """The timing cache for one TensorRT version and GPU: tactics timed elsewhere do not apply."""
    base = Path(trt_config["timing_cache"]).expanduser() if trt_config["timing_cache"] else cache_root() / "tensorrt" / "timing.cache"
    key = key or re.sub(r"[^a-z0-9.]+", "-", f"trt{tensorrt_version}-{gpu}".lower()).strip("-")
    return base.with_name(f"{base.stem}-{key}{base.suffix}")


def ort_tensorrt_options(plan: dict[str, Any], cache_dir: Path) -> dict[str, str]:
    """ONNX Runtime TensorRT provider options from the same plan as the zoo's own engines: its
    profile, workspace, and engine and timing caches that persist across processes."""
    def shapes(key: str) -> str:
        return ",".join(f"{name}:{'x'.join(str(d) for d in dims[key])}" for name, dims in plan["profile"].items())

    options = {
        "trt_max_workspace_size": str(plan["workspace_bytes"]),
        "trt_fp16_enable": "False",  # onnx-trt runs the fp32 graph as exported
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(cache_dir),
    }
    if plan["axes"]:
        options.update({"trt_profile_min_shapes": shapes("min"), "trt_profile_opt_shapes": shapes("opt"),
                        "trt_profile_max_shapes": shapes("max")})
    return options


# -- readiness and the plan report, without a GPU -------------------------------------------------------


def readiness(path: Path) -> dict[str, Any]:
    """Fold constants, then list operators against TensorRT's documented support and flag known traps."""
    import contextlib
    import io

    import onnx

    try:
        import onnx_graphsurgeon as gs
        from polygraphy.backend.onnx import fold_constants
        from polygraphy.logger import G_LOGGER
    except ImportError:
        raise UnavailableError("the TensorRT readiness report needs polygraphy and onnx-graphsurgeon; pip install 'aigc-zoo[deploy]'") from None

    original = onnx.load(str(path))
    before = len(original.graph.node)
    G_LOGGER.module_severity = G_LOGGER.ERROR  # polygraphy narrates each folding pass on stdout
    with contextlib.redirect_stdout(io.StringIO()):
        folded = fold_constants(original, error_ok=True)
    graph = gs.import_onnx(folded)
    graph.cleanup().toposort()
    counts = Counter(node.op for node in graph.nodes)
    unsupported = sorted(op for op in counts if op in TRT_UNSUPPORTED_OPS)
    undocumented = sorted(op for op in counts if op not in TRT_UNSUPPORTED_OPS and op not in TRT_SUPPORTED_OPS)
    traps = []
    for node in graph.nodes:
        if node.op == "Pad" and node.attrs.get("mode", "constant") in ("reflect", b"reflect"):
            traps.append(
                f"{node.name or 'Pad'}: reflect padding; TensorRT 10 maps it to a reflect-mode slice, older "
                f"parsers accept only constant padding"
            )
        if node.op in ("Conv", "ConvTranspose") and len(node.inputs) > 1 and not isinstance(node.inputs[1], gs.Constant):
            traps.append(
                f"{node.name or node.op}: {node.op} weights are computed at run time (as in modulated convolution); "
                f"older TensorRT parsers require W to be an initializer, and Q/DQ leaves run-time weights unquantized"
            )
        if node.domain not in (None, "", "ai.onnx"):
            traps.append(f"{node.name or node.op}: operator {node.op} of domain {node.domain} is not an ONNX standard operator")
    int64_io = [t.name for t in graph.inputs + graph.outputs if t.dtype == np.int64]
    int64_inner = [
        name for name, t in graph.tensors().items()
        if not isinstance(t, gs.Constant) and t.dtype == np.int64 and name not in int64_io
    ]
    if int64_io:
        traps.append(
            f"int64 graph inputs/outputs ({', '.join(int64_io)}): TensorRT 10 accepts them, TensorRT 8 casts "
            f"int64 down to int32 (clamping values beyond +-2^31)"
        )
    if int64_inner:
        traps.append(f"{len(int64_inner)} int64 intermediate tensors (shape arithmetic, indices) stay int64 only on TensorRT 10")
    return {
        "nodes_before_folding": before,
        "nodes_after_folding": len(graph.nodes),
        "operators": dict(sorted(counts.items())),
        "unsupported": unsupported,
        "undocumented": undocumented,
        "traps": traps,
        "ready": not unsupported,
    }


def qdq_plan(path: Path, export_config: dict[str, Any]) -> dict[str, Any]:
    """The explicit quantization an int8 engine gets: the Q/DQ operators of an already quantized
    graph, or those `--precision int8` with int8_mode "tensorrt" would insert into an fp32 one."""
    from zoo.export import precision as reduced

    summary = reduced.qdq_summary(path)
    if summary["quantize_linear"]:
        return {"state": "quantized", **summary}
    counts = Counter(op for op in reduced.operator_list(path) if op in reduced.TENSORRT_INT8_OPS)
    return {
        "state": "planned",
        "quantized_ops": dict(sorted(counts.items())),
        "activations": "int8, symmetric, per tensor (MinMax on the task's inputs)",
        "weights": "int8, symmetric, per output channel",
        "calibration_examples": export_config["calibration_examples"],
    }


def describe_point(point: dict[str, int]) -> str:
    return ", ".join(f"{axis} {size}" for axis, size in point.items()) or "fixed shapes"


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """The plan of one graph as report lines."""
    lines = [f"    engine from: {plan['precision_route']}",
             f"    network: {plan['network']}; builder flags: {', '.join(plan['builder_flags']) or 'none'}; "
             f"cleared: {', '.join(plan['cleared_flags']) or 'none'}; workspace {plan['workspace_bytes'] >> 20} MiB"]
    for axis, r in plan["axes"].items():
        lines.append(f"    axis {axis}: min {r['min']}, opt {r['opt']}, max {r['max']} ({r['source']})")
    for tensor, shapes in plan["profile"].items():
        lines.append(f"    profile {tensor}: min {shapes['min']}, opt {shapes['opt']}, max {shapes['max']}")
    lines.append("    validated against ONNX Runtime at: " + "; ".join(describe_point(p) for p in plan["validation_points"]))
    quantization = plan.get("quantization")
    if quantization:
        ops = ", ".join(f"{op} x{n}" for op, n in quantization["quantized_ops"].items()) or "none"
        if quantization["state"] == "planned":
            lines.append(f"    Q/DQ: {ops}; activations {quantization['activations']}; weights {quantization['weights']}; "
                         f"{quantization['calibration_examples']} calibration examples")
        else:
            lines.append(f"    Q/DQ: {ops} ({quantization['quantize_linear']} QuantizeLinear, "
                         f"{quantization['dequantize_linear']} DequantizeLinear)")
    return lines


def inspect(bundle: Path, config: dict[str, Any], precision: str) -> Report:
    """`zoo export NAME --target trt --check-only`: readiness and the full engine plan of every graph."""
    manifest = read_manifest(bundle)
    spec = zoo.get_spec(manifest["model"]).with_config(manifest["model_config"])  # the bundle's own shapes
    trt_config = config["trt"]
    found = None
    if importlib.util.find_spec("tensorrt") is not None:
        import tensorrt

        found = features(tensorrt)
    lines = [f"TensorRT plan of {manifest['model']} at {precision} (ONNX opset {manifest['opset']}, {bundle}):"]
    data: dict[str, Any] = {"model": manifest["model"], "bundle": str(bundle), "precision": precision, "graphs": {}}
    for name in manifest["graphs"]:
        path = graph_path(bundle, manifest, name)
        report = readiness(path)
        plan = engine_plan(spec.graph(name), onnx_input_shapes(path), trt_config, precision, found)
        if precision == "int8":
            plan["quantization"] = qdq_plan(path, config["export"])
        report["engine_plan"] = plan
        data["graphs"][name] = report
        verdict = "ready" if report["ready"] else "NOT ready"
        lines.append(
            f"  graph '{name}': {verdict}; {report['nodes_before_folding']} nodes, {report['nodes_after_folding']} after constant folding"
        )
        lines.append("    operators: " + ", ".join(f"{op} x{n}" for op, n in report["operators"].items()))
        if report["unsupported"]:
            lines.append("    unsupported by TensorRT: " + ", ".join(report["unsupported"]))
        if report["undocumented"]:
            lines.append("    not in TensorRT's operator list: " + ", ".join(report["undocumented"]))
        for trap in report["traps"]:
            lines.append(f"    trap: {trap}")
        if not report["traps"]:
            lines.append("    traps: none found (reflect padding, run-time conv weights, int64 tensors)")
        lines += plan_lines(plan)
    key = f"trt{found.version if found else '<TensorRT version>'}-<GPU name>"
    data["timing_cache"] = str(timing_cache_path(trt_config, "", "", key=key))
    data["ready"] = all(g["ready"] for g in data["graphs"].values())
    data["tensorrt"] = dataclasses.asdict(found) if found else None
    data["this_machine"] = missing() or "can build engines"
    lines.append(f"  timing cache: {data['timing_cache']}")
    lines.append(f"this machine: {data['this_machine']}"
                 + (f"; TensorRT {found.version} found" if found else "; the plan is what TensorRT 10.x and 11.x build"))
    return Report("\n".join(lines), data)


# -- building engines (GPU machine) --------------------------------------------------------------------------


def build_engine(onnx_path: Path, plan: dict[str, Any], cache_path: Path, log=print) -> bytes:
    """Parse the ONNX file into a network set up as `plan` says, build a serialized engine; the
    timing cache at `cache_path` is read first and written back after a successful build."""
    import tensorrt as trt

    trt_logger = logger(trt)
    builder = trt.Builder(trt_logger)
    flags = 0
    for name in plan["network_flags"]:
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [" ".join(str(parser.get_error(i)).split()) for i in range(parser.num_errors)]
        raise ZooError(f"TensorRT {trt.__version__}'s ONNX parser rejected {onnx_path.name} ({len(errors)} errors): "
                       + " | ".join(errors) + "; see `zoo export <model> --target trt --check-only`")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan["workspace_bytes"])
    for flag in plan["builder_flags"]:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for flag in plan["cleared_flags"]:
        config.clear_flag(getattr(trt.BuilderFlag, flag))
    profile = builder.create_optimization_profile()
    for name, shapes in plan["profile"].items():
        profile.set_shape(name, shapes["min"], shapes["opt"], shapes["max"])
    if config.add_optimization_profile(profile) < 0:
        raise ZooError(f"TensorRT rejected the optimization profile of {onnx_path.name} ({json.dumps(plan['profile'])}); "
                       f"check [trt] min/opt/max_batch and the graph's axis_ranges")
    use_timing_cache(config, cache_path, log)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ZooError(f"TensorRT could not build an engine from {onnx_path} (see the TensorRT log above)")
    save_timing_cache(config, cache_path, log)
    return bytes(serialized)


def use_timing_cache(config, cache_path: Path, log=print) -> None:
    """Give the builder the timing cache at `cache_path`; an unreadable or mismatched one is
    replaced by an empty cache (and the file rewritten after the build), with a note."""
    data = cache_path.read_bytes() if cache_path.is_file() else b""
    try:
        cache = config.create_timing_cache(data)
    except Exception:
        cache = None
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        if data:
            log(f"zoo: note: the timing cache {cache_path} does not fit this TensorRT and GPU; building without it")
        if not config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False):
            log("zoo: note: TensorRT refused an empty timing cache; building without one")


def save_timing_cache(config, cache_path: Path, log=print) -> None:
    """Write the builder's timing cache back to `cache_path` (atomically), when it has one."""
    cache = config.get_timing_cache()
    if cache is None:
        log(f"zoo: note: TensorRT returned no timing cache after the build; {cache_path} was not updated")
        return
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(cache_path, "--timing-cache") as temporary:
        temporary.write_bytes(bytes(cache.serialize()))


# -- running engines ---------------------------------------------------------------------------------------


class TrtBackend:
    """A TensorRT engine behind the backends' `run(feeds) -> outputs` interface.

    `runner` has Polygraphy's runner interface (`activate`, `infer(feeds) ->
    outputs`, `deactivate`): a `TrtRunner` on the GPU machine. A call larger
    than the profile's max batch is split into chunks of at most that size;
    each chunk's outputs are copied before the next call, because a TrtRunner
    reuses (and resizes in place) its output buffers. Any other axis outside
    the profile is a one-line error, not a TensorRT exception. `close()` (or
    leaving a `with` block) deactivates the runner and frees the engine.
    """

    def __init__(self, runner, graph: GraphSpec, name: str, plan: dict[str, Any], keep: tuple = ()):
        self.runner, self.graph, self.name, self.axes = runner, graph, name, plan["axes"]
        self.max_batch = self.axes.get("batch", {}).get("max")
        self._keep = keep  # the TensorRT runtime and engine must outlive the runner
        self.runner.activate()
        self._active = True

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {t.name: np.ascontiguousarray(feeds[t.name]) for t in self.graph.inputs}
        batch = self._check_profile(feeds)
        if self.max_batch is None or batch is None or batch <= self.max_batch:
            return self._infer(feeds)
        chunks = [self._infer(self._slice(feeds, start, min(start + self.max_batch, batch)))
                  for start in range(0, batch, self.max_batch)]
        results = {}
        for tensor in self.graph.outputs:
            if "batch" not in tensor.shape:
                raise ZooError(f"output '{tensor.name}' of graph '{self.graph.name}' has no batch axis, so a batch of "
                               f"{batch} cannot be split into the engine's max batch {self.max_batch}; rebuild with --max-batch {batch}")
            results[tensor.name] = np.concatenate([chunk[tensor.name] for chunk in chunks], axis=tensor.shape.index("batch"))
        return results

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.runner.infer(feeds)
        return {t.name: np.array(outputs[t.name], copy=True) for t in self.graph.outputs}

    def _slice(self, feeds: dict[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
        sliced = {}
        for tensor in self.graph.inputs:
            array = feeds[tensor.name]
            if "batch" in tensor.shape:
                index = [slice(None)] * array.ndim
                index[tensor.shape.index("batch")] = slice(start, stop)
                array = np.ascontiguousarray(array[tuple(index)])
            sliced[tensor.name] = array
        return sliced

    def _check_profile(self, feeds: dict[str, np.ndarray]) -> int | None:
        """The call's batch size; raise when another axis lies outside the profile."""
        batch = None
        for tensor in self.graph.inputs:
            for axis, size in zip(tensor.shape, feeds[tensor.name].shape):
                if not isinstance(axis, str) or axis not in self.axes:
                    continue
                if axis == "batch":
                    batch = size
                    if size < self.axes[axis]["min"]:
                        raise ZooError(f"a batch of {size} is below the engine's min batch {self.axes[axis]['min']}; "
                                       f"rebuild with --min-batch {size}")
                    continue
                low, high = self.axes[axis]["min"], self.axes[axis]["max"]
                if not low <= size <= high:
                    raise ZooError(
                        f"input '{tensor.name}' has {axis} {size}, outside the engine's profile {low}..{high} "
                        f"({self.axes[axis]['source']}); widen the graph's axis_ranges and rebuild the engine")
        return batch

    def close(self) -> None:
        if getattr(self, "_active", False):
            self._active = False
            self.runner.deactivate()
            self._keep = ()

    def __enter__(self) -> "TrtBackend":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: CUDA may already be gone
            pass


class EngineMismatch(ZooError):
    """An engine file this TensorRT cannot deserialize (another version, another GPU, corrupt)."""


def open_engine(engine_path: Path, graph: GraphSpec, name: str, plan: dict[str, Any]) -> TrtBackend:
    import tensorrt as trt
    from polygraphy.backend.trt import TrtRunner

    runtime = trt.Runtime(logger(trt))
    engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
    if engine is None:
        raise EngineMismatch(f"{engine_path} does not deserialize with TensorRT {trt.__version__}")
    return TrtBackend(TrtRunner(engine), graph, name, plan, keep=(runtime, engine))


def compatibility_problem(entry: dict[str, Any], identity: dict[str, str]) -> str | None:
    """Why an engine recorded in a manifest cannot run here: another TensorRT version or
    another GPU (engines are tied to both), or None."""
    differences = []
    if entry.get("tensorrt_version") != identity["tensorrt_version"]:
        differences.append(f"TensorRT {entry.get('tensorrt_version')}, this machine has {identity['tensorrt_version']}")
    built_for = (entry.get("gpu"), entry.get("compute_capability"))
    if built_for != (identity["gpu"], identity["compute_capability"]):
        differences.append(f"a {built_for[0]} (compute capability {built_for[1]}), this machine has a "
                           f"{identity['gpu']} ({identity['compute_capability']})")
    return "; ".join(differences) or None


def check_engine(engine, reference, graph: GraphSpec, plan: dict[str, Any], trt_config: dict[str, Any], seed: int) -> dict[str, Any]:
    """Engine vs ONNX Runtime on fresh example inputs at every validation point of the plan."""
    precision = plan["precision"]
    parity = Parity(graph, Tolerance(trt_config[f"atol_{precision}"], trt_config["rtol"]), precision)
    for offset, point in enumerate(plan["validation_points"]):
        sizes = dict(point)
        feeds = example_inputs(graph, sizes.pop("batch", 1), seed + offset, sizes)
        parity.add(reference.run(feeds), engine.run(feeds), f" at {describe_point(point)}")
    parity.check(f"the TensorRT {precision} engine and ONNX Runtime", "the engine was not kept")
    return {"points": plan["validation_points"], "outputs": parity.to_json()}


def check_bundle_precision(manifest: dict[str, Any], precision: str) -> None:
    """Engines are built from the ONNX graphs the bundle holds, so its precision must be the engines'."""
    held = manifest.get("precision", "fp32")
    model = manifest.get("model", "<model>")
    if held != precision:
        how = {"fp32": f"zoo export {model} -o out/",
               "fp16": f"zoo export {model} --precision fp16 --data DATA -o out/",
               "int8": f"ZOO_EXPORT_INT8_MODE=tensorrt zoo export {model} --precision int8 --data DATA -o out/"}[precision]
        raise ZooError(f"this bundle holds {held} graphs and TensorRT builds {precision} engines from the {precision} ONNX "
                       f"the zoo validated; make that bundle with `{how}` and build from it")
    if precision == "int8":
        modes = {g.get("reduced_precision", {}).get("int8_mode") for g in manifest["graphs"].values()} - {None}
        if modes - {"tensorrt"}:
            raise ZooError(f"this bundle's int8 graphs were quantized for ONNX Runtime's CPU ({', '.join(sorted(modes))}), "
                           f"not with Q/DQ for TensorRT; export with ZOO_EXPORT_INT8_MODE=tensorrt")


def build_graph_engines(bundle: Path, manifest: dict[str, Any], precision: str, trt_config: dict[str, Any], log=print) -> dict[str, Any]:
    """Build, validate and write one engine per graph of an ONNX bundle; return the manifest's "engines"."""
    check_bundle_precision(manifest, precision)
    trt, found, identity = installed()
    spec = zoo.get_spec(manifest["model"]).with_config(manifest["model_config"])  # the bundle's own shapes
    engines = dict(manifest.get("engines", {}))
    cache_path = timing_cache_path(trt_config, identity["tensorrt_version"], identity["gpu"])
    for name in manifest["graphs"]:
        graph = spec.graph(name)
        onnx_path = graph_path(bundle, manifest, name)
        plan = engine_plan(graph, onnx_input_shapes(onnx_path), trt_config, precision, found)
        engine_path = onnx_path.with_name(f"model-{precision}.plan")
        with atomic_file(engine_path) as temporary:
            temporary.write_bytes(build_engine(onnx_path, plan, cache_path, log))
            with open_engine(temporary, graph, "trt", plan) as engine:
                parity = check_engine(engine, OnnxBackend(onnx_path, graph), graph, plan, trt_config, 4321)
        worst = ", ".join(f"{k} {v['max_abs']:.2e}" for k, v in parity["outputs"].items())
        log(f"{manifest['model']}/{name}: TensorRT {trt.__version__} {precision} engine vs ONNX Runtime at "
            f"{len(plan['validation_points'])} profile points, max abs {worst}: ok")
        engines.setdefault(name, {})[precision] = {
            "file": str(engine_path.relative_to(bundle)),
            "sha256": zoo.file_sha256(engine_path),
            **identity,
            "features": dataclasses.asdict(found),
            "timing_cache": str(cache_path),
            "plan": plan,
            "parity": parity,
        }
    return engines


def export(job: zoo.ExportJob) -> dict[str, Any]:
    """The ONNX bundle at the job's precision (validated against PyTorch, reduced precisions by the
    task metric; int8 as Q/DQ for TensorRT), then engines built from it."""
    from zoo.export import onnx as onnx_target

    if job.precision == "int8" and job.export_config["int8_mode"] != "tensorrt":
        config = {**job.config, "export": {**job.export_config, "int8_mode": "tensorrt"}}
        job = dataclasses.replace(job, config=config)
    entries = onnx_target.export(job)
    manifest = {"model": job.spec.name, "precision": job.precision, **entries}
    entries["engines"] = build_graph_engines(job.out_dir, manifest, job.precision, job.target_config, job.log)
    return entries


def build_engines(bundle: Path, config: dict[str, Any], precision: str = "fp32", log=print) -> list[str]:
    """`zoo build-engine BUNDLE`: engines for an existing ONNX bundle, recorded in its model.json."""
    bundle = Path(bundle)
    if not (bundle / "model.json").is_file():
        raise ZooError(f"{bundle} is not an exported bundle (no model.json); make one with `zoo export <model> --target onnx`")
    manifest = read_manifest(bundle)
    check_bundle_precision(manifest, precision)
    reason = check()
    if reason:
        raise UnavailableError(reason.replace("<model>", manifest.get("model", "<model>")))
    manifest["engines"] = build_graph_engines(bundle, manifest, precision, config["trt"], log)
    with atomic_file(bundle / "model.json") as temporary:
        temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    return [f"wrote {precision} engines into {bundle}/ and recorded them in model.json"]


def require_engines(name: str) -> None:
    reason = missing()
    if reason:
        raise UnavailableError(f"backend '{name}' runs TensorRT engines and this machine has {reason}; use --backend onnx")


def engine_backend(bundle: Path, graph: GraphSpec, precision: str, name: str, trt_config: dict[str, Any]) -> TrtBackend:
    """A `precision` engine of the cached bundle's graph, built (and validated) on first use, and
    rebuilt, with a one-line note, when it was built for another TensorRT or GPU."""
    require_engines(name)
    note = lambda line: print(line if line.startswith("zoo:") else f"zoo: {line}", file=sys.stderr)  # noqa: E731
    manifest = read_manifest(bundle)
    entry = manifest.get("engines", {}).get(graph.name, {}).get(precision)
    if entry is not None:
        problem = compatibility_problem(entry, installed()[2])
        if problem is None:
            try:
                return open_engine(_engine_file(bundle, graph, precision, entry), graph, name, entry["plan"])
            except (EngineMismatch, FileNotFoundError) as exc:
                problem = str(exc)
        note(f"zoo: note: rebuilding the {precision} TensorRT engine of {manifest['model']}/{graph.name}: it was built for {problem}")
    build_engines(bundle, {"trt": trt_config}, precision, note)
    entry = read_manifest(bundle)["engines"][graph.name][precision]
    return open_engine(_engine_file(bundle, graph, precision, entry), graph, name, entry["plan"])


def _engine_file(bundle: Path, graph: GraphSpec, precision: str, entry: dict[str, Any]) -> Path:
    return contained(Path(bundle), entry["file"], f"the {precision} engine of graph '{graph.name}'")


def open_backend(request: BackendRequest) -> TrtBackend:
    """`--backend trt[-fp16|-int8]`: an engine of the cached export at that precision (int8: Q/DQ for TensorRT)."""
    require_engines(request.name)  # before exporting anything to the cache
    config = request.config()
    bundle = request.bundle(request.precision, int8_mode="tensorrt" if request.precision == "int8" else None)
    return engine_backend(bundle, request.graph, request.precision, request.name, config["trt"])


def open_onnx_trt(request: BackendRequest) -> OnnxBackend:
    """`--backend onnx-trt`: ONNX Runtime's TensorRT provider on the cached fp32 export, with the profile,
    workspace and caches of the same plan as the zoo's own engines; a fallback to another provider
    fails (or warns: [trt] provider_fallback = "warn")."""
    trt_config = request.config()["trt"]
    bundle = request.bundle()
    path = graph_path(bundle, read_manifest(bundle), request.graph.name)
    plan = engine_plan(request.graph, onnx_input_shapes(path), trt_config, "fp32")
    options = ort_tensorrt_options(plan, cache_root() / "tensorrt" / "onnxruntime")
    Path(options["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
    providers = [("TensorrtExecutionProvider", options), "CUDAExecutionProvider", "CPUExecutionProvider"]
    return OnnxBackend(path, request.graph, request.name, providers=providers, on_fallback=trt_config["provider_fallback"])
