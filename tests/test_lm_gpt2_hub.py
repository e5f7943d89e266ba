"""GPT-2 checkpoints in the Hugging Face hub's layout (random `transformers.GPT2LMHeadModel`s
saved by `save_pretrained`; no network): every shape and supported config field gives
transformers' logits, unsupported fields are refused by name, `--weights` takes folders and
hf:// references from an offline hub cache, pickles are refused with a way out, generation
respects the checkpoint's context, and the 124M shape exports with transformers' logits."""

import json
import shutil

import numpy as np
import pytest

import zoo.api
from conftest import DATA, assert_clean_error, zoo_cli
from zoo.errors import WeightsError

transformers = pytest.importorskip("transformers", reason="the hub tests need transformers (the `test` extra)")
torch = pytest.importorskip("torch")

TINY = dict(vocab_size=300, n_positions=32, n_embd=48, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)
SHAKESPEARE = DATA / "tinyshakespeare"
TEXT = "ROMEO: But soft, what light through yonder window breaks? It is the east, and Juliet is the sun. " * 4


def save_checkpoint(folder, bare_names=False, tokenizer="tokenizer.json", **overrides):
    """A random GPT-2 written as the hub lays it out: model.safetensors, config.json and a
    byte-level BPE tokenizer (tokenizer.json, or vocab.json + merges.txt). Returns the model."""
    from safetensors.torch import save_file

    from zoo.plugins.gpt2.train import train_bpe

    torch.manual_seed(0)
    config = transformers.GPT2Config(**{**TINY, **overrides}, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    reference = transformers.GPT2LMHeadModel(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    if bare_names:  # openai-community/gpt2's model.safetensors: bare `h.0...` names, no lm_head
        state = {k.removeprefix("transformer."): v.contiguous() for k, v in reference.state_dict().items()
                 if k != "lm_head.weight"}
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        (folder / "config.json").write_text(json.dumps(config.to_dict()))
    else:
        reference.save_pretrained(folder)
    bpe = train_bpe(TEXT, min(config.vocab_size, 300))
    if tokenizer == "tokenizer.json":
        (folder / "tokenizer.json").write_text(bpe.to_str())
    else:
        bpe.model.save(str(folder))  # vocab.json and merges.txt, GPT-2's original files
    return reference


def hub_cache(root, repo_id, folder, revision="a" * 40):
    """huggingface_hub's cache layout for `repo_id` at `revision` (also its `main`)."""
    base = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = base / "snapshots" / revision
    shutil.copytree(folder, snapshot)
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(revision)
    return root


def logits_agree(model, reference, vocab, length=17, batch=2, atol=1e-5):
    ids = torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), reference(ids).logits, atol=atol, rtol=1e-4)


@pytest.mark.parametrize("bare_names", [False, True], ids=["save_pretrained", "hub-bare-names"])
def test_hub_checkpoint_loads_with_equal_logits(tmp_path, bare_names):
    reference = save_checkpoint(tmp_path, bare_names)
    model = zoo.api.load("gpt2", tmp_path / "model.safetensors")
    assert model.config.n_layer == 2 and model.config.vocab_size == 300 and model.config.block_size == 32
    logits_agree(model, reference, 300)


@pytest.mark.parametrize("fields", [
    {"tie_word_embeddings": False},
    {"activation_function": "relu", "n_inner": 40},
    {"activation_function": "gelu", "scale_attn_weights": False},
    {"scale_attn_by_inverse_layer_idx": True, "layer_norm_epsilon": 1e-3, "n_head": 6},
], ids=["untied-head", "relu-n_inner", "exact-gelu-unscaled", "inverse-layer-scale"])
def test_config_fields_are_honoured(tmp_path, fields):
    """Each config field the module implements changes the logits exactly as in transformers;
    an untied head is the checkpoint's own lm_head, not wte."""
    reference = save_checkpoint(tmp_path / "checkpoint", **fields)
    if fields.get("tie_word_embeddings") is False:
        assert not torch.equal(reference.lm_head.weight, reference.transformer.wte.weight)
    model = zoo.api.load("gpt2", tmp_path / "checkpoint")  # a folder in the hub's layout
    logits_agree(model, reference, 300)


@pytest.mark.parametrize("field, value", [("activation_function", "quick_gelu"), ("reorder_and_upcast_attn", True),
                                          ("add_cross_attention", True), ("model_type", "gpt_neo")])
def test_unimplemented_config_fields_are_refused_by_name(tmp_path, field, value):
    save_checkpoint(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, field: value}))
    with pytest.raises(WeightsError, match=f"config.json sets {field}="):
        zoo.api.load("gpt2", tmp_path / "model.safetensors")


