"""`zoo check BUNDLE --runtime R`: will runtime R load this bundle? A pre-flight report read from the ONNX
files alone (the runtime need not be installed), naming each operator that blocks.

- ort: the ONNX opset and IR version the ONNX Runtime release reads, and operators outside the domains its
  CPU provider implements.
- ort-mobile: the same, plus the ORT-format file and the operator list a minimal (mobile) build is compiled
  with, which `zoo export --target ort` writes.
- opencv: the limits of OpenCV DNN (`OPENCV_RULES`), per OpenCV major version: each rule was found by
  running the zoo's exported models through it, and the test suite checks every prediction against the real
  outcome wherever OpenCV is installed. A graph OpenCV imports but computes wrongly counts as not loading.
- trt: the trt target's readiness report (operators against onnx-tensorrt's support table, after constant
  folding), reached through the registry like `zoo export --target trt --check-only`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from zoo.errors import UnavailableError, ZooError

RUNTIMES = ("ort", "ort-mobile", "opencv", "trt")
# ONNX Runtime release -> (highest ai.onnx opset, highest IR version) it reads, from its versioning table.
ORT_LIMITS = {
    (1, 14): (18, 8), (1, 15): (19, 9), (1, 16): (19, 9), (1, 17): (20, 9), (1, 18): (21, 10), (1, 19): (21, 10),
    (1, 20): (21, 10),
}
ORT_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")


@dataclass
class GraphVerdict:
    graph: str
    file: str
    loads: bool
    blockers: list[str] = field(default_factory=list)  # "<node> (<op>): why"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"graph": self.graph, "file": self.file, "loads": self.loads, "blockers": self.blockers, "notes": self.notes}


@dataclass
class CheckReport:
    bundle: Path
    runtime: str
    version: str
    graphs: list[GraphVerdict]

    @property
    def loads(self) -> bool:
        return all(g.loads for g in self.graphs)

    def to_json(self) -> dict[str, Any]:
        return {"bundle": str(self.bundle), "runtime": self.runtime, "version": self.version, "loads": self.loads,
                "graphs": [g.to_json() for g in self.graphs]}

    def text(self) -> str:
        lines = [f"{self.runtime} {self.version} on {self.bundle}:"]
        for g in self.graphs:
            lines.append(f"  graph '{g.graph}' ({g.file}): {'loads' if g.loads else 'does not load'}")
            lines += [f"    blocks: {b}" for b in g.blockers]
            lines += [f"    note: {n}" for n in g.notes]
        verdict = "every graph should load" if self.loads else "some graphs will not load; see the blocking operators"
        return "\n".join(lines + [verdict])


def check_bundle(bundle: Path, runtime: str, version: str | None = None) -> CheckReport:
    """Predict whether `runtime` (at `version`, default: the one installed, else the newest known) loads each
    graph and computes what PyTorch computes."""
    import onnx

    if runtime not in RUNTIMES:
        raise ZooError(f"unknown runtime '{runtime}'; use one of {', '.join(RUNTIMES)}")
    bundle = Path(bundle)
    try:
        manifest = json.loads((bundle / "model.json").read_text())
    except (OSError, ValueError):
        raise ZooError(f"{bundle} is not a zoo bundle (no readable model.json); pass a folder written by `zoo export`") from None
    version = version or installed_version(runtime)
    checker: Callable = {"ort": _check_ort, "ort-mobile": _check_ort_mobile, "opencv": _check_opencv, "trt": _check_trt}[runtime]
    verdicts = []
    for name, entry in manifest["graphs"].items():
        path = bundle / entry["file"]
        model = onnx.load(str(path))
        blockers, notes = checker(model, path, version)
        verdicts.append(GraphVerdict(name, entry["file"], not blockers, blockers, notes))
    return CheckReport(bundle, runtime, version, verdicts)


def installed_version(runtime: str) -> str:
    """The runtime version to predict for, read without importing the runtime."""
    if runtime in ("ort", "ort-mobile"):
        found = _distribution_version("onnxruntime", "onnxruntime-gpu")
        return found or ".".join(map(str, max(ORT_LIMITS)))
    if runtime == "opencv":
        return opencv_version() or "4.6.0"
    return _distribution_version("tensorrt", "tensorrt-cu12") or "10"


def _distribution_version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def opencv_version() -> str | None:
    """OpenCV's version from its C++ headers (what the C++ example builds against), else its Python package."""
    for root in ("/usr/include/opencv4", "/usr/local/include/opencv4"):
        header = Path(root) / "opencv2" / "core" / "version.hpp"
        if header.is_file():
            text = header.read_text(errors="replace")
            parts = [re.search(rf"#define CV_VERSION_{part}\s+(\d+)", text) for part in ("MAJOR", "MINOR", "REVISION")]
            if all(parts):
                return ".".join(p.group(1) for p in parts)
    found = _distribution_version("opencv-python-headless", "opencv-python", "opencv-contrib-python")
    return ".".join(found.split(".")[:3]) if found else None


