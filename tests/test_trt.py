"""The TensorRT path without a GPU: feature detection on the TensorRT 10.x and 11.x API shapes (fake
modules), the builder set-up against a recording fake, profiles from declared axis ranges, batch
splitting and output copying against a runner with Polygraphy's interface on ONNX Runtime, engine
compatibility on load, timing-cache keys, ONNX Runtime provider checks, and the Q/DQ int8 ONNX
validated by the task metric. Building and running real engines is `tests/test_deploy.py`'s GPU test."""

import json
import types

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import zoo
from conftest import MNIST, assert_clean_error, needs_data, read_json, zoo_cli
from zoo.errors import ConfigError, UnavailableError, ValidationError, ZooError
from zoo.export import trt
from zoo.runtime import OnnxBackend

TRT_CONFIG = {s.key: s.default for s in trt.SETTINGS}


# -- feature detection and the builder set-up ---------------------------------------------------------------


def fake_tensorrt(version, strongly_typed_flag=True, precision_flags=True, tf32=True):
    """A module with the shape of the tensorrt Python API of one version: only what feature detection looks at."""
    creation = {"EXPLICIT_BATCH": 0, **({"STRONGLY_TYPED": 1} if strongly_typed_flag else {})}
    builder = {"TF32": 7, "REFIT": 9, **({"FP16": 0, "INT8": 1} if precision_flags else {}), **({} if tf32 else {"TF32": None})}
    if not tf32:
        del builder["TF32"]
    return types.SimpleNamespace(__version__=version, NetworkDefinitionCreationFlag=types.SimpleNamespace(**creation),
                                 BuilderFlag=types.SimpleNamespace(**builder))


@pytest.mark.parametrize("version, shape, network_flags, builder_flags", [
    ("10.16.0", {}, ["STRONGLY_TYPED"], []),  # 10.x: strongly typed by the flag; FP16/INT8 exist but are not used
    ("11.2.0", {"precision_flags": False}, ["STRONGLY_TYPED"], []),  # 11.x keeping the creation flag
    ("11.2.0", {"precision_flags": False, "strongly_typed_flag": False}, [], []),  # 11.x: strongly typed is the only kind
    ("9.0.1", {"strongly_typed_flag": False}, [], ["FP16"]),  # no strong typing: the old precision flags
])
def test_feature_detection_picks_the_route_from_the_api_not_the_version(version, shape, network_flags, builder_flags):
    found = trt.features(fake_tensorrt(version, **shape))
    settings = trt.network_settings(found, "fp16", tf32=False)
    assert settings["network_flags"] == network_flags and settings["builder_flags"] == builder_flags
    assert settings["cleared_flags"] == ["TF32"]
    assert ("strongly typed" in settings["network"]) == (not builder_flags)
    assert trt.network_settings(found, "fp16", tf32=True)["cleared_flags"] == []
    assert trt.network_settings(trt.features(fake_tensorrt(version, tf32=False, **shape)), "fp32", False)["cleared_flags"] == []
    if builder_flags:
        assert trt.network_settings(found, "int8", False)["builder_flags"] == ["INT8", "FP16"]


class _Recorder:
    """Records the calls a build makes on a fake tensorrt module."""

    def __init__(self):
        self.calls = []


