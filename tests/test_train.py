"""The core's training loop with the DCGAN recipe, a few steps on a few images."""

import json

import zoo
from conftest import MNIST, assert_clean_error, needs_data, zoo_cli
from zoo.config import read_toml
from zoo.weights import file_sha256

pytestmark = needs_data


def test_training_writes_weights_card_checkpoint_and_log(tiny_weights):
    card = read_toml(tiny_weights.with_name("tiny.card.toml"))
    assert card["sha256"] == file_sha256(tiny_weights)
    assert card["training"]["steps"] == 3 and card["training"]["seed"] == 0
    assert "--max-steps 3" in card["training"]["command"]
    assert card["config"]["base_channels"] == 8
    assert {"heldout_fd_pix8", "floor_fd_pix8"} <= set(card["metrics"])
    assert card["metrics"]["heldout_fd_pix8"] > card["metrics"]["floor_fd_pix8"]
    assert tiny_weights.with_name("tiny.ckpt.safetensors").is_file()
    assert tiny_weights.with_name("tiny.metrics.jsonl").is_file()


def _train(out, *extra):
    return zoo_cli("train", "dcgan", "--data", MNIST, "--limit", "48", "--batch-size", "16",
                   "--set", "base_channels=4", "--out", out, *extra)


def test_resume_continues_from_the_checkpoint(tmp_path):
    straight = tmp_path / "straight.safetensors"
    assert _train(straight, "--epochs", "2").returncode == 0
    first = tmp_path / "resumed.safetensors"
    assert _train(first, "--epochs", "1").returncode == 0
    result = _train(first, "--epochs", "2", "--resume")
    assert result.returncode == 0, result.stderr
    card = read_toml(first.with_name("resumed.card.toml"))
    assert card["training"]["steps"] == 6 and card["training"]["resumed"] is True
    # Same seed, same batches, same RNG state: resuming reproduces the uninterrupted run.
    import torch

    a, b = zoo.load("dcgan", weights=straight), zoo.load("dcgan", weights=first)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.allclose(x.float(), y.float(), atol=1e-6), name


def test_metrics_log_is_json_lines(tiny_weights):
    lines = tiny_weights.with_name("tiny.metrics.jsonl").read_text().splitlines()
    for line in lines:
        assert {"epoch", "step"} <= set(json.loads(line))


def test_bad_training_input_is_a_clear_error(tmp_path):
    assert_clean_error(zoo_cli("train", "dcgan", "--data", tmp_path, "--out", tmp_path / "w.safetensors"), "no mnist data under the data root")
    assert_clean_error(_train(tmp_path / "w.pt"), "must end in .safetensors")
    assert_clean_error(_train(tmp_path / "fresh.safetensors", "--resume"), "no checkpoint")
    assert not (tmp_path / "w.safetensors").exists()


def test_max_minutes_stops_after_the_step_that_crosses_the_budget(tmp_path):
    out = tmp_path / "budget.safetensors"
    # A budget of about 1 ms runs out during the first step, long before 10 epochs of 3 steps.
    result = _train(out, "--epochs", "10", "--max-minutes", "0.00002")
    assert result.returncode == 0, result.stderr
    assert read_toml(out.with_name("budget.card.toml"))["training"]["steps"] == 1
    assert_clean_error(_train(tmp_path / "ddp.safetensors", "--max-minutes", "1", "--nproc-per-node", "2"),
                       "--max-minutes stops a single process only")
