"""Deployment targets: TensorRT (readiness and build plan here, engines on a GPU),
fp16/int8 ONNX validated by the task metric, the ORT format and Triton repositories."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import zoo
from conftest import MNIST, assert_clean_error, needs_data, read_json, zoo_cli
from zoo.errors import ConfigError
from zoo.export import trt
from zoo.export.onnx import read_test_data

NO_ENGINES = trt.missing()
needs_tensorrt = pytest.mark.skipif(NO_ENGINES is not None, reason=f"TensorRT engines need a GPU and TensorRT: this machine has {NO_ENGINES}")

TRT_CONFIG = {**{s.key: s.default for s in trt.SETTINGS}, "workspace_mb": 512}

# A throwaway generator made of Linear layers (Gemm/MatMul), the operators int8 speeds up,
# and a two-graph model (encoder/decoder) for the multi-graph layouts.
MLP_PLUGINS = '''
import zoo

@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="mlpgen", task="image-generation", builder="mlpgen:build", config={"hidden": 64},
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("z", ("batch", 16)),),
                              outputs=(zoo.TensorSpec("image", ("batch", 1, 32, 32)),)),),
    ))
    register(zoo.ModelSpec(
        name="twograph", task="image-generation", builder="mlpgen:build", config={"hidden": 64},
        graphs=(
            zoo.GraphSpec(name="decoder", inputs=(zoo.TensorSpec("z", ("batch", 16)),),
                          outputs=(zoo.TensorSpec("image", ("batch", 1, 32, 32)),)),
            zoo.GraphSpec(name="first_layer", module="mlpgen:first_layer",
                          inputs=(zoo.TensorSpec("z", ("batch", 16)),), outputs=(zoo.TensorSpec("h", ("batch", 64)),)),
        ),
    ))

def build(hidden=64):
    import torch

    class MLPGenerator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(16, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1024), torch.nn.Tanh())
        def forward(self, z):
            return self.net(z).reshape(-1, 1, 32, 32)
    return MLPGenerator()

def first_layer(model):
    return model.net[0]
'''


@pytest.fixture
def mlp_weights(plugin_dir, tmp_path):
    import torch
    from safetensors.torch import save_file

    plugin_dir("mlpgen", MLP_PLUGINS)
    torch.manual_seed(0)
    model = zoo.build("mlpgen")
    path = tmp_path / "mlpgen.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={"zoo.model": "mlpgen", "zoo.config": json.dumps({"hidden": 64})})
    return path


# -- TensorRT -------------------------------------------------------------------------------------------


@pytest.mark.skipif(NO_ENGINES is None, reason="this machine can build TensorRT engines")
def test_trt_target_fails_at_once_without_gpu_or_tensorrt(tiny_weights, tmp_path):
    result = zoo_cli("export", "dcgan", "--target", "trt", "--weights", tiny_weights, "-o", tmp_path)
    assert_clean_error(result, NO_ENGINES, "zoo export dcgan --target onnx", "zoo build-engine out/dcgan/")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(NO_ENGINES is None, reason="this machine can build TensorRT engines")
def test_build_engine_needs_a_bundle_and_a_gpu(tiny_weights, tmp_path):
    assert_clean_error(zoo_cli("build-engine", tmp_path), "not an exported bundle", "--target onnx")
    assert zoo_cli("export", "dcgan", "--weights", tiny_weights, "-o", tmp_path).returncode == 0
    before = (tmp_path / "dcgan" / "model.json").read_text()
    assert_clean_error(zoo_cli("build-engine", tmp_path / "dcgan"), NO_ENGINES, "zoo build-engine")
    assert (tmp_path / "dcgan" / "model.json").read_text() == before


def test_trt_readiness_report_for_dcgan(tiny_weights):
    result = zoo_cli("export", "dcgan", "--target", "trt", "--check-only", "--weights", tiny_weights,
                     "--precision", "int8", "--max-batch", "32", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    graph = report["graphs"]["model"]
    assert report["ready"] and graph["unsupported"] == [] and graph["traps"] == []
    assert graph["operators"]["ConvTranspose"] == 4
    plan = graph["engine_plan"]
    assert plan["profile"]["z"] == {"min": [1, 100], "opt": [8, 100], "max": [32, 100]}
    assert plan["builder_flags"] == [] and plan["network_flags"] == ["STRONGLY_TYPED"] and plan["cleared_flags"] == ["TF32"]
    assert plan["quantization"]["state"] == "planned" and plan["quantization"]["quantized_ops"] == {"ConvTranspose": 4}
    assert plan["validation_points"] == [{"batch": 1}, {"batch": 8}, {"batch": 32}]
    text = zoo_cli("export", "dcgan", "--target", "trt", "--check-only", "--weights", tiny_weights)
    assert "graph 'model': ready" in text.stdout and "profile z: min [1, 100], opt [8, 100], max [64, 100]" in text.stdout


def _save(tmp_path, nodes, inputs, outputs, initializers=()):
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(initializers)),
                              opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / "g.onnx"
    onnx.save(model, str(path))
    return path


def test_readiness_flags_reflect_padding_runtime_conv_weights_int64_and_unsupported_ops(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 8, 8])
    style = helper.make_tensor_value_info("style", TensorProto.FLOAT, [4, 4, 3, 3])
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    u = helper.make_tensor_value_info("u", TensorProto.INT64, None)
    base = helper.make_tensor("base", TensorProto.FLOAT, [4, 4, 3, 3], np.ones(144, np.float32))
    pads = helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1])
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["padded"], mode="reflect"),
        helper.make_node("Mul", ["base", "style"], ["weight"]),  # modulated convolution: weights from an input
        helper.make_node("Conv", ["padded", "weight"], ["y"]),
        helper.make_node("Unique", ["ids"], ["u"]),
    ]
    report = trt.readiness(_save(tmp_path, nodes, [x, style, ids], [y, u], [base, pads]))
    assert not report["ready"] and report["unsupported"] == ["Unique"]
    traps = " | ".join(report["traps"])
    assert "reflect padding" in traps and "weights are computed at run time" in traps and "int64 graph inputs/outputs (ids, u)" in traps


def test_readiness_folds_constant_weights_before_judging(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    base = helper.make_tensor("base", TensorProto.FLOAT, [4, 4, 3, 3], np.ones(144, np.float32))
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [1], [0.5])
    nodes = [helper.make_node("Mul", ["base", "scale"], ["weight"]), helper.make_node("Conv", ["x", "weight"], ["y"])]
    report = trt.readiness(_save(tmp_path, nodes, [x], [y], [base, scale]))
    assert report["nodes_before_folding"] == 2 and report["nodes_after_folding"] == 1
    assert report["ready"] and report["traps"] == [] and report["operators"] == {"Conv": 1}


def test_engine_plan_is_data():
    graph = zoo.GraphSpec(inputs=(zoo.TensorSpec("tokens", ("batch", "sequence")), zoo.TensorSpec("scale", (3,))),
                          outputs=(zoo.TensorSpec("y", ("batch",)),), example_axes={"sequence": 64})
    shapes = {"tokens": ["batch", "sequence"], "scale": [3]}
    plan = trt.engine_plan(graph, shapes, TRT_CONFIG, "fp16")
    assert plan["profile"]["tokens"] == {"min": [1, 64], "opt": [8, 64], "max": [64, 64]}
    assert plan["profile"]["scale"] == {"min": [3], "opt": [3], "max": [3]}
    assert plan["builder_flags"] == [] and plan["workspace_bytes"] == 512 << 20 and "fp16 ONNX" in plan["precision_route"]
    assert trt.engine_plan(graph, {"tokens": [1, 64], "scale": [3]}, TRT_CONFIG, "fp32")["profile"]["tokens"]["max"] == [1, 64]
    assert trt.engine_plan(graph, shapes, {**TRT_CONFIG, "tf32": True}, "fp32")["cleared_flags"] == []
    with pytest.raises(ConfigError, match="min .* <= opt"):
        trt.engine_plan(graph, shapes, {**TRT_CONFIG, "min_batch": 16}, "fp32")
    with pytest.raises(ConfigError, match="symbolic axis 'length'"):
        trt.engine_plan(graph, {"tokens": ["batch", "length"]}, TRT_CONFIG, "fp32")


def test_onnx_trt_and_onnx_cuda_backends_fail_clearly_without_their_provider(tiny_weights):
    for backend, provider in (("onnx-trt", "TensorrtExecutionProvider"), ("onnx-cuda", "CUDAExecutionProvider")):
        if provider in ort.get_available_providers():
            continue
        assert_clean_error(zoo_cli("run", "dcgan", "--weights", tiny_weights, "--backend", backend, "--n", "1"), provider, "--backend onnx")


@pytest.mark.gpu
@needs_tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_build_engine_on_a_gpu(tiny_weights, tmp_path, precision):
    """The whole engine path on a GPU: the bundle at the precision (int8: Q/DQ for TensorRT), an engine
    per graph validated at the profile's points, the timing cache keyed and extended, the backend."""
    env = {"ZOO_EXPORT_INT8_MODE": "tensorrt", "ZOO_DATA": str(MNIST.parent)}
    assert zoo_cli("export", "dcgan", "--weights", tiny_weights, "--precision", precision, "--data", MNIST.parent,
                   "-o", tmp_path, env=env).returncode == 0
    cache = tmp_path / "timing.cache"
    result = zoo_cli("build-engine", tmp_path / "dcgan", "--precision", precision, "--timing-cache", cache)
    assert result.returncode == 0, result.stderr
    engine = read_json(tmp_path / "dcgan" / "model.json")["engines"]["model"][precision]
    assert engine["tensorrt_version"] and engine["gpu"] and engine["compute_capability"]
    assert engine["parity"]["points"] == [{"batch": 1}, {"batch": 8}, {"batch": 64}]
    keyed = trt.timing_cache_path({**TRT_CONFIG, "timing_cache": str(cache)}, engine["tensorrt_version"], engine["gpu"])
    assert (tmp_path / "dcgan" / engine["file"]).stat().st_size > 0 and keyed.stat().st_size > 0
    size = keyed.stat().st_size
    assert zoo_cli("build-engine", tmp_path / "dcgan", "--precision", precision, "--timing-cache", cache).returncode == 0
    assert keyed.stat().st_size >= size  # the cache was read and extended, not replaced
    backend = "trt" if precision == "fp32" else f"trt-{precision}"
    run = zoo_cli("run", "dcgan", "--weights", tiny_weights, "--backend", backend, "--n", "100", "-o", tmp_path / "g.png", env=env)
    assert run.returncode == 0, run.stderr  # 100 samples: more than the profile's max batch 64, split in two