def recording_tensorrt(version, strongly_typed_flag, precision_flags, profile_index=0, cache_accepted=True, cache_after=True):
    """A fake tensorrt module that records what `build_engine` asks of it."""
    log = _Recorder()

    class Config:
        def set_memory_pool_limit(self, pool, size):
            log.calls.append(("workspace", size))

        def set_flag(self, flag):
            log.calls.append(("set_flag", flag))

        def clear_flag(self, flag):
            log.calls.append(("clear_flag", flag))

        def add_optimization_profile(self, profile):
            log.calls.append(("profile", dict(profile.shapes)))
            return profile_index

        def create_timing_cache(self, data):
            log.calls.append(("create_timing_cache", bytes(data)))
            return types.SimpleNamespace(data=bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            log.calls.append(("set_timing_cache", cache.data))
            return cache_accepted or cache.data == b""

        def get_timing_cache(self):
            return types.SimpleNamespace(serialize=lambda: b"tactics") if cache_after else None

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, low, mid, high):
            self.shapes[name] = (list(low), list(mid), list(high))

    class Builder:
        def __init__(self, logger):
            log.calls.append(("builder", logger))

        def create_network(self, flags):
            log.calls.append(("network", flags))
            return object()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            return b"engine"

    class Parser:
        num_errors = 0

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            return True

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            pass

    creation = {"STRONGLY_TYPED": 5} if strongly_typed_flag else {}
    builder_flags = {"TF32": "TF32", **({"FP16": "FP16", "INT8": "INT8"} if precision_flags else {})}
    module = types.ModuleType("tensorrt")
    module.__dict__.update(
        __version__=version, Logger=Logger, Builder=Builder, OnnxParser=Parser,
        NetworkDefinitionCreationFlag=types.SimpleNamespace(**creation), BuilderFlag=types.SimpleNamespace(**builder_flags),
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="workspace"),
        init_libnvinfer_plugins=lambda logger, namespace: log.calls.append(("plugins", namespace)),
    )
    return module, log


@pytest.fixture
def fresh_logger(monkeypatch):
    monkeypatch.setattr(trt, "_LOGGER", None)


GRAPH = zoo.GraphSpec(inputs=(zoo.TensorSpec("x", ("batch", 4)),), outputs=(zoo.TensorSpec("y", ("batch", 4)),))


@pytest.mark.parametrize("version, strongly_typed_flag, precision_flags, expected_network_flags, expected_set", [
    ("10.16.0", True, True, 1 << 5, []),
    ("11.2.0", False, False, 0, []),
    ("9.0.1", False, True, 0, ["FP16"]),
])
def test_build_engine_sets_up_the_network_and_builder_from_the_plan(
        fresh_logger, monkeypatch, tmp_path, version, strongly_typed_flag, precision_flags, expected_network_flags, expected_set):
    module, log = recording_tensorrt(version, strongly_typed_flag, precision_flags)
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", module)
    plan = trt.engine_plan(GRAPH, {"x": ["batch", 4]}, TRT_CONFIG, "fp16", trt.features(module))
    cache = tmp_path / "timing.cache"
    assert trt.build_engine(tmp_path / "g.onnx", plan, cache, log=log.calls.append) == b"engine"
    calls = log.calls
    assert ("network", expected_network_flags) in calls and ("plugins", "") in calls
    assert [c[1] for c in calls if c[0] == "set_flag"] == expected_set and ("clear_flag", "TF32") in calls
    assert ("profile", {"x": ([1, 4], [8, 4], [64, 4])}) in calls and ("workspace", 2048 << 20) in calls
    assert cache.read_bytes() == b"tactics"  # written after the build
    trt.build_engine(tmp_path / "g.onnx", plan, cache, log=log.calls.append)
    assert ("set_timing_cache", b"tactics") in calls  # read back before the next build
    assert sum(c[0] == "builder" for c in calls) == 2 and sum(c[0] == "plugins" for c in calls) == 1  # one logger per process


def test_build_engine_checks_the_profile_result_and_survives_a_bad_timing_cache(fresh_logger, monkeypatch, tmp_path):
    module, log = recording_tensorrt("10.16.0", True, True, profile_index=-1)
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", module)
    plan = trt.engine_plan(GRAPH, {"x": ["batch", 4]}, TRT_CONFIG, "fp32", trt.features(module))
    with pytest.raises(ZooError, match="rejected the optimization profile"):
        trt.build_engine(tmp_path / "g.onnx", plan, tmp_path / "t.cache")
    module, log = recording_tensorrt("10.16.0", True, True, cache_accepted=False, cache_after=False)
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", module)
    cache = tmp_path / "stale.cache"
    cache.write_bytes(b"from another GPU")
    notes = []
    assert trt.build_engine(tmp_path / "g.onnx", plan, cache, log=notes.append) == b"engine"
    assert "does not fit this TensorRT and GPU" in notes[0] and "returned no timing cache" in notes[1]
    assert ("set_timing_cache", b"") in log.calls and cache.read_bytes() == b"from another GPU"


