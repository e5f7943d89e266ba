"""The exporter contract: the job carries the whole configuration, targets declare their own
sections, flags and runtime backends, the core imports no target, and one parity module."""

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import zoo
from conftest import ROOT, assert_clean_error, zoo_cli
from zoo import cli
from zoo.errors import ConfigError, PluginError, UnknownNameError, ValidationError
from zoo.parity import Parity, Tolerance, compare, tolerance_for
from zoo.testing import save_random_weights

# A third-party target with a config section of its own: it records what its job saw.
ECHO_TARGET = '''
import json
import zoo

@zoo.hookimpl
def register_exporters(register):
    register(zoo.ExporterSpec(
        name="echo", export="echotarget:export", precisions=("fp32",),
        settings=(zoo.Setting("level", 3, "how loud", flag=True), zoo.Setting("tag", "plain"),
                  zoo.Setting("verbose", False, "say more", flag=True)),
        backends={"echo": "echotarget:open_backend", "echo-fp16": "echotarget:open_backend"},
    ))

def export(job):
    (job.out_dir / "seen.json").write_text(json.dumps({"target": job.target_config, "opset": job.export_config["opset"],
                                                       "sections": sorted(job.config)}))
    return {"graphs": {}}

class Echo:
    def __init__(self, request):
        self.name, self.graph, self.precision = request.name, request.graph, request.precision
    def run(self, feeds):
        return feeds

def open_backend(request):
    return Echo(request)
'''


@pytest.fixture
def echo_target(plugin_dir):
    plugin_dir("echotarget", ECHO_TARGET)


@pytest.fixture
def dcgan_weights(tmp_path):
    return save_random_weights("dcgan", tmp_path / "dcgan.safetensors", base_channels=8)


# -- configuration sections and flags -------------------------------------------------------------------------


def test_a_target_declares_its_section_checked_like_the_cores(echo_target, tmp_path, monkeypatch, dcgan_weights):
    config = zoo.api.configuration()
    assert config["echo"] == {"level": 3, "tag": "plain", "verbose": False} and config["trt"]["opt_batch"] == 8
    (tmp_path / "zoo.toml").write_text("[echo]\ntag = 'loud'\n")
    monkeypatch.setenv("ZOO_ECHO_LEVEL", "5")
    bundle = zoo.export("dcgan", target="echo", out=tmp_path / "out", weights=dcgan_weights)
    seen = json.loads((bundle / "seen.json").read_text())
    assert seen["target"] == {"level": 5, "tag": "loud", "verbose": False} and seen["opset"] == 18
    assert {"export", "echo", "trt", "triton", "run"} <= set(seen["sections"])
    # flags beat the environment, and reach the job
    assert cli.main(["export", "dcgan", "--target", "echo", "--level", "7", "--verbose", "--weights", str(dcgan_weights),
                     "-o", str(tmp_path / "flags")]) == 0
    assert json.loads((tmp_path / "flags" / "dcgan" / "seen.json").read_text())["target"]["level"] == 7
    for text, fragment in (("[echo]\nlevel = 'high'\n", "echo.level must be an integer"),
                           ("[echo]\nloudness = 1\n", "unknown key echo.loudness"),
                           ("[ecoh]\nlevel = 1\n", "unknown section [ecoh]")):
        (tmp_path / "zoo.toml").write_text(text)
        zoo.api._REGISTRY = None
        with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
            zoo.api.configuration()


def test_a_flag_of_another_target_is_an_error_not_ignored(echo_target, dcgan_weights, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["export", "dcgan", "--target", "onnx", "--level", "2", "--weights", str(dcgan_weights), "-o", str(out)]) == 2
    assert "--level is a setting of target 'echo', not of 'onnx'" in capsys.readouterr().err
    assert not out.exists()


def test_a_target_cannot_take_over_a_core_section(plugin_dir):
    plugin_dir("badsection", '''
import zoo

@zoo.hookimpl
def register_exporters(register):
    register(zoo.ExporterSpec(name="export", export="badsection:f", settings=(zoo.Setting("opset", 1),)))
''')
    plugins = {p.name: p for p in zoo.api.registry().plugins.values()}
    assert "would replace the core's [export] section" in plugins["badsection"].errors[0]
    assert zoo.api.configuration()["export"]["opset"] == 18


