"""Batch inference at scale: a bundle runs in Ray Data actors and gives what it gives locally."""

import sys

import numpy as np
import pytest

from conftest import ROOT, zoo_cli
from zoo.bundles import BundleRunner, SeededInputs, graph_from_manifest, read_manifest

ray = pytest.importorskip("ray", reason="Ray Data is not installed; pip install 'aigc-zoo[scale]'")


@pytest.fixture(scope="module")
def bundle(tiny_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    assert zoo_cli("export", "dcgan", "--weights", tiny_weights, "-o", out).returncode == 0
    return out / "dcgan"


def test_bundle_describes_itself(bundle):
    graph, file = graph_from_manifest(read_manifest(bundle))
    assert file == "model.onnx" and [t.name for t in graph.inputs] == ["z"] and graph.outputs[0].shape == ("batch", 1, 32, 32)


def test_ray_data_batch_inference_matches_local_runs(bundle, tmp_path):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import ray_batch_inference as example
    finally:
        sys.path.remove(str(ROOT / "examples"))
    out = tmp_path / "blocks"
    try:
        count, _ = example.run(bundle, samples=96, out=out, actors=2, batch_size=16, address=None)
    finally:
        ray.shutdown()
    assert count == 96
    images = np.concatenate([np.load(p) for p in sorted(out.glob("*.npy"))])
    assert images.shape == (96, 1, 32, 32)
    # Recompute a few samples locally from their ids: Ray must not change any result.
    local = BundleRunner(bundle)
    ids = np.arange(96)
    expected = local(SeededInputs(bundle)({"id": ids}))["image"]
    found = {tuple(np.round(img.ravel()[:16], 5)) for img in images}
    assert all(tuple(np.round(e.ravel()[:16], 5)) in found for e in expected)
