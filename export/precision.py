"""Reduced-precision ONNX graphs: int8 with ONNX Runtime quantization, fp16
with onnxconverter-common, both validated by the task's own metric.

Only the operator types that int8 makes faster on a CPU are quantized
(MatMul, Gemm, LSTM); int8 convolutions measured 2-4x slower than fp32 on
this machine's CPU, so Conv and ConvTranspose stay float. Quantization is
static (calibrated on the model's own inputs, MatMul and Gemm) or dynamic
(activation ranges computed per call, MatMul, Gemm as MatMul, and LSTM). "auto" follows one
rule, so the same model always gives the same graph: dynamic when the graph
has LSTM nodes (the static quantizer has none), static otherwise. Whether
int8 is kept depends only on the task-metric gate, never on a timing; the
speed-up is measured and reported, with a warning when it is a slow-down.

`int8_mode = "tensorrt"` makes the graph TensorRT builds int8 engines from
(explicit quantization): QuantizeLinear/DequantizeLinear pairs around every
Conv, ConvTranspose, MatMul and Gemm, int8 symmetric activations (per
tensor) and weights (per channel), calibrated on the task's own inputs
(those its quality metric feeds the model) and validated by that metric on
ONNX Runtime. Its speed is TensorRT's, not this CPU's, so it is not timed.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from zoo.boundary import check_interrupted, one_line
from zoo.errors import UnavailableError, ValidationError, ZooError
from zoo.parity import Tolerance, compare
from zoo.runtime import OnnxBackend
from zoo.specs import GraphSpec, ModelSpec
from zoo.tasks import Quality, quality_function
from zoo.tensors import example_inputs

INT8_OPS = ("MatMul", "Gemm", "LSTM")
RECURRENT_OPS = ("GRU", "LSTM", "RNN")
STATIC_INT8_OPS = ("MatMul", "Gemm")  # ONNX Runtime's static quantizer has no LSTM
TENSORRT_INT8_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")  # what TensorRT runs in int8 from Q/DQ
INT8_MODES = ("auto", "dynamic", "static", "tensorrt")
# Its dynamic quantizer rewrites a Gemm as MatMul + Add and quantizes the MatMul, when asked for MatMul.
DYNAMIC_INT8_OPS = ("MatMul", "LSTM")
INT8_RULE = "auto: dynamic (Gemm and MatMul as MatMulInteger, LSTM) when the graph has LSTM nodes, else static (MatMul, Gemm, calibrated)"
TIMING_BATCH = 8
TIMING_RUNS = 30
USE_FP32 = "use fp32 instead: `zoo export --precision fp32`, or `--backend onnx` for zoo run, eval and bench"


def operator_list(path: Path) -> list[str]:
    """The operator type of every node of a graph, repeats included."""
    import onnx

    return [node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node]


def operator_types(path: Path) -> set[str]:
    return set(operator_list(path))


def quantizable(path: Path, mode: str = "auto") -> list[str]:
    """The operator types present in a graph that int8 `mode` quantizes."""
    present = operator_types(path)
    return [op for op in (TENSORRT_INT8_OPS if mode == "tensorrt" else INT8_OPS) if op in present]


def check_int8_applies(spec: ModelSpec, graph_files: dict[str, Path], mode: str = "auto") -> None:
    """Refuse int8 for a model none of whose graphs int8 would change."""
    if mode not in INT8_MODES:
        raise ZooError(f"export.int8_mode {mode!r} must be one of {', '.join(INT8_MODES)}")
    if mode == "tensorrt" and not any(quantizable(path, mode) for path in graph_files.values()):
        raise UnavailableError(
            f"int8 does not apply to '{spec.name}': its graphs have no {', '.join(TENSORRT_INT8_OPS)} nodes for "
            f"TensorRT to run in int8; export it with --precision fp16 or fp32"
        )
    if not any(quantizable(path, mode) for path in graph_files.values()):
        raise UnavailableError(
            f"int8 does not apply to '{spec.name}': its graphs have no {', '.join(INT8_OPS)} nodes, the only operators "
            f"int8 makes faster on CPU (int8 Conv/ConvTranspose run 2-4x slower than fp32); " + USE_FP32
        )


@contextlib.contextmanager
def _quantizer_input(path: Path, out: Path, failure: str):
    """The graph to hand ONNX Runtime's quantizer: its pre-quantization pass (shape inference,
    folding) in a file beside `out`, removed afterwards, or `path` itself when the pass cannot
    run (it is an optimisation). A quantizer exception becomes the one-line `failure`, with
    "{cause}" replaced by its first words."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = out.with_name(out.stem + ".pre.onnx")
    try:
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
    except Exception as exc:
        check_interrupted(exc)
        prepared = path
    try:
        yield prepared
    except Exception as exc:
        check_interrupted(exc)
        raise ZooError(failure.replace("{cause}", one_line(exc)[:200])) from None
    finally:
        if prepared != path and prepared.exists():
            prepared.unlink()