def _opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _node_label(node) -> str:
    return f"{node.name or node.output[0]} ({node.op_type})"


def _check_ort(model, path: Path, version: str) -> tuple[list[str], list[str]]:
    import onnx

    key = tuple(int(p) for p in version.split(".")[:2])
    known = [k for k in ORT_LIMITS if k <= key]
    notes = []
    if not known:
        return [f"ONNX Runtime {version} is older than this check knows (1.14); use 1.14 or newer"], notes
    max_opset, max_ir = ORT_LIMITS[max(known)]
    if key > max(ORT_LIMITS):
        notes.append(f"ONNX Runtime {version} is newer than the check's table; its limits are at least those of "
                     f"{'.'.join(map(str, max(ORT_LIMITS)))} (opset {max_opset}, IR {max_ir})")
        max_opset, max_ir = max(max_opset, _opset(model)), max(max_ir, model.ir_version)
    blockers = []
    if _opset(model) > max_opset:
        blockers.append(f"the graph (opset {_opset(model)}): ONNX Runtime {version} reads ai.onnx opsets up to {max_opset}")
    if model.ir_version > max_ir:
        blockers.append(f"the graph (IR version {model.ir_version}): ONNX Runtime {version} reads IR versions up to {max_ir}")
    for node in model.graph.node:
        if node.domain not in ORT_DOMAINS:
            blockers.append(f"{_node_label(node)}: domain '{node.domain}' has no ONNX Runtime kernels")
        elif node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type):
            blockers.append(f"{_node_label(node)}: not an ONNX operator")
    return blockers, notes


def _check_ort_mobile(model, path: Path, version: str) -> tuple[list[str], list[str]]:
    blockers, notes = _check_ort(model, path, version)
    ort_file = path.with_suffix(".ort")
    if not ort_file.is_file():
        blockers.append(f"the graph: no {ort_file.name} beside {path.name}; a minimal (mobile) ONNX Runtime build "
                        f"reads only the ORT format: `zoo export NAME --target ort`")
    ops = sorted({f"{node.domain or 'ai.onnx'}:{node.op_type}" for node in model.graph.node})
    notes.append(f"the build needs these operators ({len(ops)}): {', '.join(ops)}"
                 + ("; required_operators_and_types.config beside the bundle lists them for "
                    "`build.sh --minimal_build --include_ops_by_config`"
                    if (path.parent / "required_operators_and_types.config").is_file() else ""))
    return blockers, notes


def _check_trt(model, path: Path, version: str) -> tuple[list[str], list[str]]:
    """The trt target's readiness report (`zoo export --target trt --check-only`), through the registry."""
    from zoo.api import configuration, registry
    from zoo.specs import import_dotted

    exporter = registry().exporter("trt")
    if not exporter.inspect:
        raise UnavailableError("the installed trt target has no readiness report")
    if path not in _TRT_REPORTS:
        bundle = path.parent if (path.parent / "model.json").is_file() else path.parents[1]
        graphs = import_dotted(exporter.inspect, "the trt readiness report")(bundle, configuration(), "fp32").data["graphs"]
        manifest = json.loads((bundle / "model.json").read_text())
        _TRT_REPORTS.update({bundle / manifest["graphs"][name]["file"]: report for name, report in graphs.items()})
    report = _TRT_REPORTS.pop(path)
    blockers = [f"{op}: not supported by TensorRT's ONNX parser" for op in report["unsupported"]]
    notes = [f"{op}: not in TensorRT's operator table" for op in report["undocumented"]] + list(report["traps"])
    return blockers, notes