# -- profiles from declared axis ranges ---------------------------------------------------------------------


def test_gpt2_profile_spans_the_cache_from_zero_to_the_context():
    graph = zoo.get_spec("gpt2").with_config().graph("decoder")
    shapes = {t.name: list(t.shape) for t in graph.inputs}
    plan = trt.engine_plan(graph, shapes, {**TRT_CONFIG, "max_batch": 16}, "fp32")
    context = zoo.get_spec("gpt2").with_config().config["block_size"]
    assert plan["axes"]["past_sequence_length"] == {"min": 0, "opt": context // 2, "max": context - 1, "source": "the graph's axis_ranges"}
    assert plan["axes"]["sequence_length"]["min"] == 1 and plan["axes"]["sequence_length"]["max"] == context
    assert plan["profile"]["past_key_values.0.key"] == {"min": [1, 5, 0, 32], "opt": [8, 5, context // 2, 32], "max": [16, 5, context - 1, 32]}
    points = plan["validation_points"]
    assert points[0] == {"batch": 1, "sequence_length": 1, "past_sequence_length": 0}
    assert {"batch": 1, "sequence_length": 1, "past_sequence_length": context - 1} in points
    assert {"batch": 16, "sequence_length": 1, "past_sequence_length": 0} in points
    assert all(p["sequence_length"] + p["past_sequence_length"] <= context for p in points)  # every point is a valid input
    options = trt.ort_tensorrt_options(plan, trt.cache_root() / "ort")
    assert "past_key_values.0.key:1x5x0x32" in options["trt_profile_min_shapes"] and options["trt_engine_cache_enable"] == "True"
    assert f"input_ids:16x{context}" in options["trt_profile_max_shapes"]


def test_undeclared_axes_are_fixed_and_bad_ranges_are_errors():
    graph = zoo.GraphSpec(inputs=(zoo.TensorSpec("image", ("batch", 1, "height", "width")),),
                          outputs=(zoo.TensorSpec("y", ("batch", 1)),), example_axes={"height": 32, "width": 32},
                          axis_ranges={"width": (16, 32, 64)})
    plan = trt.engine_plan(graph, {"image": ["batch", 1, "height", "width"]}, TRT_CONFIG, "int8")
    assert plan["axes"]["height"]["min"] == plan["axes"]["height"]["max"] == 32 and "declares no range" in plan["axes"]["height"]["source"]
    assert plan["profile"]["image"]["max"] == [64, 1, 32, 64]
    assert "Q/DQ" in plan["precision_route"] and plan["network_flags"] == ["STRONGLY_TYPED"] and plan["builder_flags"] == []
    assert trt.engine_plan(graph, {"image": [1, 1, 32, 32]}, TRT_CONFIG, "fp32")["validation_points"] == [{}]  # a static export
    with pytest.raises(ConfigError, match="1 <= min"):
        trt.engine_plan(graph, {"image": ["batch", 1, 32, 32]}, {**TRT_CONFIG, "min_batch": 9}, "fp32")
    bad = zoo.GraphSpec(inputs=graph.inputs, outputs=graph.outputs, axis_ranges={"height": (8, 4, 64), "width": (1, 1, 1)})
    with pytest.raises(ConfigError, match="axis 'height'"):
        trt.engine_plan(bad, {"image": ["batch", 1, "height", "width"]}, TRT_CONFIG, "fp32")


def test_stylegan_check_only_prints_the_whole_plan(tmp_path):
    from zoo.testing import save_random_weights

    weights = save_random_weights("stylegan", tmp_path / "s.safetensors")
    result = zoo_cli("export", "stylegan", "--target", "trt", "--check-only", "--precision", "int8", "--weights", weights,
                     "--opt-batch", "16", "--tf32")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for graph in ("generator", "mapping", "synthesis"):
        assert f"graph '{graph}'" in text
    assert "axis batch: min 1, opt 16, max 64 ([trt] min/opt/max_batch)" in text
    assert "engine from: the explicitly quantized ONNX" in text and "Q/DQ: " in text and "Conv" in text
    assert "network: strongly typed" in text and "cleared: none" in text  # --tf32 reached the plan
    assert "validated against ONNX Runtime at: batch 1; batch 16; batch 64" in text
    assert "timing cache:" in text and "this machine:" in text


# -- running engines: batch splitting and output copying ------------------------------------------------------


def _linear_onnx(path, width=4):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])
    weight = helper.make_tensor("w", TensorProto.FLOAT, [width, width], np.arange(width * width, dtype=np.float32) / 10)
    model = helper.make_model(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [weight]),
                              opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(path))
    return path


