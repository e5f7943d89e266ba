"""The `gpt2:openai` mapping: a Hugging Face GPT2LMHeadModel saved in the hub's
layout loads through the plugin and gives the same logits."""

import json

import pytest

import zoo.api

transformers = pytest.importorskip("transformers", reason="the mapping test needs transformers (the `test` extra)")


def _save_hub_layout(folder, bare_names: bool):
    """A random small GPT-2 written as model.safetensors + config.json, as on the hub."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=101, n_positions=32, n_embd=48, n_layer=2, n_head=4,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    reference = transformers.GPT2LMHeadModel(config).eval()
    if bare_names:  # openai-community/gpt2's model.safetensors: bare `h.0...` names, no lm_head
        state = {k.removeprefix("transformer."): v.contiguous() for k, v in reference.state_dict().items()
                 if k != "lm_head.weight"}
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    else:
        reference.save_pretrained(folder, safe_serialization=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    return reference


@pytest.mark.parametrize("bare_names", [False, True], ids=["save_pretrained", "hub-bare-names"])
def test_hub_checkpoint_loads_with_equal_logits(tmp_path, bare_names):
    import torch

    reference = _save_hub_layout(tmp_path, bare_names)
    model = zoo.api.load("gpt2", tmp_path / "model.safetensors")
    assert model.config.n_layer == 2 and model.config.vocab_size == 101
    ids = torch.randint(0, 101, (2, 17), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(ids).logits
        actual = model(ids)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)


def test_hub_checkpoint_kv_cache_matches_transformers(tmp_path):
    """Prompt then one step through our cache equals transformers' full forward."""
    import torch

    reference = _save_hub_layout(tmp_path, bare_names=False)
    model = zoo.api.load("gpt2", tmp_path / "model.safetensors")
    ids = torch.randint(0, 101, (1, 9), generator=torch.Generator().manual_seed(2))
    empty = [(torch.zeros(1, 4, 0, 12), torch.zeros(1, 4, 0, 12)) for _ in range(2)]
    with torch.no_grad():
        _, cache = model(ids[:, :8], empty)
        step, _ = model(ids[:, 8:], cache)
        expected = reference(ids).logits[:, 8:]
    torch.testing.assert_close(step, expected, atol=1e-5, rtol=1e-4)