# -- fp16 / int8 ONNX -------------------------------------------------------------------------------------


@needs_data
def test_fp16_export_keeps_float32_io_and_reports_the_task_metric(tiny_weights, tmp_path):
    result = zoo_cli("export", "dcgan", "--precision", "fp16", "--weights", tiny_weights, "-o", tmp_path, "--data", MNIST)
    assert result.returncode == 0, result.stderr
    bundle = tmp_path / "dcgan"
    entry = read_json(bundle / "model.json")["graphs"]["model"]
    quality = entry["reduced_precision"]["quality"]
    assert quality["metric"] == "heldout_fd_pix8" and quality["examples"] == 500 and abs(quality["relative_drop"]) < 0.1
    model = onnx.load(str(bundle / "model.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert any(t.data_type == TensorProto.FLOAT16 for t in model.graph.initializer)
    inputs, outputs = read_test_data(bundle / "test_data_set_0", entry)
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, inputs)[0], outputs["image"])


def test_int8_refuses_models_it_would_not_change(tiny_weights, tmp_path):
    result = zoo_cli("export", "dcgan", "--precision", "int8", "--weights", tiny_weights, "-o", tmp_path)
    assert_clean_error(result, "int8 does not apply to 'dcgan'", "MatMul, Gemm, LSTM", "--precision fp32")
    assert list(tmp_path.iterdir()) == []