def quantize_for_tensorrt(path: Path, out: Path, graph: GraphSpec, batches: list[dict[str, np.ndarray]]) -> list[str]:
    """Write the explicitly quantized (Q/DQ) graph TensorRT builds int8 engines from; return the quantized op types."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    ops = quantizable(path, "tensorrt")
    failure = f"ONNX Runtime could not quantize graph '{graph.name}' for TensorRT ({{cause}}); export with --precision fp16"
    with _quantizer_input(path, out, failure) as prepared:
        quantize_static(
            str(prepared), str(out), _Feeds(batches), quant_format=QuantFormat.QDQ, op_types_to_quantize=ops,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            # TensorRT's explicit quantization: symmetric int8 (zero point 0) for activations and weights;
            # biases stay float (TensorRT quantizes and fuses them itself, it takes no int32 DequantizeLinear)
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
        )
    return ops


def qdq_summary(path: Path) -> dict[str, Any]:
    """What an explicitly quantized graph holds: Q/DQ nodes and the int8-capable operators they feed."""
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    dequantized = {node.output[0] for node in nodes if node.op_type == "DequantizeLinear"}
    fed: dict[str, int] = {}
    for node in nodes:
        if node.op_type in TENSORRT_INT8_OPS and any(i in dequantized for i in node.input):
            fed[node.op_type] = fed.get(node.op_type, 0) + 1
    return {
        "quantize_linear": sum(node.op_type == "QuantizeLinear" for node in nodes),
        "dequantize_linear": sum(node.op_type == "DequantizeLinear" for node in nodes),
        "quantized_ops": dict(sorted(fed.items())),
    }


class _Recorder:
    """A backend that records what the task feeds it, for calibration."""

    def __init__(self, backend, rows: int):
        self.backend, self.rows, self.feeds = backend, rows, []
        self.name, self.graph = backend.name, backend.graph

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if sum(len(next(iter(f.values()))) for f in self.feeds) < self.rows:
            self.feeds.append({k: np.array(v, copy=True) for k, v in feeds.items()})
        return self.backend.run(feeds)


def task_calibration(job, graph: GraphSpec, fp32: Path) -> tuple[list[dict[str, np.ndarray]], str]:
    """Calibration inputs for int8: what the task's quality metric feeds the main graph (real
    digits for a classifier, real text for a language model, episode observations for a
    policy), or the graph's declared example inputs for auxiliary graphs."""
    rows = job.export_config["calibration_examples"]
    if graph.name == job.spec.graphs[0].name and quality_function(job.spec.task) is not None:
        recorder = _Recorder(OnnxBackend(fp32, graph), rows)
        from zoo.data import data_root

        data = data_root(job.options.get("data"))
        measure_quality(job.spec, recorder, data, rows, job.model.zoo_weights.path, job.variant)
        if recorder.feeds:
            return recorder.feeds, f"{sum(len(next(iter(f.values()))) for f in recorder.feeds)} inputs the task's quality metric feeds the model"
    return calibration_batches(graph, rows, job.export_config["seed"] + 7), f"{rows} example inputs drawn as the graph declares them"


class _Feeds:
    """onnxruntime.quantization.CalibrationDataReader over a list of feed dicts."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        self._batches = iter(batches)

    def get_next(self):
        return next(self._batches, None)


def calibration_batches(graph: GraphSpec, examples: int, seed: int, batch: int = 16) -> list[dict[str, np.ndarray]]:
    """Inputs drawn as the graph declares them (for generators these are the real input distribution)."""
    return [example_inputs(graph, min(batch, examples - start), seed + start) for start in range(0, examples, batch)]


def quantize_graph(path: Path, out: Path, graph: GraphSpec, mode: str, config: dict[str, Any]) -> None:
    """Write an int8 version of the fp32 graph `path` to `out` ("dynamic" or "static")."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    ops = quantizable(path)
    failure = f"ONNX Runtime could not quantize graph '{graph.name}' ({mode}: {{cause}}); export with --precision fp32"
    with _quantizer_input(path, out, failure) as prepared:
        if mode == "dynamic":
            dynamic_ops = sorted({"MatMul" if op == "Gemm" else op for op in ops} & set(DYNAMIC_INT8_OPS))
            quantize_dynamic(str(prepared), str(out), op_types_to_quantize=dynamic_ops, weight_type=QuantType.QInt8)
        else:
            static_ops = [op for op in ops if op in STATIC_INT8_OPS]
            reader = _Feeds(calibration_batches(graph, config["calibration_examples"], config["seed"] + 7))
            quantize_static(
                str(prepared), str(out), reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=static_ops,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            )