class BufferReusingRunner:
    """Polygraphy's runner interface on ONNX Runtime, reusing its output buffers as a TrtRunner does:
    every call writes into (a view of) the same array."""

    def __init__(self, path):
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.buffers, self.calls, self.active = {}, [], False

    def activate(self):
        self.active = True

    def infer(self, feeds):
        assert self.active
        self.calls.append({k: v.shape for k, v in feeds.items()})
        outputs = {}
        for meta, value in zip(self.session.get_outputs(), self.session.run(None, feeds)):
            buffer = self.buffers.get(meta.name)
            if buffer is None or buffer.size < value.size:
                buffer = self.buffers[meta.name] = np.empty(value.size * 2, value.dtype)
            view = buffer[: value.size].reshape(value.shape)
            view[...] = value
            outputs[meta.name] = view
        return outputs

    def deactivate(self):
        self.active = False


def test_the_runner_really_reuses_its_buffers(tmp_path):
    runner = BufferReusingRunner(_linear_onnx(tmp_path / "g.onnx"))
    runner.activate()
    first = runner.infer({"x": np.ones((2, 4), np.float32)})["y"]
    before = first.copy()
    runner.infer({"x": np.zeros((2, 4), np.float32)})
    assert not np.array_equal(first, before)  # what a backend without copies would hand back


def test_trt_backend_splits_work_to_the_max_batch_and_copies_outputs(tmp_path):
    path = _linear_onnx(tmp_path / "g.onnx")
    plan = trt.engine_plan(GRAPH, {"x": ["batch", 4]}, {**TRT_CONFIG, "min_batch": 1, "opt_batch": 2, "max_batch": 4}, "fp32")
    runner = BufferReusingRunner(path)
    feeds = {"x": np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)}
    expected = OnnxBackend(path, GRAPH).run(feeds)["y"]
    with trt.TrtBackend(runner, GRAPH, "trt", plan) as backend:
        assert runner.active
        result = backend.run(feeds)["y"]
        np.testing.assert_allclose(result, expected, rtol=1e-6)
        assert [c["x"] for c in runner.calls] == [(4, 4), (4, 4), (2, 4)]
        kept = [backend.run({"x": feeds["x"][i:i + 3]})["y"] for i in (0, 3, 6)]  # a task keeping chunk outputs
        for index, chunk in enumerate(kept):
            np.testing.assert_allclose(chunk, expected[index * 3:index * 3 + 3], rtol=1e-6)
    assert not runner.active  # leaving the block deactivated the runner


def test_trt_backend_splits_along_the_batch_axis_wherever_it_is(tmp_path):
    """A recurrent step's state is (layers, batch, hidden): its batch axis is the second."""
    state = helper.make_tensor_value_info("h0", TensorProto.FLOAT, [2, "batch", 3])
    out = helper.make_tensor_value_info("h", TensorProto.FLOAT, [2, "batch", 3])
    model = helper.make_model(helper.make_graph([helper.make_node("Neg", ["h0"], ["h"])], "g", [state], [out]),
                              opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(tmp_path / "s.onnx"))
    graph = zoo.GraphSpec(inputs=(zoo.TensorSpec("h0", (2, "batch", 3)),), outputs=(zoo.TensorSpec("h", (2, "batch", 3)),))
    plan = trt.engine_plan(graph, {"h0": [2, "batch", 3]}, {**TRT_CONFIG, "opt_batch": 2, "max_batch": 2}, "fp32")
    runner = BufferReusingRunner(tmp_path / "s.onnx")
    h0 = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    with trt.TrtBackend(runner, graph, "trt", plan) as backend:
        np.testing.assert_array_equal(backend.run({"h0": h0})["h"], -h0)
    assert [c["h0"] for c in runner.calls] == [(2, 2, 3), (2, 2, 3), (2, 1, 3)]


