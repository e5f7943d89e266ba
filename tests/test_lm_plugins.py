"""The language-model plugins: build, shipped weights, export parity, whole
greedy generations on PyTorch and ONNX Runtime, one training step."""

import json

import numpy as np
import pytest

import zoo.api
from conftest import DATA, assert_bundle_reproduces_pytorch, zoo_cli

MODELS = ("ngram", "rnn", "lstm", "gpt2")
SHAKESPEARE = DATA / "tinyshakespeare"
needs_text = pytest.mark.skipif(not (SHAKESPEARE / "input.txt").is_file(), reason=f"Tiny Shakespeare not found under {DATA}")


@pytest.mark.parametrize("name", MODELS)
def test_builds_and_lists(name):
    spec = zoo.api.get_spec(name)
    assert spec.task == "text-generation"
    model = zoo.api.build(name)
    assert sum(t.numel() for t in model.state_dict().values()) > 0


@pytest.mark.parametrize("name", MODELS)
def test_shipped_weights_load_with_checksum_and_tokenizer(name):
    from zoo.text import load_tokenizer, tokenizer_path

    resolved = zoo.api.resolve_weights(name)
    assert resolved.sha256, "the card records the sha256"
    model = zoo.api.load(name)  # verifies the checksum
    tokenizer = load_tokenizer(tokenizer_path(resolved.path))
    assert tokenizer.decode(tokenizer.encode("ROMEO: Hark!")) == "ROMEO: Hark!"
    assert tokenizer.vocab_size <= model.zoo_config["vocab_size"]
    assert resolved.card["metrics"]["heldout_bits_per_char"] > 0


@pytest.fixture(scope="module")
def backends():
    """PyTorch and (validated) ONNX Runtime backends of each shipped model."""
    from zoo.runtime import open_backend

    opened = {}

    def get(name):
        if name not in opened:
            spec = zoo.api.get_spec(name)
            model = zoo.api.load(name)
            opened[name] = (open_backend(spec, "torch", loaded=model), open_backend(spec, "onnx"))
        return opened[name]

    return get


@pytest.mark.parametrize("name", MODELS)
def test_greedy_generation_is_identical_on_both_backends(name, backends, tmp_path, monkeypatch):
    """The exported step graph follows PyTorch through a whole greedy generation:
    same tokens, and the same logits at every step."""
    from zoo.tasks.text_generation import Decoder, generate
    from zoo.text import load_tokenizer, tokenizer_path

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    torch_backend, onnx_backend = backends(name)
    tokenizer = load_tokenizer(tokenizer_path(zoo.api.resolve_weights(name).path))
    prompt = tokenizer.encode("ROMEO:\nWhat light")
    for batch in (1, 3):
        torch_tokens = generate(torch_backend, prompt, 24, temperature=0, batch=batch)
        onnx_tokens = generate(onnx_backend, prompt, 24, temperature=0, batch=batch)
        np.testing.assert_array_equal(torch_tokens, onnx_tokens)
    # Step by step through the same sequence: logits agree at every position.
    sequence = np.array([prompt + torch_tokens[0].tolist()])
    decoders = [Decoder(torch_backend), Decoder(onnx_backend)]
    states = [d.initial_state(1) for d in decoders]
    cut = len(prompt)
    for start, stop in [(0, cut)] + [(i, i + 1) for i in range(cut, sequence.shape[1])]:
        outputs = []
        for index, decoder in enumerate(decoders):
            logits, states[index] = decoder.feed(sequence[:, start:stop], states[index])
            outputs.append(logits)
        np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("name", MODELS)
def test_sampling_with_a_seed_is_reproducible(name, backends):
    from zoo.tasks.text_generation import generate

    torch_backend, onnx_backend = backends(name)
    first = generate(torch_backend, [1, 2, 3], 12, temperature=0.8, top_k=10, seed=3)
    again = generate(onnx_backend, [1, 2, 3], 12, temperature=0.8, top_k=10, seed=3)
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("name", MODELS)
def test_export_writes_a_validated_bundle(name, tmp_path):
    bundle = zoo.export(name, out=tmp_path / "out")
    manifest = json.loads((bundle / "model.json").read_text())
    assert manifest["graphs"]
    assert_bundle_reproduces_pytorch(bundle)