def test_unimplemented_config_field_is_one_line_on_the_command_line(tmp_path):
    save_checkpoint(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "activation_function": "quick_gelu"}))
    result = zoo_cli("run", "gpt2", "--weights", tmp_path, "--prompt", "Hi", "--backend", "torch")
    assert_clean_error(result, "activation_function", "quick_gelu")


def test_hub_checkpoint_kv_cache_matches_transformers(tmp_path):
    """Prompt then one step through our cache equals transformers' full forward."""
    reference = save_checkpoint(tmp_path)
    model = zoo.api.load("gpt2", tmp_path / "model.safetensors")
    ids = torch.randint(0, 300, (1, 9), generator=torch.Generator().manual_seed(2))
    empty = [(torch.zeros(1, 4, 0, 12), torch.zeros(1, 4, 0, 12)) for _ in range(2)]
    with torch.no_grad():
        _, cache = model(ids[:, :8], empty)
        step, _ = model(ids[:, 8:], cache)
        expected = reference(ids).logits[:, 8:]
    torch.testing.assert_close(step, expected, atol=1e-5, rtol=1e-4)


def test_vocab_and_merges_tokenizer(tmp_path):
    """GPT-2's original tokenizer files (vocab.json + merges.txt) tokenize like tokenizer.json."""
    from zoo.text import load_tokenizer, tokenizer_path

    save_checkpoint(tmp_path / "json")
    save_checkpoint(tmp_path / "files", tokenizer="vocab+merges")
    assert tokenizer_path(tmp_path / "files" / "model.safetensors").name == "vocab.json"
    reference = load_tokenizer(tokenizer_path(tmp_path / "json" / "model.safetensors"))
    files = load_tokenizer(tokenizer_path(tmp_path / "files" / "model.safetensors"))
    text = "But soft, what light through yonder window breaks?"
    assert files.encode(text) == reference.encode(text) and files.decode(files.encode(text)) == text


def test_pickle_checkpoints_are_refused_with_the_conversion(tmp_path):
    """pytorch_model.bin (a file, a folder holding it, a hub repo holding it) is named as a
    pickle that the zoo never unpickles, with the safetensors conversion."""
    reference = save_checkpoint(tmp_path / "repo")
    (tmp_path / "repo" / "model.safetensors").unlink()
    torch.save(reference.state_dict(), tmp_path / "repo" / "pytorch_model.bin")
    cache = hub_cache(tmp_path / "hub", "someone/pickled", tmp_path / "repo")
    for weights in (tmp_path / "repo" / "pytorch_model.bin", tmp_path / "repo", "hf://someone/pickled"):
        result = zoo_cli("run", "gpt2", "--weights", weights, "--prompt", "Hi", "--backend", "torch",
                         env={"HF_HUB_CACHE": str(cache)})
        assert_clean_error(result, "pickle", "never unpickles", "safe_serialization=True")


def test_hub_reference_not_in_the_cache_is_one_line(tmp_path):
    result = zoo_cli("run", "gpt2", "--weights", "hf://someone/absent@main", "--prompt", "Hi",
                     env={"HF_HUB_CACHE": str(tmp_path / "empty")})
    assert_clean_error(result, "hf://someone/absent@main", "not in the Hugging Face cache")