@needs_data
def test_int8_quantizes_gemm_and_reports_the_metric_drop(mlp_weights, tmp_path):
    # "auto" picks static for a graph without LSTM nodes: the outcome never depends on a timing.
    result = zoo_cli("export", "mlpgen", "--precision", "int8", "--weights", mlp_weights, "-o", tmp_path, "--data", MNIST)
    assert result.returncode == 0, result.stderr
    entry = read_json(tmp_path / "mlpgen" / "model.json")["graphs"]["model"]
    reduced = entry["reduced_precision"]
    assert reduced["int8_mode"] == "static" and set(reduced["quantized_ops"]) == {"Gemm"}
    assert set(reduced["fastest_ms_batch8"]) == {"fp32", "int8"} and reduced["speedup_vs_fp32"] > 0
    assert reduced["quality"]["relative_drop"] <= 0.1 and "relative drop" in result.stdout + result.stderr
    ops = {n.op_type for n in onnx.load(str(tmp_path / "mlpgen" / "model.onnx")).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeLinear", "QuantizeLinear", "QGemm", "QLinearMatMul"}


@needs_data
def test_bench_compares_precisions_and_skips_what_cannot_run(mlp_weights):
    result = zoo_cli("bench", "mlpgen", "--weights", mlp_weights, "--backends", "torch,onnx,onnx-int8,trt",
                     "--batch", "4", "--runs", "3", "--warmup", "1", "--data", MNIST)
    assert result.returncode == 0, result.stderr
    rows = [line.split()[1] for line in result.stdout.splitlines()[2:] if line.strip() and line.split()[0].isdigit()]
    assert rows[:3] == ["torch", "onnx", "onnx-int8"]
    if NO_ENGINES:
        assert "skipped trt: backend 'trt' runs TensorRT engines" in result.stdout


# -- ORT format and Triton ----------------------------------------------------------------------------------


def test_ort_format_bundle(tiny_weights, tmp_path):
    result = zoo_cli("export", "dcgan", "--target", "ort", "--weights", tiny_weights, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    bundle = tmp_path / "dcgan"
    entry = read_json(bundle / "model.json")["graphs"]["model"]
    assert entry["ort"]["file"] == "model.ort" and entry["ort"]["sha256"] == zoo.file_sha256(bundle / "model.ort")
    config = (bundle / entry["ort"]["operator_config"]).read_text()
    assert "ai.onnx;" in config and "ConvTranspose" in config and str(tmp_path) not in config
    inputs, outputs = read_test_data(bundle / "test_data_set_0", entry)
    session = ort.InferenceSession(str(bundle / "model.ort"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, inputs)[0], outputs["image"], atol=1e-4, rtol=1e-3)


def _parse_triton(path):
    from google.protobuf import text_format

    from zoo.export.triton import model_config_pb2

    schema = model_config_pb2()
    if schema is None:
        pytest.skip("tritonclient (model_config_pb2) is not installed")
    return text_format.Parse(path.read_text(), schema.ModelConfig())


def test_triton_repository_parses_with_tritons_schema(tiny_weights, tmp_path):
    result = zoo_cli("export", "dcgan", "--target", "triton", "--weights", tiny_weights, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    repository = tmp_path / "dcgan"
    config = _parse_triton(repository / "dcgan" / "config.pbtxt")
    schema = type(config)
    assert config.name == "dcgan" and config.platform == "onnxruntime_onnx" and config.max_batch_size == 64
    assert [(i.name, list(i.dims)) for i in config.input] == [("z", [100])]
    assert [(o.name, list(o.dims)) for o in config.output] == [("image", [1, 32, 32])]
    assert config.input[0].data_type == schema.DESCRIPTOR.fields_by_name["input"].message_type.fields_by_name["data_type"].enum_type.values_by_name["TYPE_FP32"].number
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 32]
    session = ort.InferenceSession(str(repository / "dcgan" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(None, {"z": np.zeros((3, 100), np.float32)})[0].shape == (3, 1, 32, 32)
    assert read_json(repository / "model.json")["graphs"]["model"]["file"] == "dcgan/1/model.onnx"


def test_triton_static_batch_and_multi_graph_models(mlp_weights, tmp_path, plugin_dir):
    from safetensors.torch import save_file

    weights = tmp_path / "two.safetensors"
    save_file({k: v.contiguous() for k, v in zoo.build("twograph").state_dict().items()}, str(weights),
              metadata={"zoo.model": "twograph", "zoo.config": json.dumps({"hidden": 64})})
    result = zoo_cli("export", "twograph", "--target", "triton", "--weights", weights, "-o", tmp_path / "out", "--static-batch")
    assert result.returncode == 0, result.stderr
    repository = tmp_path / "out" / "twograph"
    assert sorted(p.name for p in repository.iterdir()) == ["model.json", "twograph_decoder", "twograph_first_layer"]
    config = _parse_triton(repository / "twograph_first_layer" / "config.pbtxt")
    assert config.max_batch_size == 0 and [list(o.dims) for o in config.output] == [[1, 64]]
    assert not config.HasField("dynamic_batching")