def check_prerequisites(precision: str) -> None:
    """Fail at once, not after minutes of export work, when a package the precision needs is missing."""
    needs = {"fp16": ("onnxconverter_common", "onnxconverter-common"), "int8": ("onnxruntime.quantization", "onnxruntime")}
    if precision not in needs:
        return
    module, package = needs[precision]
    try:
        importlib.import_module(module)
    except ImportError:
        raise UnavailableError(f"--precision {precision} needs {package}, which is not installed: pip install {package}") from None


def convert_fp16(path: Path, out: Path, label: str, keep_io_types: bool = True) -> None:
    """fp16 weights and activations; inputs and outputs stay float32 when `keep_io_types`."""
    import warnings

    import onnx

    from onnxconverter_common import float16

    model = onnx.load(str(path))
    blocked = list(float16.DEFAULT_OP_BLOCK_LIST)
    if {node.op_type for node in model.graph.node} & set(RECURRENT_OPS):
        # ONNX Runtime 1.32's full optimization segfaults on float16 Transposes around GRU/LSTM
        # (measured: blocking Transpose alone makes the fp16 GRU and LSTM language models load).
        blocked.append("Transpose")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one warning per weight truncated to fp16's range
        converted = float16.convert_float_to_float16(separate_consumed_outputs(model), keep_io_types=keep_io_types,
                                                     op_block_list=blocked)
    onnx.save(converted, str(out))
    problem = onnx_runtime_load_problem(out)
    if problem:
        raise UnavailableError(f"the fp16 conversion of {label} does not load in ONNX Runtime ({problem}); export it with --precision fp32")


def onnx_runtime_load_problem(path: Path) -> str | None:
    """Why ONNX Runtime's CPU provider cannot load `path` (None when it can).

    The load runs in a child process: ONNX Runtime 1.32's full graph optimization
    crashed the process (segmentation fault) on fp16 GRU/LSTM graphs before their
    Transposes were kept float32; a crash must refuse the export, not kill it."""
    import subprocess
    import sys

    code = "import sys, onnxruntime as ort; ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])"
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    if result.returncode < 0:
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__} crashes with signal {-result.returncode} optimizing it"
    if result.returncode:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        return " ".join((lines[-1] if lines else f"exit status {result.returncode}").split())[:200]
    return None


def separate_consumed_outputs(model):
    """Give graph outputs that other nodes also read an Identity of their own.

    onnxconverter-common casts a kept-float32 output in place, so a node that
    reads the same tensor would see float32 beside float16 operands (an
    invalid graph, as with a VAE decoder returning both logits and an image).
    """
    from onnx import helper

    outputs = {o.name for o in model.graph.output}
    consumed = {name for node in model.graph.node for name in node.input} & outputs
    for name in consumed:
        internal = f"{name}__internal"
        for node in model.graph.node:
            node.output[:] = [internal if o == name else o for o in node.output]
            node.input[:] = [internal if i == name else i for i in node.input]
        model.graph.node.append(helper.make_node("Identity", [internal], [name], name=f"{name}__output"))
    return model


def fastest_ms(backends: dict[str, OnnxBackend], graph: GraphSpec, runs: int = TIMING_RUNS) -> dict[str, float]:
    """Fastest of `runs` calls of each backend at batch TIMING_BATCH, in milliseconds.

    The backends take turns, one call each per round, and the fastest call counts: other
    processes on a busy machine only ever add time, so the minimum is the figure that
    contention disturbs least (medians swung 2x between runs on a loaded 2-core machine)."""
    feeds = example_inputs(graph, TIMING_BATCH, seed=0)
    times: dict[str, list[float]] = {name: [] for name in backends}
    for backend in backends.values():
        backend.run(feeds)
    for _ in range(runs):
        for name, backend in backends.items():
            start = time.perf_counter()
            backend.run(feeds)
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: min(values) for name, values in times.items()}


