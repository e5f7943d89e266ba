"""The TensorRT target: engines built with the TensorRT Python API from the
validated ONNX bundle, and a readiness report that needs no GPU.

Engines are specific to a GPU and a TensorRT version, so they are built on
the machine that runs them: `zoo export NAME --target trt` there, or
`zoo export NAME --target onnx` anywhere and `zoo build-engine BUNDLE/` on
the GPU machine. What can be known without a GPU (operators against the
ONNX operators TensorRT documents as supported, known traps, the optimization
profile and builder flags) comes from `zoo export NAME --target trt --check-only`.
"""

from __future__ import annotations

import ctypes
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

import zoo
from zoo.errors import ConfigError, UnavailableError, ValidationError, ZooError
from zoo.exporting import Report, cache_root
from zoo.bundles import contained, graph_path, read_manifest
from zoo.files import atomic_file
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
    zoo.Setting("max_batch", 64, "largest batch of the optimization profile", flag=True),
    zoo.Setting("workspace_mb", 2048, "builder workspace memory pool, MiB", flag=True),
    zoo.Setting("timing_cache", "", "timing cache reused across builds; \"\" means <cache dir>/tensorrt/timing.cache", flag=True),
    zoo.Setting("calibration_batches", 8, "int8 calibration batches of opt_batch inputs"),
    zoo.Setting("atol_fp32", 1e-3, "engine vs ONNX Runtime tolerance of fp32 engines"),
    zoo.Setting("atol_fp16", 5e-2, "... of fp16 engines"),
    zoo.Setting("atol_int8", 0.25, "... of int8 engines"),
)
PRECISION_FLAGS = {"fp32": [], "fp16": ["FP16"], "int8": ["INT8", "FP16"]}  # int8 falls back to fp16, not fp32


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
            backends={
                "trt": "zoo.export.trt:open_backend",
                "trt-fp16": "zoo.export.trt:open_backend",
                "trt-int8": "zoo.export.trt:open_backend",
                "onnx-trt": "zoo.export.trt:open_onnx_trt",
            },
            description="TensorRT engines beside the validated ONNX bundle (needs an NVIDIA GPU and TensorRT)",
        )
    )


def open_backend(request: BackendRequest) -> "TrtBackend":
    """`--backend trt[-fp16|-int8]`: an engine of the cached ONNX export, built and validated on first use."""
    return engine_backend(request.bundle(), request.graph, request.precision, request.name, request.config()["trt"])


def open_onnx_trt(request: BackendRequest) -> OnnxBackend:
    """`--backend onnx-trt`: ONNX Runtime's TensorRT execution provider on the cached ONNX export."""
    providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    return OnnxBackend(request.graph_file(request.bundle()), request.graph, request.name, providers=providers)


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


def missing() -> str | None:
    """What this machine lacks for building engines, or None."""
    try:
        import tensorrt  # noqa: F401

        has_trt = True
    except ImportError:
        has_trt = False
    has_gpu = gpu_count() > 0
    if has_trt and has_gpu:
        return None
    if not has_trt and not has_gpu:
        return "no NVIDIA GPU and no TensorRT"
    return "no NVIDIA GPU" if has_trt else "no TensorRT (pip install 'aigc-zoo[trt]')"


def check() -> str | None:
    lacking = missing()
    if lacking is None:
        return None
    return (
        f"TensorRT engines are built on the GPU that runs them, and this machine has {lacking}: "
        f"run `zoo export <model> --target onnx` here, then `zoo build-engine out/<model>/` on the target machine "
        f"(`zoo export <model> --target trt --check-only` reports readiness here)"
    )


# -- the build configuration, as data -------------------------------------------------------------------


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


