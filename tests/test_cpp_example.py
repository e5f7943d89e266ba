"""examples/cpp: the C++ program builds against OpenCV's DNN module and reproduces a
bundle's test vectors. Needs cmake, a C++ compiler, libopencv-dnn-dev and nlohmann-json3-dev
(.ci/run installs them with apt); skipped with the reason where they are missing."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, numpy_helper

import zoo.api
from conftest import ROOT, read_json, zoo_cli

EXAMPLE = ROOT / "examples" / "cpp"
APT = "apt-get install -y --no-install-recommends cmake g++ libopencv-dnn-dev nlohmann-json3-dev"
# Models the C++ example runs (docs/deployment.md says why the others do not).
CPP_MODELS = ["dcgan", "cnn", "cartpole"]


def _header(name):
    return any((Path(root) / name).is_file() for root in ("/usr/include", "/usr/local/include", "/usr/include/opencv4", "/usr/local/include/opencv4"))


def _missing():
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    missing += [header for header in ("opencv2/dnn.hpp", "nlohmann/json.hpp") if not _header(header)]
    return missing


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    missing = _missing()
    if missing:
        pytest.skip(f"the C++ example needs {', '.join(missing)}: {APT}")
    build = tmp_path_factory.mktemp("cpp-build")
    for step in (["cmake", "-S", EXAMPLE, "-B", build, "-DZOO_RUNTIME=opencv"], ["cmake", "--build", build, "-j2"]):
        result = subprocess.run([str(a) for a in step], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return build / "zoo_run_bundle"


@pytest.mark.parametrize("model", CPP_MODELS)
def test_cpp_program_reproduces_the_test_vectors(program, model, tmp_path):
    if model not in {spec.name for spec in zoo.api.list_models()}:
        pytest.skip(f"model '{model}' is not installed in this checkout")
    # OpenCV 4.6 reads the TorchScript exporter's graphs at opset <= 12 (LSTM needs <= 12; the dynamo
    # exporter's opset-18 Unsqueeze with an axes input is rejected).
    exported = zoo_cli("export", model, "--exporter", "torchscript", "--opset", "12", "-o", tmp_path)
    assert exported.returncode == 0, exported.stderr
    bundle = tmp_path / model
    for graph in read_json(bundle / "model.json")["graphs"]:
        result = subprocess.run([str(program), str(bundle), "--graph", graph], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"graph '{graph}'" in result.stdout and "OpenCV DNN 4." in result.stdout and ": ok" in result.stdout


def test_cpp_program_catches_wrong_outputs_and_bad_bundles(program, tmp_path):
    exported = zoo_cli("export", "dcgan", "--exporter", "torchscript", "--opset", "12", "-o", tmp_path)
    assert exported.returncode == 0, exported.stderr
    expected = tmp_path / "dcgan" / "test_data_set_0" / "output_0.pb"
    proto = TensorProto()
    proto.ParseFromString(expected.read_bytes())
    expected.write_bytes(numpy_helper.from_array(numpy_helper.to_array(proto) + np.float32(0.01), proto.name).SerializeToString())
    result = subprocess.run([str(program), str(tmp_path / "dcgan")], capture_output=True, text=True)
    assert result.returncode == 1 and "FAIL" in result.stdout, result.stdout + result.stderr
    missing = subprocess.run([str(program), str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no model.json" in missing.stderr