def measure_quality(spec: ModelSpec, backend: OnnxBackend, data: Path, examples: int, weights: Path | None = None,
                    variant: str | None = None) -> Quality:
    """The task's `quality` of `backend`; `weights` is the file the model came from (a language model's tokenizer
    lies beside it) and `variant` its weights variant (a classifier variant is scored on its own data set)."""
    quality = quality_function(spec.task)
    if quality is None:
        raise UnavailableError(
            f"reduced precision needs a task metric to validate with, and task '{spec.task}' defines no `quality`; "
            f"export '{spec.name}' with --precision fp32"
        )
    model = f"{spec.name}:{variant}" if variant else spec.name
    return quality(spec, backend, {"examples": examples, "data": data, "model": model, "weights": weights})


def reduce_graph(job, graph: GraphSpec, path: Path) -> dict[str, Any]:
    """Replace the validated fp32 graph at `path` by its `job.precision` version, in place.

    Returns the manifest's "precision" entry: what was converted, the
    timings that chose the int8 mode, and the task metric before and after.
    """
    precision = job.precision
    fp32 = path.with_name("model.fp32.onnx")
    path.rename(fp32)
    entry: dict[str, Any] = {"precision": precision}
    try:
        if precision == "fp16":
            convert_fp16(fp32, path, f"'{job.spec.name}' graph '{graph.name}'")
            entry["io_types"] = "float32"
        elif job.export_config["int8_mode"] == "tensorrt" and quantizable(fp32, "tensorrt"):
            batches, source = task_calibration(job, graph, fp32)
            ops = quantize_for_tensorrt(fp32, path, graph, batches)
            entry.update({"int8_mode": "tensorrt", "quantized_ops": ops, "calibration": source, "qdq": qdq_summary(path)})
            job.log(f"{job.spec.name}/{graph.name}: int8 Q/DQ for TensorRT on {', '.join(ops)}, calibrated on {source}")
        elif not quantizable(fp32, job.export_config["int8_mode"]):
            fp32.rename(path)
            ops = TENSORRT_INT8_OPS if job.export_config["int8_mode"] == "tensorrt" else INT8_OPS
            job.log(f"{job.spec.name}/{graph.name}: no {', '.join(ops)} nodes, kept fp32")
            return {"precision": "fp32", "reason": f"no {', '.join(ops)} nodes"}
        else:
            entry.update(_quantize_int8(job, graph, fp32, path))
        if graph.name == job.spec.graphs[0].name:
            entry["quality"] = _validate_quality(job, graph, fp32, path)
        else:
            entry["drift"] = _validate_drift(job, graph, fp32, path)
    finally:
        if fp32.exists():
            fp32.unlink()
    return entry


def int8_mode(config_mode: str, ops: list[str]) -> str:
    """The quantization mode for a graph with int8-worthy `ops` (see INT8_RULE)."""
    if config_mode not in ("auto", "dynamic", "static"):
        raise ZooError(f"export.int8_mode {config_mode!r} must be auto, dynamic or static")
    if config_mode != "auto":
        return config_mode
    return "dynamic" if "LSTM" in ops else "static"


def quantized_operators(path: Path) -> dict[str, int]:
    """How many MatMul, Gemm and LSTM nodes of the int8 graph at `path` compute in int8:
    the integer kernels of dynamic quantization, and (QDQ) float nodes fed by a DequantizeLinear."""
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    dequantized = {output for node in nodes if node.op_type == "DequantizeLinear" for output in node.output}
    kernels = {"MatMulInteger": "MatMul", "DynamicQuantizeMatMul": "MatMul", "QLinearMatMul": "MatMul",
               "QGemm": "Gemm", "DynamicQuantizeLSTM": "LSTM"}
    counts: dict[str, int] = {}
    for node in nodes:
        op = kernels.get(node.op_type)
        if op is None and node.op_type in STATIC_INT8_OPS and dequantized.intersection(node.input):
            op = node.op_type
        if op:
            counts[op] = counts.get(op, 0) + 1
    return counts