def greedy_reference(reference, prompt, steps):
    """transformers' greedy continuation, one full forward per token (no cache to trust)."""
    ids = torch.tensor([prompt])
    with torch.no_grad():
        for _ in range(steps):
            ids = torch.cat([ids, reference(ids).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids[0, len(prompt):].tolist()


def test_hub_reference_runs_evaluates_and_benchmarks_from_the_cli(tmp_path):
    """hf://owner/repo@revision from an offline cache through run, bench and eval: the graphs
    follow the checkpoint's config.json (2 layers, vocab 300), both backends print the same
    text and the exported bundle's greedy trace holds transformers' tokens."""
    reference = save_checkpoint(tmp_path / "repo")
    env = {"HF_HUB_CACHE": str(hub_cache(tmp_path / "hub", "someone/tiny-gpt2", tmp_path / "repo", "b" * 40))}
    outputs = []
    for backend, weights in (("torch", "hf://someone/tiny-gpt2"), ("onnx", f"hf://someone/tiny-gpt2/model.safetensors@{'b' * 40}")):
        result = zoo_cli("run", "gpt2", "--weights", weights, "--prompt", "ROMEO: But soft", "--max-new-tokens", "12",
                         "--temperature", "0", "--backend", backend, env=env)
        assert result.returncode == 0, result.stderr
        assert f"[12 tokens from gpt2 ({backend}" in result.stderr  # the text alone goes to stdout
        outputs.append(result.stdout.split("\n[")[0])
    assert outputs[0] == outputs[1] and outputs[0].startswith("ROMEO: But soft")

    # The ONNX run exported the checkpoint to the cache, a complete bundle: its manifest and trace.
    (manifest_path,) = (tmp_path / "cache" / "exports").glob("gpt2-custom-*/gpt2/model.json")
    manifest = json.loads(manifest_path.read_text())
    decoder = manifest["graphs"]["decoder"]
    assert manifest["model_config"]["n_layer"] == 2 and decoder["outputs"][0]["shape"][-1] == 300
    assert decoder["preprocessing"]["input_ids"]["max_positions"] == 32 and len(decoder["inputs"]) == 1 + 2 * 2
    trace = json.loads((manifest_path.parent / decoder["greedy_trace"]).read_text())
    assert trace["generated_ids"][0] == greedy_reference(reference, trace["prompt_ids"][0], len(trace["generated_ids"][0]))

    result = zoo_cli("bench", "gpt2", "--weights", "hf://someone/tiny-gpt2", "--batch", "1", "--runs", "3", "--warmup", "1",
                     "--json", env=env)
    assert result.returncode == 0, result.stderr
    if (SHAKESPEARE / "input.txt").is_file():
        result = zoo_cli("eval", "gpt2", "--weights", "hf://someone/tiny-gpt2", "--data", SHAKESPEARE, "--backend", "torch",
                         "--json", env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["metrics"]["heldout_bits_per_char"] > 0


def test_generation_respects_the_checkpoint_context(tmp_path):
    """A 32-position checkpoint: transformers' tokens until the context is full, then the
    window slides, the same on PyTorch and ONNX Runtime (no index error past position 32)."""
    from zoo.runtime import open_backend
    from zoo.tasks.text_generation import context_note, generate

    reference = save_checkpoint(tmp_path)
    prompt = [5, 17, 42, 7, 99, 3]
    torch_backend = open_backend("gpt2", "torch", weights=str(tmp_path))
    onnx_backend = open_backend("gpt2", "onnx", weights=str(tmp_path))
    tokens = generate(torch_backend, prompt, 60, temperature=0)
    np.testing.assert_array_equal(tokens, generate(onnx_backend, prompt, 60, temperature=0))
    assert tokens[0, : 32 - len(prompt)].tolist() == greedy_reference(reference, prompt, 32 - len(prompt))
    assert "at most 32 positions" in context_note(onnx_backend, len(prompt), 60)
    assert context_note(onnx_backend, len(prompt), 32 - len(prompt)) is None


def test_124m_decoder_exports_with_transformers_logits_and_greedy_tokens(tmp_path):
    """The full 124M shape through export: fp32 logits within 1e-4 of transformers (batch 2,
    37 random ids) on PyTorch and ONNX Runtime, 64 identical greedy tokens on both, and the
    bundle's greedy trace replays transformers' tokens."""
    from zoo.runtime import OnnxBackend, open_backend
    from zoo.tasks.text_generation import Decoder, generate

    folder = tmp_path / "gpt2-124m"  # the real shape: 12 layers, 12 heads, 768 wide, 1024 positions, vocab 50257
    torch.manual_seed(0)
    reference = transformers.GPT2LMHeadModel(transformers.GPT2Config(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)).eval()
    reference.save_pretrained(folder)
    bundle = zoo.export("gpt2", out=tmp_path / "out", weights=folder, log=lambda line: None)
    manifest = json.loads((bundle / "model.json").read_text())
    decoder = manifest["graphs"]["decoder"]
    assert manifest["model_config"]["n_layer"] == 12 and len(decoder["inputs"]) == 1 + 2 * 12

    resolved = zoo.api.resolve("gpt2", folder)
    graph = resolved.spec.graph("decoder")
    backends = [open_backend("gpt2", "torch", weights=str(folder)), OnnxBackend(bundle / decoder["file"], graph)]
    ids = np.random.default_rng(0).integers(0, 50257, (2, 37))
    with torch.no_grad():
        expected = reference(torch.from_numpy(ids)).logits.numpy()
    for backend in backends:
        decoding = Decoder(backend)
        logits, _ = decoding.feed(ids, decoding.initial_state(2))
        assert np.abs(logits - expected).max() < 1e-4, backend.name

    trace = json.loads((bundle / decoder["greedy_trace"]).read_text())
    prompt = trace["prompt_ids"][0]
    with torch.no_grad():
        greedy = reference.generate(torch.tensor([prompt]), max_new_tokens=64, min_new_tokens=64, do_sample=False,
                                    pad_token_id=0)[0, len(prompt):].tolist()
    for backend in backends:
        assert generate(backend, prompt, 64, temperature=0)[0].tolist() == greedy, backend.name
    assert trace["generated_ids"][0] == greedy[: len(trace["generated_ids"][0])]