def test_trt_backend_refuses_axes_outside_the_profile(tmp_path):
    graph = zoo.get_spec("gpt2").with_config().graph("decoder")
    plan = trt.engine_plan(graph, {t.name: list(t.shape) for t in graph.inputs}, TRT_CONFIG, "fp32")
    runner = types.SimpleNamespace(activate=lambda: None, deactivate=lambda: None, infer=None)
    backend = trt.TrtBackend(runner, graph, "trt", plan)
    context = zoo.get_spec("gpt2").with_config().config["block_size"]
    feeds = {t.name: np.zeros([{"batch": 1, "sequence_length": 1, "past_sequence_length": context}.get(d, d) for d in t.shape],
                              np.int64 if t.dtype == "int64" else np.float32) for t in graph.inputs}
    with pytest.raises(ZooError, match=f"past_sequence_length {context}, outside the engine's profile 0..{context - 1}"):
        backend.run(feeds)


def test_polygraphys_onnx_runtime_runner_fits_the_backend_and_engine_checks(tmp_path):
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

    path = _linear_onnx(tmp_path / "g.onnx")
    plan = trt.engine_plan(GRAPH, {"x": ["batch", 4]}, {**TRT_CONFIG, "opt_batch": 4, "max_batch": 16}, "fp32")
    with trt.TrtBackend(OnnxrtRunner(SessionFromOnnx(str(path))), GRAPH, "trt", plan) as backend:
        report = trt.check_engine(backend, OnnxBackend(path, GRAPH), GRAPH, plan, TRT_CONFIG, seed=0)
    assert report["points"] == [{"batch": 1}, {"batch": 4}, {"batch": 16}] and report["outputs"]["y"]["passed"]

    class Off:
        """An 'engine' that is wrong by 0.01 everywhere."""

        def run(self, feeds):
            return {"y": OnnxBackend(path, GRAPH).run(feeds)["y"] + 0.01}

    with pytest.raises(ValidationError, match="TensorRT fp32 engine and ONNX Runtime disagree.*output 'y'.*the engine was not kept"):
        trt.check_engine(Off(), OnnxBackend(path, GRAPH), GRAPH, plan, {**TRT_CONFIG, "atol_fp32": 1e-3, "rtol": 0.0}, seed=0)


def test_gpt2_decoder_runs_at_every_validation_point(tmp_path):
    """The declared ranges describe inputs the model accepts: a cache of length 0 (the first call of
    `zoo run gpt2`) and a cache one short of the context, through the backend's profile checks."""
    from zoo.testing import save_random_weights

    weights = save_random_weights("gpt2", tmp_path / "g.safetensors")
    bundle = zoo.export("gpt2", out=tmp_path / "out", weights=weights, log=lambda line: None)
    graph = zoo.get_spec("gpt2").with_config().graph("decoder")
    path = bundle / json.loads((bundle / "model.json").read_text())["graphs"]["decoder"]["file"]
    config = {**TRT_CONFIG, "opt_batch": 2, "max_batch": 2}
    plan = trt.engine_plan(graph, trt.onnx_input_shapes(path), config, "fp32")
    with trt.TrtBackend(BufferReusingRunner(path), graph, "trt", plan) as backend:
        report = trt.check_engine(backend, OnnxBackend(path, graph), graph, plan, config, seed=0)
    assert {"batch": 1, "sequence_length": 1, "past_sequence_length": 0} in report["points"]
    assert all(output["passed"] for output in report["outputs"].values())


# -- compatibility on load, caches, providers, dependencies --------------------------------------------------