@needs_text
@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_on_a_slice(name, tmp_path):
    out = tmp_path / f"{name}.safetensors"
    short_windows = () if name == "ngram" else ("--set", "block=32")  # the n-gram counts; it has no window
    result = zoo_cli("train", name, "--data", SHAKESPEARE, "--max-steps", "1", "--limit", "3000",
                     "--batch-size", "2", *short_windows, "--out", out, env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    card = (tmp_path / f"{name}.card.toml").read_text()
    assert "heldout_bits_per_char" in card
    assert (tmp_path / f"{name}.tokenizer.json").is_file()
    model = zoo.api.load(name, out)
    assert model is not None


@needs_text
def test_zoo_run_streams_text(tmp_path):
    result = zoo_cli("run", "lstm", "--prompt", "ROMEO:", "--max-new-tokens", "40", "--temperature", "0",
                     "--backend", "torch", env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ROMEO:")
    assert len(result.stdout) >= len("ROMEO:") + 40 and "tokens from" not in result.stdout  # the text alone


@pytest.mark.parametrize("flag, value, fragment", [("--max-new-tokens", "-1", "--max-new-tokens"),
                                                  ("--temperature", "-0.5", "--temperature")])
def test_bad_generation_flags_are_clean_errors(flag, value, fragment):
    from conftest import assert_clean_error

    result = zoo_cli("run", "ngram", flag, value, "--backend", "torch")
    assert_clean_error(result, fragment)


def test_gpt2_generation_past_its_context_restarts_identically(backends):
    """Past 128 positions the decoder restarts from the last 64 tokens, on both backends alike."""
    from zoo.tasks.text_generation import generate

    torch_backend, onnx_backend = backends("gpt2")
    torch_tokens = generate(torch_backend, [5, 6, 7], 150, temperature=0)
    np.testing.assert_array_equal(torch_tokens, generate(onnx_backend, [5, 6, 7], 150, temperature=0))


def test_gpt2_decoder_exports_a_graph_onnx_runtime_fuses(tmp_path):
    """The exported attention is plain MatMul/Softmax (no SDPA NaN guards), and ONNX
    Runtime fuses each block's tanh GELU into one FastGelu node: fewer nodes per step."""
    import onnx
    import onnxruntime as ort

    bundle = zoo.export("gpt2", out=tmp_path / "out")
    path = bundle / json.loads((bundle / "model.json").read_text())["graphs"]["decoder"]["file"]
    exported = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert "IsNaN" not in exported and exported.count("Softmax") == zoo.api.get_spec("gpt2").config["n_layer"]
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    optimized = [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]
    assert optimized.count("FastGelu") == zoo.api.get_spec("gpt2").config["n_layer"]
    assert "Tanh" not in optimized


def test_a_text_shorter_than_the_context_is_scored_whole():
    """The KV-cache scorer reads a text shorter than the model's window as one window: every token after
    the first is scored once, as the model's own forward pass scores it."""
    import torch

    from zoo.runtime import open_backend
    from zoo.tasks.text_generation import heldout_nats
    from zoo.text import load_tokenizer, tokenizer_path

    tokenizer = load_tokenizer(tokenizer_path(zoo.api.resolve_weights("gpt2").path))
    ids = tokenizer.encode("ROMEO:\nBut soft, what light through yonder window breaks?\n")
    assert 2 < len(ids) < 128  # shorter than gpt2's 128 positions
    total, scored = heldout_nats(open_backend("gpt2", "torch"), ids)
    with torch.no_grad():
        logits = zoo.load("gpt2")(torch.tensor([ids]))[0]
    expected = torch.nn.functional.cross_entropy(logits[:-1].double(), torch.tensor(ids[1:]), reduction="sum").item()
    assert scored == len(ids) - 1 and total == pytest.approx(expected, rel=1e-4)