def _quantize_int8(job, graph: GraphSpec, fp32: Path, path: Path) -> dict[str, Any]:
    ops = quantizable(fp32)
    mode = int8_mode(job.export_config["int8_mode"], ops)
    quantize_graph(fp32, path, graph, mode, job.export_config)
    quantized = quantized_operators(path)
    if not quantized:
        covered = STATIC_INT8_OPS if mode == "static" else ("Gemm", *DYNAMIC_INT8_OPS)
        other = "dynamic" if mode == "static" else "static"
        raise UnavailableError(
            f"int8 {mode} quantization changed no node of graph '{graph.name}' (it has {', '.join(ops)}; ONNX Runtime's "
            f"{mode} quantizer covers {', '.join(covered)}); set export.int8_mode to {other} or auto, or export with --precision fp32"
        )
    # Reported, never decisive: one thread each, taking turns, fastest call of TIMING_RUNS (see fastest_ms).
    timings = fastest_ms({"fp32": OnnxBackend(fp32, graph, threads=1), "int8": OnnxBackend(path, graph, threads=1)}, graph)
    speedup = timings["fp32"] / timings["int8"]
    job.log(
        f"{job.spec.name}/{graph.name}: int8 {mode}, quantized " + ", ".join(f"{n} {op}" for op, n in quantized.items())
        + f"; fp32 {timings['fp32']:.3f} ms, int8 {timings['int8']:.3f} ms at batch {TIMING_BATCH} on one thread: "
        + f"{speedup:.2f}x"
    )
    if speedup < 1.0:
        job.log(f"warning: {job.spec.name}/{graph.name}: int8 ran {1 / speedup:.2f}x slower than fp32 on this CPU; "
                f"the int8 graph is written as asked, but fp32 may serve you better here")
    return {
        "int8_mode": mode,
        "int8_rule": INT8_RULE,
        "quantized_ops": quantized,
        "fastest_ms_batch8": {name: round(ms, 4) for name, ms in timings.items()},
        "speedup_vs_fp32": round(speedup, 3),
    }


def _validate_drift(job, graph: GraphSpec, fp32: Path, path: Path) -> dict[str, Any]:
    """An auxiliary graph (a mapping network, one direction of a pair): the task metric is
    defined on the model's main graph only, so these are held to the same limit as a
    relative RMS difference from their fp32 outputs."""
    limit = job.export_config["max_quality_drop"]
    feeds = example_inputs(graph, TIMING_BATCH * 8, job.export_config["seed"] + 11)
    parity = compare(graph, OnnxBackend(fp32, graph).run(feeds), OnnxBackend(path, graph).run(feeds), Tolerance(limit), job.precision)
    drift = {name: round(output.rel_rms, 6) for name, output in parity.outputs.items()}
    worst = max(drift.values())
    job.log(f"{job.spec.name}/{graph.name}: {job.precision} vs fp32 relative RMS difference {worst:.2%} (limit {limit:.0%})")
    if worst > limit:
        raise ValidationError(
            f"{job.precision} export of graph '{graph.name}' moves its outputs by {worst:.1%} RMS of fp32, over the "
            f"{limit:.0%} limit (export.max_quality_drop); the bundle was not written"
        )
    return {"relative_rms_vs_fp32": drift, "max_relative_rms": limit}


def _validate_quality(job, graph: GraphSpec, fp32: Path, path: Path) -> dict[str, Any]:
    config = job.export_config
    from zoo.data import data_root

    data = data_root(job.options.get("data"))
    weights = job.model.zoo_weights.path
    reference = measure_quality(job.spec, OnnxBackend(fp32, graph), data, config["quality_examples"], weights, job.variant)
    reduced = measure_quality(job.spec, OnnxBackend(path, graph), data, config["quality_examples"], weights, job.variant)
    drop = reduced.relative_drop(reference)
    job.log(
        f"{job.spec.name}/{graph.name}: {reduced.metric} fp32 {reference.value:.4g} -> {job.precision} {reduced.value:.4g} "
        f"(relative drop {drop:+.2%}, limit {config['max_quality_drop']:.0%}, {reduced.examples} examples)"
    )
    report = {
        "metric": reduced.metric,
        "description": reduced.description,
        "higher_is_better": reduced.higher_is_better,
        "examples": reduced.examples,
        "fp32": reference.value,
        job.precision: reduced.value,
        "relative_drop": round(drop, 6),
        "max_relative_drop": config["max_quality_drop"],
    }
    if drop > config["max_quality_drop"]:
        raise ValidationError(
            f"{job.precision} export of graph '{graph.name}' loses {drop:.1%} of {reduced.metric} "
            f"({reference.value:.4g} -> {reduced.value:.4g}), over the {config['max_quality_drop']:.0%} limit "
            f"(export.max_quality_drop); the bundle was not written"
        )
    return report