def engine_plan(
    input_shapes: dict[str, list[int | str]], trt: dict[str, Any], precision: str, axis_sizes: dict[str, int] | None = None
) -> dict[str, Any]:
    """The builder configuration for one graph: optimization profile, flags, memory, calibration.

    The "batch" axis spans [trt] min_batch/opt_batch/max_batch; any other
    symbolic axis spans 1..its example size (`axis_sizes`), tuned for that size.
    """
    low, mid, high = trt["min_batch"], trt["opt_batch"], trt["max_batch"]
    if not 1 <= low <= mid <= high:
        raise ConfigError(f"TensorRT batch profile must satisfy 1 <= min ({low}) <= opt ({mid}) <= max ({high}); fix [trt] or the flags")
    if precision not in PRECISION_FLAGS:
        raise ConfigError(f"TensorRT precision {precision!r} must be one of {', '.join(PRECISION_FLAGS)}")
    axis_sizes = axis_sizes or {}
    profile = {}
    for name, dims in input_shapes.items():
        shapes: dict[str, list[int]] = {"min": [], "opt": [], "max": []}
        for dim in dims:
            if dim == "batch":
                sizes = (low, mid, high)
            elif isinstance(dim, str) or dim == 0:
                if dim not in axis_sizes:
                    raise ConfigError(f"input '{name}' has symbolic axis '{dim}' with no example size; declare it in the GraphSpec's example_axes")
                sizes = (1, axis_sizes[dim], axis_sizes[dim])
            else:
                sizes = (dim, dim, dim)
            for key, size in zip(("min", "opt", "max"), sizes):
                shapes[key].append(int(size))
        profile[name] = shapes
    plan = {
        "precision": precision,
        "flags": list(PRECISION_FLAGS[precision]),
        "workspace_bytes": int(trt["workspace_mb"]) * (1 << 20),
        "profile": profile,
        "timing_cache": str(timing_cache_path(trt)),
    }
    if precision == "int8":
        plan["calibration"] = {"algorithm": "IInt8EntropyCalibrator2", "batches": trt["calibration_batches"], "batch_size": mid}
    return plan


def timing_cache_path(trt: dict[str, Any]) -> Path:
    return Path(trt["timing_cache"]).expanduser() if trt["timing_cache"] else cache_root() / "tensorrt" / "timing.cache"


# -- readiness, without a GPU ------------------------------------------------------------------------


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
                f"older TensorRT parsers require W to be an initializer and int8 calibration cannot quantize them"
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


def inspect(bundle: Path, config: dict[str, Any], precision: str) -> Report:
    """`zoo export NAME --target trt --check-only`: readiness and engine plan of every graph."""
    manifest = read_manifest(bundle)
    spec = zoo.get_spec(manifest["model"]).with_config(manifest["model_config"])  # the bundle's own shapes
    lines = [f"TensorRT readiness of {manifest['model']} (ONNX opset {manifest['opset']}, {bundle}):"]
    data: dict[str, Any] = {"model": manifest["model"], "bundle": str(bundle), "graphs": {}}
    lacking = missing()
    data["this_machine"] = lacking or "can build engines"
    for name, entry in manifest["graphs"].items():
        path = graph_path(bundle, manifest, name)
        report = readiness(path)
        report["engine_plan"] = engine_plan(onnx_input_shapes(path), config["trt"], precision, spec.graph(name).example_axes)
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
        plan = report["engine_plan"]
        for tensor, shapes in plan["profile"].items():
            lines.append(f"    profile {tensor}: min {shapes['min']}, opt {shapes['opt']}, max {shapes['max']}")
        lines.append(f"    builder flags: {', '.join(plan['flags']) or 'none (fp32)'}; workspace {plan['workspace_bytes'] >> 20} MiB")
    data["ready"] = all(g["ready"] for g in data["graphs"].values())
    lines.append(f"this machine: {data['this_machine']}")
    return Report("\n".join(lines), data)


# -- building and validating engines (GPU machine) ----------------------------------------------------------