def test_opt_batch_reaches_the_trt_exporter_on_check_only_export_and_build_engine(dcgan_weights, tmp_path, monkeypatch, capsys):
    """`--opt-batch 16` reaches the plan `--check-only` prints and the config the build path
    gets; the GPU-only step (`build_graph_engines`) is replaced by a recorder here."""
    from zoo.export import trt

    assert cli.main(["export", "dcgan", "--target", "trt", "--check-only", "--json", "--opt-batch", "16",
                     "--weights", str(dcgan_weights)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["graphs"]["model"]["engine_plan"]["profile"]["z"]["opt"] == [16, 100]

    seen = []

    def recorder(bundle, manifest, precision, trt_config, log=print):
        seen.append((precision, dict(trt_config)))
        return {}

    monkeypatch.setattr(trt, "check", lambda: None)
    monkeypatch.setattr(trt, "build_graph_engines", recorder)
    assert cli.main(["export", "dcgan", "--target", "trt", "--opt-batch", "16", "--max-batch", "32", "--tf32",
                     "--weights", str(dcgan_weights), "-o", str(tmp_path / "out")]) == 0
    assert seen[-1][0] == "fp32" and seen[-1][1]["opt_batch"] == 16 and seen[-1][1]["max_batch"] == 32 and seen[-1][1]["tf32"]
    assert cli.main(["build-engine", str(tmp_path / "out" / "dcgan"), "--opt-batch", "12"]) == 0
    assert seen[-1][0] == "fp32" and seen[-1][1]["opt_batch"] == 12 and seen[-1][1]["max_batch"] == 64


# -- runtime backends ------------------------------------------------------------------------------------------


def test_backends_come_from_the_targets_that_provide_them(echo_target):
    from zoo.runtime import check_backend, open_backend

    backends = zoo.api.registry().backends()
    assert backends["trt-fp16"][0] == "trt" and backends["onnx-trt"][0] == "trt" and backends["onnx-int8"][0] == "onnx"
    spec = zoo.get_spec("dcgan")
    echo = open_backend(spec, "echo-fp16")
    assert echo.precision == "fp16" and echo.graph.name == "model" and echo.run({"z": 1}) == {"z": 1}
    with pytest.raises(UnknownNameError, match="did you mean 'echo'"):
        check_backend("ecoh")


def test_core_imports_no_target_and_no_circle_runs_through_the_targets_or_the_api():
    """No module of the core imports a target (`zoo.export.*`) at any level, and no import circle
    (lazy imports included) passes through a target or through `zoo.api`, which `zoo.exporting`
    builds on."""
    modules = {}
    for folder, package in (("core", "zoo"), ("export", "zoo.export")):
        for path in (ROOT / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            modules[".".join([package, *parts])] = path
    edges = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                edges[name] |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                                for a in node.names} & set(modules)
            elif isinstance(node, ast.Import):
                edges[name] |= {a.name for a in node.names} & set(modules)
    targets = [name for name in modules if name == "zoo.export" or name.startswith("zoo.export.")]
    core = [name for name in modules if name not in targets]
    assert not {(name, target) for name in core for target in edges[name] if target.startswith("zoo.export.")}

    def reaches(start, goal, seen):
        for nxt in edges[start] - {"zoo"}:  # the package __init__ only re-exports the public API
            if nxt == goal or (nxt not in seen and not seen.add(nxt) and reaches(nxt, goal, seen)):
                return True
        return False

    watched = targets + ["zoo.api"]
    assert [name for name in watched if reaches(name, name, set())] == []


# -- parity ----------------------------------------------------------------------------------------------------


def _graph(tolerances=None):
    return zoo.GraphSpec(inputs=(zoo.TensorSpec("x", ("batch", 4)),),
                         outputs=(zoo.TensorSpec("y", ("batch", 4)), zoo.TensorSpec("ids", ("batch",), "int64")),
                         tolerances=tolerances or {})


def test_parity_counts_errors_non_finite_values_and_the_share_outside_tolerance():
    reference = {"y": np.array([[0.0, 1.0, 2.0, np.nan]] * 2, np.float32), "ids": np.array([3, 4])}
    candidate = {"y": np.array([[0.0, 1.0005, np.inf, np.nan], [np.nan, 1.0, 2.0, np.nan]], np.float32), "ids": np.array([3, 5])}
    parity = compare(_graph(), reference, candidate, Tolerance(1e-3, 0.0))
    y, ids = parity.outputs["y"], parity.outputs["ids"]
    assert (y.nan, y.inf, y.mismatched, y.elements) == (1, 1, 2, 8) and y.mismatch == 0.25 and not y.passed
    assert y.max_abs == float("inf") and ids.mismatched == 1 and ids.max_abs == 1.0
    assert "output 'y'" in parity.failure() and "1 NaN, 1 Inf" in parity.failure()
    with pytest.raises(ValidationError, match="graph 'model', output 'y'"):
        parity.check("A and B")
    close = compare(_graph(), {"y": np.ones((2, 4), np.float32)}, {"y": np.full((2, 4), 1.0005, np.float32)}, Tolerance(1e-3))
    assert close.passed and abs(close.outputs["y"].rel_rms - 5e-4) < 1e-6
    shapes = compare(_graph(), {"y": np.ones((2, 4))}, {"y": np.ones((2, 3))}, Tolerance(1.0))
    assert not shapes.passed and "shape (2, 3) instead of (2, 4)" in shapes.failure()


def test_parity_accumulates_calls_and_allows_a_declared_share_of_outliers():
    parity = Parity(_graph({"y": {"mismatch": 0.1}}), Tolerance(1e-3))
    for batch in (1, 9):
        reference = np.zeros((batch, 4), np.float32)
        candidate = reference.copy()
        candidate[0, 0] = 1.0  # one outlier per call: 2 of 40 elements = 5%
        parity.add({"y": reference}, {"y": candidate})
    assert parity.outputs["y"].mismatch == 0.05 and parity.passed
    assert parity.to_json(batch_sizes=[1, 9])["y"]["batch_sizes"] == [1, 9]


def test_graph_tolerances_layer_per_output_and_precision():
    graph = _graph({"*": {"atol": 1e-2}, "y": {"rtol": 0.5}, "*@fp16": {"atol": 0.2}, "y@fp16": {"mismatch": 0.01}})
    default = Tolerance(1e-4, 1e-3)
    assert tolerance_for(graph, "y", default) == Tolerance(1e-2, 0.5, 0.0)
    assert tolerance_for(graph, "ids", default) == Tolerance(1e-2, 1e-3, 0.0)
    assert tolerance_for(graph, "y", default, "fp16") == Tolerance(0.2, 1e-3, 0.01)
    assert tolerance_for(graph, "y", default, "int8") == default
    with pytest.raises(PluginError, match="unknown output 'z'"):
        zoo.specs.validate_model_spec(zoo.ModelSpec("m", "image-generation", "m:b", (_graph({"z": {"atol": 1}}),)))
    with pytest.raises(PluginError, match="atol, rtol, mismatch"):
        zoo.specs.validate_model_spec(zoo.ModelSpec("m", "image-generation", "m:b", (_graph({"y": {"tol": 1}}),)))


def test_a_graphs_declared_tolerance_is_what_the_onnx_export_checks(plugin_dir, tmp_path):
    plugin_dir("loosegen", '''
import zoo

@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="loosegen", task="image-generation", builder="loosegen:build",
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("z", ("batch", 4)),), outputs=(zoo.TensorSpec("image", ("batch", 4)),),
                              tolerances={"image": {"atol": 0.25, "rtol": 0.0}}),),
    ))

def build():
    import torch
    return torch.nn.Linear(4, 4)
''')
    weights = save_random_weights("loosegen", tmp_path / "w.safetensors")
    bundle = zoo.export("loosegen", out=tmp_path / "out", weights=weights, log=lambda line: None)
    parity = json.loads((Path(bundle) / "model.json").read_text())["graphs"]["model"]["parity"]["image"]
    assert parity["atol"] == 0.25 and parity["rtol"] == 0.0 and parity["passed"] and parity["nan"] == 0


def test_cli_reports_a_bad_target_setting_in_one_line(tmp_path):
    (tmp_path / "zoo.toml").write_text("[trt]\nmax_batch = 'lots'\n")
    assert_clean_error(zoo_cli("list", cwd=tmp_path), "zoo.toml", "trt.max_batch must be an integer")
