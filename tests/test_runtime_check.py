"""`zoo check BUNDLE --runtime R` predicts from the ONNX files alone whether R loads a bundle; here each
prediction is compared with what the runtime really does, for the default bundle of every model."""

import json
import shutil

import numpy as np
import pytest

from conftest import assert_clean_error, read_json, zoo_cli
from zoo.preflight import check_bundle


def _graphs(bundle):
    return read_json(bundle / "model.json")["graphs"]


def test_ort_predictions_match_onnx_runtime(default_bundles):
    import onnxruntime

    for name, bundle in default_bundles.items():
        predicted = {g.graph: g for g in check_bundle(bundle, "ort", onnxruntime.__version__).graphs}
        for graph, entry in _graphs(bundle).items():
            onnxruntime.InferenceSession(str(bundle / entry["file"]), providers=["CPUExecutionProvider"])
            assert predicted[graph].loads, (name, graph, predicted[graph].blockers)


def test_ort_check_names_the_blocking_operator_and_is_right(default_bundles, tmp_path):
    import onnx
    import onnxruntime

    bundle = tmp_path / "dcgan"
    shutil.copytree(default_bundles["dcgan"], bundle)
    path = bundle / "model.onnx"
    model = onnx.load(str(path))
    model.graph.node[-1].domain = "example.custom"  # an operator of a domain ONNX Runtime has no kernels for
    model.opset_import.add(domain="example.custom", version=1)
    onnx.save(model, str(path))
    report = check_bundle(bundle, "ort", onnxruntime.__version__)
    assert not report.loads and "domain 'example.custom'" in report.graphs[0].blockers[0]
    with pytest.raises(Exception):
        onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    result = zoo_cli("check", bundle, "--runtime", "ort", "--json")
    assert result.returncode == 1 and json.loads(result.stdout)["loads"] is False


def _opencv_runs(cv2, bundle, entry):
    """Whether OpenCV's DNN imports the graph and reproduces every output of the bundle's test vectors."""
    from zoo.export.onnx import read_test_data

    inputs, outputs = read_test_data(bundle / entry["test_data"], entry)
    try:
        net = cv2.dnn.readNetFromONNX(str(bundle / entry["file"]))
        for name, array in inputs.items():
            # OpenCV 5 takes integer inputs (token ids) as they are; OpenCV 4 computes in float32 only.
            integer = array.dtype == np.int64 and int(cv2.__version__.split(".")[0]) >= 5
            net.setInput(array if integer else np.asarray(array, dtype=np.float32), name)
        results = net.forward(list(outputs))
    except cv2.error:
        return False
    # as the C++ example judges: within atol 1e-4 + rtol 1e-3 of the outputs PyTorch computed
    return all(np.asarray(r).size == e.size and np.allclose(np.asarray(r).reshape(e.shape), e, atol=1e-4, rtol=1e-3)
               for r, e in zip(results, outputs.values()))


def test_opencv_predictions_match_opencv_python(default_bundles):
    cv2 = pytest.importorskip("cv2", reason="OpenCV's Python package is not installed: pip install opencv-python-headless")
    loaded = []
    for name, bundle in default_bundles.items():
        predicted = {g.graph: g for g in check_bundle(bundle, "opencv", cv2.__version__).graphs}
        for graph, entry in _graphs(bundle).items():
            real = _opencv_runs(cv2, bundle, entry)
            assert real == predicted[graph].loads, (name, graph, real, predicted[graph].blockers)
            loaded += [name] * real
    assert {"dcgan", "gan", "cnn", "cartpole"} <= set(loaded)


def test_check_is_a_clean_error_on_a_folder_that_is_no_bundle(tmp_path):
    assert_clean_error(zoo_cli("check", tmp_path, "--runtime", "opencv"), "model.json")


@pytest.mark.parametrize("model", ["cartpole", "cnn"])
def test_ort_mobile_predictions_match_the_ort_format_loader(model, default_bundles, tmp_path):
    """A minimal (mobile) ONNX Runtime build reads only ORT-format files: `zoo check --runtime ort-mobile`
    refuses a bundle without them and accepts what `zoo export --target ort` writes. The outcome is checked
    with ONNX Runtime's own ORT-format loader (`session.load_model_format = ORT`, the loader a minimal build
    has), which must load each .ort file and reproduce the bundle's test vectors."""
    import onnxruntime

    from zoo.export.onnx import read_test_data
    from zoo.exporting import export_model

    without = check_bundle(default_bundles[model], "ort-mobile", onnxruntime.__version__)
    assert not without.loads and all("ORT format" in g.blockers[-1] for g in without.graphs)

    bundle = export_model(model, "ort", tmp_path, log=lambda line: None)
    predicted = {g.graph: g for g in check_bundle(bundle, "ort-mobile", onnxruntime.__version__).graphs}
    for graph, entry in _graphs(bundle).items():
        assert predicted[graph].loads, predicted[graph].blockers
        options = onnxruntime.SessionOptions()
        options.add_session_config_entry("session.load_model_format", "ORT")
        session = onnxruntime.InferenceSession(str(bundle / entry["ort"]["file"]), options, providers=["CPUExecutionProvider"])
        inputs, expected = read_test_data(bundle / entry["test_data"], entry)
        produced = dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs)))
        for output, reference in expected.items():
            np.testing.assert_allclose(produced[output], reference, atol=1e-4, rtol=1e-3)