def make_calibrator(trt, batches: list[dict[str, np.ndarray]], cache: Path):
    """An IInt8EntropyCalibrator2 fed with `batches` (numpy feeds) through device buffers."""
    from polygraphy import cuda

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self._batches = iter(batches)
            self._buffers: dict[str, Any] = {}
            self._size = len(next(iter(batches[0].values())))

        def get_batch_size(self):
            return self._size

        def get_batch(self, names):
            feeds = next(self._batches, None)
            if feeds is None:
                return None
            pointers = []
            for name in names:
                array = np.ascontiguousarray(feeds[name])
                if name not in self._buffers:
                    self._buffers[name] = cuda.DeviceArray(shape=array.shape, dtype=array.dtype)
                self._buffers[name].copy_from(array)
                pointers.append(self._buffers[name].ptr)
            return pointers

        def read_calibration_cache(self):
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data):
            cache.write_bytes(bytes(data))

    return Calibrator()


def build_engine(onnx_path: Path, plan: dict[str, Any], calibrator=None) -> bytes:
    """Parse the ONNX file, apply `plan`, build a serialized engine; the timing cache is read and updated."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:  # TensorRT 10 networks are always explicit-batch
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ZooError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors[:300]}; see `zoo export <model> --target trt --check-only`")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan["workspace_bytes"])
    for flag in plan["flags"]:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    profile = builder.create_optimization_profile()
    for name, shapes in plan["profile"].items():
        profile.set_shape(name, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(profile)
    if calibrator is not None:
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)
    cache_path = Path(plan["timing_cache"])
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ZooError(f"TensorRT could not build an engine from {onnx_path} (see the TensorRT log above)")
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(cache_path, "--timing-cache") as temporary:
        temporary.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


class TrtBackend:
    """A TensorRT engine behind the backends' `run(feeds) -> outputs` interface (polygraphy's runner)."""

    def __init__(self, engine_path: Path, graph: GraphSpec, name: str = "trt"):
        reason = missing()
        if reason:
            raise UnavailableError(f"backend '{name}' runs TensorRT engines and this machine has {reason}; use --backend onnx")
        import tensorrt as trt
        from polygraphy.backend.trt import TrtRunner

        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if engine is None:
            raise ZooError(f"{engine_path} does not deserialize with TensorRT {trt.__version__}; rebuild it with `zoo build-engine`")
        self.name, self.graph, self.engine = name, graph, engine
        self.runner = TrtRunner(engine)
        self.runner.activate()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.runner.infer({t.name: np.ascontiguousarray(feeds[t.name]) for t in self.graph.inputs})
        return {t.name: np.asarray(outputs[t.name]) for t in self.graph.outputs}


def engine_backend(bundle: Path, graph: GraphSpec, precision: str, name: str, trt_config: dict[str, Any]) -> TrtBackend:
    """A `precision` engine of the cached ONNX bundle's graph, built (and validated) on first use."""
    reason = missing()
    if reason:
        raise UnavailableError(f"backend '{name}' runs TensorRT engines and this machine has {reason}; use --backend onnx")
    manifest = read_manifest(bundle)
    engine = manifest.get("engines", {}).get(graph.name, {}).get(precision)
    if engine is None:
        build_engines(bundle, {"trt": trt_config}, precision)
        engine = read_manifest(bundle)["engines"][graph.name][precision]
    return TrtBackend(contained(Path(bundle), engine["file"], f"the {precision} engine of graph '{graph.name}'"), graph, name)


def profile_batches(input_shapes: dict[str, list[int | str]], trt: dict[str, Any]) -> list[int]:
    """The batch sizes an engine is validated at: the profile's min, opt and max, or 1 for a static batch."""
    if any("batch" in dims for dims in input_shapes.values()):
        return sorted({trt["min_batch"], trt["opt_batch"], trt["max_batch"]})
    return [1]


def validate_engine(engine_path: Path, onnx_path: Path, graph: GraphSpec, batches: list[int], atol: float, seed: int) -> dict[str, Any]:
    """Engine vs ONNX Runtime on fresh example inputs at each of `batches`."""
    engine, reference = TrtBackend(engine_path, graph), OnnxBackend(onnx_path, graph)
    report = {"atol": atol, "batch_sizes": batches, "max_abs": {}}
    for batch in batches:
        feeds = example_inputs(graph, batch, seed + batch)
        expected, actual = reference.run(feeds), engine.run(feeds)
        for name, value in expected.items():
            error = float(np.abs(actual[name].astype(np.float64) - value.astype(np.float64)).max(initial=0.0))
            report["max_abs"][name] = max(report["max_abs"].get(name, 0.0), error)
            if actual[name].shape != value.shape or error > atol:
                raise ValidationError(
                    f"TensorRT engine {engine_path.name} differs from ONNX Runtime on '{name}' at batch {batch} "
                    f"(max abs {error:.3g}, tolerance {atol:g}); the engine was not kept"
                )
    return report