_TRT_REPORTS: dict[Path, dict[str, Any]] = {}  # one readiness report covers every graph of a bundle


# OpenCV DNN's ONNX importer -------------------------------------------------------------------------------

def _check_opencv(model, path: Path, version: str) -> tuple[list[str], list[str]]:
    import onnx

    major = int(version.split(".")[0])
    model = onnx.shape_inference.infer_shapes(model)
    facts = _GraphFacts(model)
    blockers = []
    for node in model.graph.node:
        for rule in OPENCV_RULES:
            if major in rule.majors and rule.applies(node, facts):
                blockers.append(f"{_node_label(node)}: {rule.reason}")
                break
    quantized = sorted({node.op_type for node in model.graph.node if node.op_type in QUANTIZED_OPS})
    notes = [f"quantized operators ({', '.join(quantized)}): the rules were measured on fp32 graphs only"] if quantized else []
    return blockers, notes


class _GraphFacts:
    """What the rules ask about tensors: constant or not, rank, shape."""

    def __init__(self, model):
        from onnx import numpy_helper

        graph = model.graph
        self.opset = _opset(model)
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.shapes = {}
        for value in [*graph.input, *graph.value_info, *graph.output]:
            if value.type.tensor_type.HasField("shape"):
                self.shapes[value.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                                           for d in value.type.tensor_type.shape.dim]
        self.inputs = {value.name for value in graph.input}
        # OpenCV 4's importer flags a graph as dynamic when an input has a symbolic axis, except the first
        # axis of an input of rank 3 or more (the batch of an image).
        self.dynamic_inputs = any(not isinstance(d, int) and not (axis == 0 and len(self.shapes[v.name]) >= 3)
                                  for v in graph.input if v.name in self.shapes
                                  for axis, d in enumerate(self.shapes[v.name]))

    def constant(self, name: str) -> bool:
        return name in self.constants


@dataclass(frozen=True)
class OpenCVRule:
    majors: tuple[int, ...]
    reason: str
    applies: Callable[[Any, _GraphFacts], bool]


def _unsqueeze_axes(node, facts: _GraphFacts) -> int:
    if len(node.input) > 1:
        return facts.constants[node.input[1]].size if facts.constant(node.input[1]) else 2
    return next((len(a.ints) for a in node.attribute if a.name == "axes"), 1)


QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger",
                 "QLinearMatMul", "QLinearConv", "DynamicQuantizeLSTM"}

OPENCV_RULES = (
    OpenCVRule((4,), "OpenCV 4's importer unsqueezes one axis at a time ('Multidimensional unsqueeze')",
               lambda n, f: n.op_type == "Unsqueeze" and _unsqueeze_axes(n, f) > 1),
    OpenCVRule((4,), "OpenCV 4 gathers only with constant indices ('not found in const blobs')",
               lambda n, f: n.op_type == "Gather" and not f.constant(n.input[1]) and not f.constant(n.input[0])
               or (n.op_type == "Gather" and n.input[1] in f.inputs)),
    OpenCVRule((4,), "OpenCV 4 takes no Shape in a graph with symbolic input axes other than the batch of an "
               "image-like (3-D or more) input ('!isDynamicShape')", lambda n, f: n.op_type == "Shape" and f.dynamic_inputs),
    OpenCVRule((4,), "OpenCV 4 expands only to constant shapes", lambda n, f: n.op_type == "Expand"
               and not f.constant(n.input[1])),
    OpenCVRule((4,), "OpenCV 4 broadcasts element-wise operands of different shapes only against constants",
               lambda n, f: n.op_type in ("Add", "Mul", "Sub", "Div") and len(n.input) == 2
               and not any(f.constant(i) for i in n.input)
               and f.shapes.get(n.input[0]) != f.shapes.get(n.input[1])),
    OpenCVRule((4,), "OpenCV 4 reshapes only to constant shapes", lambda n, f: n.op_type == "Reshape"
               and not f.constant(n.input[1])),
    OpenCVRule((4,), "OpenCV 4.6 imports InstanceNormalization but computes other numbers (measured: max abs "
               "difference 1.84 from ONNX Runtime on a single-node graph)",
               lambda n, f: n.op_type == "InstanceNormalization"),
)
