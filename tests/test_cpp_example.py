"""examples/cpp: the C++ program builds against OpenCV's DNN module and reproduces a
bundle's test vectors. Needs cmake, a C++ compiler, libopencv-dnn-dev and nlohmann-json3-dev
(.ci/run installs them with apt); skipped with the reason where they are missing."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, numpy_helper

from conftest import ROOT, read_json
from zoo.preflight import check_bundle, opencv_version

EXAMPLE = ROOT / "examples" / "cpp"
APT = "apt-get install -y --no-install-recommends cmake g++ libopencv-dnn-dev nlohmann-json3-dev"
# Models whose default bundles the C++ example runs at least (docs/deployment.md lists every model).
CPP_MODELS = ["dcgan", "gan", "vae", "cnn", "cartpole"]


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


def test_cpp_program_runs_every_default_bundle_opencv_reads_as_zoo_check_predicts(program, default_bundles):
    """`zoo export NAME` with no flags writes what the C++ route runs; `zoo check --runtime opencv` (for the
    OpenCV the program was built against) says which graphs those are, and is right about every graph."""
    version = opencv_version()
    ran = []
    for name, bundle in default_bundles.items():
        predicted = {g.graph: g for g in check_bundle(bundle, "opencv", version).graphs}
        for graph in read_json(bundle / "model.json")["graphs"]:
            result = subprocess.run([str(program), str(bundle), "--graph", graph], capture_output=True, text=True)
            # exit 0: loaded and reproduced the test vectors; 1: computed other numbers; 2: could not load
            assert predicted[graph].loads == (result.returncode == 0), (name, graph, predicted[graph].blockers,
                                                                       result.stdout[-300:] + result.stderr[-600:])
            if predicted[graph].loads:
                assert f"graph '{graph}'" in result.stdout and "OpenCV DNN" in result.stdout and ": ok" in result.stdout
                ran.append(name)
    assert set(CPP_MODELS) <= set(ran), ran


def test_cpp_program_catches_wrong_outputs_and_bad_bundles(program, default_bundles, tmp_path):
    shutil.copytree(default_bundles["dcgan"], tmp_path / "dcgan")
    expected = tmp_path / "dcgan" / "test_data_set_0" / "output_0.pb"
    proto = TensorProto()
    proto.ParseFromString(expected.read_bytes())
    expected.write_bytes(numpy_helper.from_array(numpy_helper.to_array(proto) + np.float32(0.01), proto.name).SerializeToString())
    result = subprocess.run([str(program), str(tmp_path / "dcgan")], capture_output=True, text=True)
    assert result.returncode == 1 and "FAIL" in result.stdout, result.stdout + result.stderr
    missing = subprocess.run([str(program), str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no model.json" in missing.stderr