def gpu_name() -> str:
    """The name of GPU 0, from the CUDA driver API (the device engines are built on)."""
    cuda = ctypes.CDLL("libcuda.so.1")
    device, name = ctypes.c_int(0), ctypes.create_string_buffer(256)
    cuda.cuInit(0)
    cuda.cuDeviceGet(ctypes.byref(device), 0)
    cuda.cuDeviceGetName(name, 256, device)
    return name.value.decode()


def build_graph_engines(bundle: Path, manifest: dict[str, Any], precision: str, trt_config: dict[str, Any], log=print) -> dict[str, Any]:
    """Build, validate and write one engine per graph of an ONNX bundle; return the manifest's "engines"."""
    import tensorrt as trt

    spec = zoo.get_spec(manifest["model"]).with_config(manifest["model_config"])  # the bundle's own shapes
    engines = dict(manifest.get("engines", {}))
    for name in manifest["graphs"]:
        graph = spec.graph(name)
        onnx_path = graph_path(bundle, manifest, name)
        shapes = onnx_input_shapes(onnx_path)
        plan = engine_plan(shapes, trt_config, precision, graph.example_axes)
        calibrator = None
        if precision == "int8":
            size = plan["calibration"]["batch_size"]
            batches = [example_inputs(graph, size, 10_000 + i) for i in range(plan["calibration"]["batches"])]
            calibrator = make_calibrator(trt, batches, onnx_path.with_name(f"model-{precision}.calib"))
        engine_path = onnx_path.with_name(f"model-{precision}.plan")
        with atomic_file(engine_path) as temporary:
            temporary.write_bytes(build_engine(onnx_path, plan, calibrator))
            batches = profile_batches(shapes, trt_config)
            parity = validate_engine(temporary, onnx_path, graph, batches, trt_config[f"atol_{precision}"], 4321)
        log(f"{manifest['model']}/{name}: TensorRT {precision} engine vs ONNX Runtime max abs "
            + ", ".join(f"{k} {v:.2e}" for k, v in parity["max_abs"].items()) + f" (atol {parity['atol']:g}): ok")
        engines.setdefault(name, {})[precision] = {
            "file": str(engine_path.relative_to(bundle)),
            "sha256": zoo.file_sha256(engine_path),
            "tensorrt_version": trt.__version__,
            "gpu": gpu_name(),
            "plan": plan,
            "parity": parity,
        }
    return engines


def export(job: zoo.ExportJob) -> dict[str, Any]:
    """The ONNX bundle (validated against PyTorch), then engines built from it."""
    import dataclasses

    from zoo.export import onnx as onnx_target

    entries = onnx_target.export(dataclasses.replace(job, precision="fp32"))
    manifest = {"model": job.spec.name, **entries}
    entries["engines"] = build_graph_engines(job.out_dir, manifest, job.precision, job.target_config, job.log)
    return entries


def build_engines(bundle: Path, config: dict[str, Any], precision: str = "fp32", log=print) -> list[str]:
    """`zoo build-engine BUNDLE`: engines for an existing ONNX bundle, recorded in its model.json."""
    trt_config = config["trt"]
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    reason = check()
    if reason:
        raise UnavailableError(reason.replace("<model>", manifest.get("model", "<model>")))
    lines: list[str] = []
    manifest["engines"] = build_graph_engines(bundle, manifest, precision, trt_config, lines.append)
    with atomic_file(bundle / "model.json") as temporary:
        temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    return lines + [f"wrote {precision} engines into {bundle}/ and recorded them in model.json"]