IDENTITY = {"tensorrt_version": "10.16.0", "gpu": "NVIDIA H200", "compute_capability": "9.0"}


def test_engine_compatibility_compares_tensorrt_version_and_gpu():
    assert trt.compatibility_problem(dict(IDENTITY), IDENTITY) is None
    problem = trt.compatibility_problem({**IDENTITY, "tensorrt_version": "10.9.0"}, IDENTITY)
    assert problem == "TensorRT 10.9.0, this machine has 10.16.0"
    problem = trt.compatibility_problem({**IDENTITY, "gpu": "NVIDIA A100", "compute_capability": "8.0"}, IDENTITY)
    assert "NVIDIA A100 (compute capability 8.0), this machine has a NVIDIA H200 (9.0)" in problem


def test_an_engine_for_another_tensorrt_is_rebuilt_with_a_note(monkeypatch, tmp_path, capsys):
    bundle = tmp_path / "b"
    bundle.mkdir()
    plan = trt.engine_plan(GRAPH, {"x": ["batch", 4]}, TRT_CONFIG, "fp16")
    entry = {**IDENTITY, "tensorrt_version": "10.9.0", "file": "model-fp16.plan", "plan": plan}
    (bundle / "model.json").write_text(json.dumps({"model": "m", "graphs": {"model": {"file": "model.onnx"}},
                                                   "engines": {"model": {"fp16": entry}}}))
    opened, built = [], []
    monkeypatch.setattr(trt, "missing", lambda: None)
    monkeypatch.setattr(trt, "installed", lambda: (None, None, dict(IDENTITY)))
    monkeypatch.setattr(trt, "open_engine", lambda path, graph, name, plan: opened.append(path) or "engine")

    def rebuild(path, config, precision, log):
        built.append(precision)
        manifest = json.loads((path / "model.json").read_text())
        manifest["engines"]["model"]["fp16"].update(IDENTITY)
        (path / "model.json").write_text(json.dumps(manifest))

    monkeypatch.setattr(trt, "build_engines", rebuild)
    assert trt.engine_backend(bundle, GRAPH, "fp16", "trt-fp16", TRT_CONFIG) == "engine"
    err = capsys.readouterr().err.strip().splitlines()
    assert built == ["fp16"] and err == ["zoo: note: rebuilding the fp16 TensorRT engine of m/model: "
                                         "it was built for TensorRT 10.9.0, this machine has 10.16.0"]
    assert trt.engine_backend(bundle, GRAPH, "fp16", "trt-fp16", TRT_CONFIG) == "engine"  # now it fits: no rebuild
    assert built == ["fp16"] and capsys.readouterr().err == ""

    def undeserializable(path, graph, name, plan):
        raise trt.EngineMismatch(f"{path} does not deserialize with TensorRT 10.16.0")

    monkeypatch.setattr(trt, "open_engine", undeserializable)
    with pytest.raises(trt.EngineMismatch):  # rebuilt once, then the fresh engine is opened (and fails here)
        trt.engine_backend(bundle, GRAPH, "fp16", "trt-fp16", TRT_CONFIG)
    assert built == ["fp16", "fp16"] and "does not deserialize" in capsys.readouterr().err


def test_timing_cache_is_keyed_by_tensorrt_version_and_gpu(tmp_path):
    default = trt.timing_cache_path(TRT_CONFIG, "10.16.0", "NVIDIA H200")
    assert default == trt.cache_root() / "tensorrt" / "timing-trt10.16.0-nvidia-h200.cache"
    chosen = trt.timing_cache_path({**TRT_CONFIG, "timing_cache": str(tmp_path / "t.cache")}, "11.2.0", "NVIDIA L4")
    assert chosen == tmp_path / "t-trt11.2.0-nvidia-l4.cache"


def test_missing_names_every_module_the_path_imports(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name in ("tensorrt", "polygraphy") else real(name))
    monkeypatch.setattr(trt, "gpu_count", lambda: 1)
    assert trt.missing() == "no TensorRT, polygraphy (pip install 'aigc-zoo[trt]')"
    monkeypatch.setattr(trt, "gpu_count", lambda: 0)
    assert trt.missing().startswith("no NVIDIA GPU and no TensorRT, polygraphy")


