"""Weights are safetensors that describe themselves; every load is verified."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

import zoo
from conftest import assert_clean_error, zoo_cli
from zoo.errors import WeightsError
from zoo.weights import file_sha256, parameter_count, read_header, resolve


def test_shipped_weights_match_their_card():
    spec = zoo.get_spec("dcgan")
    resolved = resolve(spec)
    assert resolved.sha256 == file_sha256(resolved.path)
    for field in ("sha256", "parameters", "data", "training", "metrics"):
        assert field in resolved.card, field
    assert resolved.card["training"]["command"].startswith("zoo train dcgan")
    assert resolved.card["parameters"] == parameter_count(resolved.path)
    _, metadata = read_header(resolved.path)
    assert metadata["zoo.model"] == "dcgan"
    assert json.loads(metadata["zoo.config"]) == spec.config
    assert resolved.path.stat().st_size < 10 * 1024 * 1024


def test_load_returns_an_eval_module_with_the_stored_config(tiny_weights):
    model = zoo.load("dcgan", weights=tiny_weights)
    assert not model.training
    assert model.zoo_config["base_channels"] == 8
    assert model(torch.zeros(2, 100)).shape == (2, 1, 32, 32)


def test_checksum_mismatch_is_an_error(tiny_weights, tmp_path):
    spec = zoo.get_spec("dcgan")
    resolved = resolve(spec)
    copy = tmp_path / "copy.safetensors"
    shutil.copy(resolved.path, copy)
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    from zoo.weights import ResolvedWeights, verify

    with pytest.raises(WeightsError, match="checksum mismatch"):
        verify(ResolvedWeights("dcgan", "default", copy, resolved.sha256, {}))


def test_truncated_weights_are_a_clear_cli_error(tiny_weights, tmp_path):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(tiny_weights.read_bytes()[:-100])
    assert_clean_error(zoo_cli("export", "dcgan", "--weights", truncated, "-o", tmp_path / "out"), "truncated")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a weights file at all")
    assert_clean_error(zoo_cli("run", "dcgan", "--weights", garbage, "-o", tmp_path / "x.png"), "garbage.safetensors")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert_clean_error(zoo_cli("run", "dcgan", "--weights", tmp_path / "missing.safetensors"), "does not exist")


def test_weights_of_another_model_are_rejected(tmp_path):
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(other), metadata={"zoo.model": "gan", "zoo.config": "{}"})
    assert_clean_error(zoo_cli("export", "dcgan", "--weights", other, "-o", tmp_path / "out"), "model 'gan'", "not 'dcgan'")


def test_a_state_dict_of_the_wrong_shape_is_rejected(tiny_weights, tmp_path):
    from safetensors.torch import load_file

    tensors = load_file(str(tiny_weights))
    name = next(k for k in tensors if k.endswith("weight") and tensors[k].dim() == 4)
    tensors[name] = torch.zeros(*[d + 1 for d in tensors[name].shape])
    wrong = tmp_path / "wrong.safetensors"
    _, metadata = read_header(tiny_weights)
    save_file(tensors, str(wrong), metadata=metadata)
    with pytest.raises(WeightsError, match="does not fit model 'dcgan'"):
        zoo.load("dcgan", weights=wrong)


def _hub_spec(uri, sha256=None):
    import dataclasses

    spec = zoo.get_spec("dcgan")
    return dataclasses.replace(spec, weights={"hub": zoo.WeightsSpec(uri=uri, sha256=sha256)})


def test_hub_reference_offline_and_not_cached_is_a_clear_error(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsError, match="not in the Hugging Face cache"):
        resolve(_hub_spec("hf://someone/some-repo/weights.safetensors@main"), "hub")


def test_hub_reference_resolves_from_the_cache_offline(tmp_path, monkeypatch, tiny_weights):
    """A file in huggingface_hub's cache layout is found with HF_HUB_OFFLINE=1."""
    from huggingface_hub import constants

    hub = tmp_path / "hf" / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))  # read at import, so patch the constant
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hub / "models--someone--some-repo"
    (repo / "snapshots" / commit / "sub").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    shutil.copy(tiny_weights, repo / "snapshots" / commit / "sub" / "w.safetensors")
    spec = _hub_spec("hf://someone/some-repo/sub/w.safetensors@main", sha256=file_sha256(tiny_weights))
    resolved = resolve(spec, "hub")
    assert resolved.path.read_bytes() == tiny_weights.read_bytes()
    assert resolved.sha256 == file_sha256(resolved.path)


def test_hub_reference_needs_owner_and_repo():
    with pytest.raises(WeightsError, match=r"expected hf://owner/repo\[/file.safetensors\]\[@revision\]"):
        resolve(_hub_spec("hf://only-owner@main"), "hub")


PINNED_WEIGHTS = '''
import zoo

@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="pinned", task="image-generation", builder="zoo.plugins.dcgan.model:build",
        config={{"base_channels": 8}},
        weights={{"default": zoo.WeightsSpec(uri={uri!r}, sha256={sha!r})}},
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("z", ("batch", 100)),),
                              outputs=(zoo.TensorSpec("image", ("batch", 1, 32, 32)),)),),
    ))
'''


def test_checksum_mismatch_is_a_one_line_cli_error(plugin_dir, tiny_weights, tmp_path):
    """A plugin whose weights file does not hash to what its spec promises."""
    import shutil
    from safetensors.torch import load_file

    copy = tmp_path / "pinned.safetensors"
    shutil.copy(tiny_weights, copy)
    _, metadata = read_header(copy)
    save_file(load_file(str(copy)), str(copy), metadata={**metadata, "zoo.model": "pinned"})
    plugin_dir("pinned", PINNED_WEIGHTS.format(uri=str(copy), sha="0" * 64))
    result = zoo_cli("export", "pinned", "-o", tmp_path / "out")
    assert_clean_error(result, "checksum mismatch", "pinned.safetensors")
    assert not (tmp_path / "out" / "pinned").exists()
    plugin_dir("pinned", PINNED_WEIGHTS.format(uri=str(copy), sha=file_sha256(copy)))
    assert zoo_cli("export", "pinned", "-o", tmp_path / "out").returncode == 0


def test_equal_weights_saved_by_two_processes_have_one_sha256(tmp_path):
    # safetensors orders its header in hash-map order, which changes per process.
    script = ("import sys, torch; from zoo.weights import save; "
              "print(save({'b': torch.ones(3), 'a': torch.zeros(2, 2)}, sys.argv[1], 'dcgan', {'x': 1, 'y': 2}))")
    digests = {subprocess.run([sys.executable, "-c", script, str(tmp_path / f"w{i}.safetensors")], check=True,
                              capture_output=True, text=True).stdout.strip() for i in range(4)}
    assert len(digests) == 1
    assert (tmp_path / "w0.safetensors").read_bytes() == (tmp_path / "w3.safetensors").read_bytes()
