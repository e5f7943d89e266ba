"""Interpolated Kneser-Ney: a proper distribution everywhere, and the exported
lookup graph equal to the Python implementation."""

import numpy as np
import pytest
import torch

from zoo.plugins.ngram.model import build, count_tables


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, size=2000)  # a vocabulary of 8: tokens 6 and 7 never occur
    tables = count_tables(ids, vocab=8, n=4, discount=0.75)
    built = build(vocab_size=8, n=4, discount=0.75, contexts=[len(tables[f"keys_{k}"]) for k in (1, 2, 3)])
    built.load_state_dict({k: torch.from_numpy(v) for k, v in tables.items()})
    return built.eval()


def test_probabilities_sum_to_one_for_every_context(model):
    contexts = torch.tensor(np.stack(np.meshgrid(*[np.arange(8)] * 3, indexing="ij"), -1).reshape(-1, 3))
    probs = model(contexts)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(len(contexts)), atol=1e-5, rtol=0)


def test_unseen_tokens_and_contexts_get_probability(model):
    unseen_context = torch.tensor([[7, 6, 7]])
    probs = model(unseen_context)
    assert (probs > 0).all()
    seen = model(torch.tensor([[0, 1, 2]]))
    assert (seen > 0).all() and seen[0, 6] < seen[0, :6].min()


def test_unseen_context_backs_off_to_the_shorter_one(model):
    """Token 6 never occurs, so [7, 6, 2] and [6, 6, 2] are unseen down to [2]: both predict what [2] does."""
    torch.testing.assert_close(model(torch.tensor([[7, 6, 2]])), model(torch.tensor([[6, 6, 2]])))


def test_onnx_graph_equals_python(model, tmp_path):
    import onnxruntime as ort

    path = tmp_path / "ngram.onnx"
    example = torch.tensor([[0, 1, 2], [3, 4, 5]])
    torch.onnx.export(model, (example,), str(path), input_names=["context"], output_names=["probs"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    contexts = np.random.default_rng(1).integers(0, 8, size=(64, 3))
    onnx_probs = session.run(None, {"context": contexts})[0]
    np.testing.assert_allclose(onnx_probs, model(torch.from_numpy(contexts)).numpy(), atol=1e-6)