def test_the_trt_extra_pins_tested_majors_and_installs_what_the_path_imports():
    import tomllib

    from conftest import ROOT

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    trt_extra = " ".join(extras["trt"])
    assert "tensorrt>=10,<12" in trt_extra and "polygraphy" in trt_extra and "aigc-zoo[gpu]" in trt_extra
    assert any(requirement.startswith("onnxruntime-gpu") for requirement in extras["gpu"])  # what validates engines
    assert set(trt.REQUIRED_MODULES) == {"tensorrt", "polygraphy", "onnxruntime"}


def test_onnx_runtime_falling_back_to_another_provider_is_caught(monkeypatch, tmp_path, capsys):
    """ONNX Runtime quietly runs on the CPU when a requested provider cannot start; here CUDA is
    claimed available but is not, which is exactly such a fallback."""
    path = _linear_onnx(tmp_path / "g.onnx")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(UnavailableError, match="asked ONNX Runtime for CUDAExecutionProvider, but the session runs on CPUExecutionProvider"):
        OnnxBackend(path, GRAPH, "onnx-cuda")
    backend = OnnxBackend(path, GRAPH, "onnx-cuda", on_fallback="warn")
    assert backend.provider == "CPUExecutionProvider" and "zoo: warning:" in capsys.readouterr().err


# -- the ONNX TensorRT builds from ----------------------------------------------------------------------------


def test_build_engine_refuses_a_bundle_of_another_precision(tiny_weights, tmp_path):
    assert zoo_cli("export", "dcgan", "--weights", tiny_weights, "-o", tmp_path).returncode == 0
    result = zoo_cli("build-engine", tmp_path / "dcgan", "--precision", "fp16")
    assert_clean_error(result, "holds fp32 graphs", "zoo export dcgan --precision fp16")
    with pytest.raises(ZooError, match="quantized for ONNX Runtime's CPU"):
        trt.check_bundle_precision({"model": "m", "precision": "int8",
                                    "graphs": {"model": {"reduced_precision": {"int8_mode": "static"}}}}, "int8")


@needs_data
def test_int8_qdq_onnx_for_tensorrt_is_validated_by_the_task_metric(tmp_path, plugin_dir):
    from test_deploy import MLP_PLUGINS

    from zoo.testing import save_random_weights

    plugin_dir("mlpgen", MLP_PLUGINS)
    weights = save_random_weights("mlpgen", tmp_path / "m.safetensors")
    result = zoo_cli("export", "mlpgen", "--precision", "int8", "--weights", weights, "-o", tmp_path, "--data", MNIST,
                     env={"ZOO_EXPORT_INT8_MODE": "tensorrt"})
    assert result.returncode == 0, result.stderr
    manifest = read_json(tmp_path / "mlpgen" / "model.json")
    reduced = manifest["graphs"]["model"]["reduced_precision"]
    assert reduced["int8_mode"] == "tensorrt" and reduced["quantized_ops"] == ["Gemm"]
    assert reduced["qdq"]["quantized_ops"] == {"Gemm": 2} and reduced["qdq"]["quantize_linear"] >= 2
    assert "task's quality metric" in reduced["calibration"]
    assert reduced["quality"]["metric"] == "heldout_fd_pix8" and reduced["quality"]["relative_drop"] <= 0.1
    model = onnx.load(str(tmp_path / "mlpgen" / "model.onnx"))
    zero_points = [t for t in model.graph.initializer if t.name.endswith("zero_point")]
    assert zero_points and all(t.data_type == TensorProto.INT8 and not onnx.numpy_helper.to_array(t).any() for t in zero_points)
    trt.check_bundle_precision(manifest, "int8")  # what build-engine accepts
    plan = trt.qdq_plan(tmp_path / "mlpgen" / "model.onnx", zoo.api.configuration()["export"])
    assert plan["state"] == "quantized" and plan["quantized_ops"] == {"Gemm": 2}
