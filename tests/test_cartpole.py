"""The CartPole policy: environment wiring, a short PPO run, export parity,
the shipped weights' return on both backends, GIFs, and a torch-free ONNX path."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

import zoo
from conftest import assert_bundle_reproduces_pytorch, assert_clean_error, read_json, zoo_cli
from zoo.config import read_toml
from zoo.runtime import OnnxBackend, TorchBackend, open_backend
from zoo.specs import import_dotted
from zoo.tasks.policy import environment_id, greedy_actions, make_environment, play_episode, policy_metrics

SOLVED = 475.0  # CartPole-v1's own "solved" threshold (500 is the maximum)


def test_environment_is_wired_from_the_spec():
    spec = zoo.resolve("cartpole").spec
    graph = spec.graph()
    assert spec.task == "policy" and environment_id(graph) == "CartPole-v1"
    env = make_environment(graph)
    observation, _ = env.reset(seed=0)
    assert observation.shape == (graph.inputs[0].shape[1],) == (4,)
    assert env.action_space.n == graph.outputs[0].shape[1] == 2
    assert len(graph.preprocessing["observation"]["layout"]) == 4
    assert set(graph.postprocessing["action"]["meanings"]) == {"0", "1"}
    # An untrained policy drops the pole quickly: the episode ends by termination, well before the 500-step limit.
    untrained = TorchBackend(import_dotted(graph.module)(zoo.build("cartpole").eval()), graph)
    total, steps = play_episode(untrained, env, seed=0)
    assert total == steps and 1 <= steps < 500
    assert greedy_actions(untrained, np.zeros((3, 4), np.float32)).shape == (3,)


def test_one_short_training_run_writes_weights_and_card(tmp_path):
    out = tmp_path / "tiny.safetensors"
    result = zoo_cli("train", "cartpole", "--max-steps", "2", "--batch-size", "16", "--set", "envs=2",
                     "--set", "rollout_steps=16", "--set", "update_epochs=2", "--set", "eval_episodes=2",
                     "--set", "hidden=8", "--out", out)
    assert result.returncode == 0, result.stderr
    card = read_toml(tmp_path / "tiny.card.toml")
    assert card["training"]["steps"] == 2 and card["config"]["hidden"] == 8
    assert card["metrics"]["episodes"] == 2
    assert {"mean_return", "min_return", "std_return"} <= set(card["metrics"])
    assert "64 environment steps in all" in card["data"]
    model = zoo.load("cartpole", weights=out)
    assert model.actor[0].out_features == 8
    assert "return" in result.stderr  # the progress bar shows the running episode return


def test_unknown_training_option_is_a_clear_error(tmp_path):
    result = zoo_cli("train", "cartpole", "--set", "gama=0.9", "--out", tmp_path / "w.safetensors")
    assert_clean_error(result, "unknown --set key(s) gama")
    assert not (tmp_path / "w.safetensors").exists()


def test_export_matches_pytorch_and_documents_the_interface(tmp_path):
    bundle = zoo.export("cartpole", "onnx", tmp_path / "out")
    graph_manifest = read_json(bundle / "model.json")["graphs"]["model"]
    assert [t["name"] for t in graph_manifest["inputs"]] == ["observation"]
    assert [(t["name"], t["dtype"]) for t in graph_manifest["outputs"]] == [("logits", "float32"), ("action", "int64")]
    assert set(graph_manifest["parity"]) == {"action", "logits"}
    assert_bundle_reproduces_pytorch(bundle)
    assert graph_manifest["preprocessing"]["environment"]["id"] == "CartPole-v1"
    assert graph_manifest["postprocessing"]["action"]["meanings"]["1"].endswith("right")
    # On observations a real episode visits, ONNX Runtime picks exactly PyTorch's actions.
    spec = zoo.resolve("cartpole").spec
    onnx_backend = OnnxBackend(bundle / "model.onnx", spec.graph())
    torch_backend = open_backend(spec, "torch")
    env = make_environment(spec.graph())
    observations = [env.reset(seed=7)[0]]
    for _ in range(200):
        observations.append(env.step(int(greedy_actions(onnx_backend, observations[-1][None])[0]))[0])
    batch = np.stack(observations).astype(np.float32)
    np.testing.assert_array_equal(greedy_actions(onnx_backend, batch), greedy_actions(torch_backend, batch))
    np.testing.assert_allclose(onnx_backend.run({"observation": batch})["logits"],
                               torch_backend.run({"observation": batch})["logits"], atol=1e-4)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_shipped_weights_solve_cartpole(backend):
    metrics = policy_metrics(open_backend(zoo.get_spec("cartpole"), backend), episodes=5, progress=False)
    assert metrics["episodes"] == 5
    assert metrics["mean_return"] >= SOLVED, metrics


def test_card_records_the_100_episode_evaluation():
    card = zoo.resolve_weights("cartpole").card
    assert card["metrics"]["episodes"] == 100 and card["metrics"]["mean_return"] >= SOLVED
    assert card["training"]["command"].startswith("zoo train cartpole")


def test_onnx_eval_reports_statistics_and_never_imports_torch():
    first = zoo_cli("eval", "cartpole", "--backend", "onnx", "--episodes", "2", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["backend"] == "onnx" and report["metrics"]["mean_return"] >= SOLVED
    assert {"mean_return", "min_return", "std_return"} <= set(report["metrics"])
    probe = (
        "import sys; from zoo.cli import main; "
        "code = main(['eval', 'cartpole', '--backend', 'onnx', '--episodes', '2']); "
        "print('TORCH', 'torch' in sys.modules, code)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "TORCH False 0" in result.stdout, result.stdout + result.stderr
    assert "exporting" not in result.stderr
    for line in ("mean_return", "min_return", "std_return"):
        assert line in result.stdout
    assert_clean_error(zoo_cli("eval", "cartpole", "--backend", "onnx", "--episodes", "0"), "--episodes", "must be at least 1")


@pytest.mark.skipif(importlib.util.find_spec("pygame") is None, reason="rendering needs pygame (gymnasium[classic-control])")
def test_run_renders_an_episode_to_a_gif(tmp_path):
    from PIL import Image

    out = tmp_path / "episode.gif"
    result = zoo_cli("run", "cartpole", "--backend", "torch", "--seed", "1", "--render", out)
    assert result.returncode == 0, result.stderr
    assert "return 500 in 500 steps" in result.stdout
    gif = Image.open(out)
    assert gif.size == (600, 400) and gif.n_frames > 1
    durations = []
    for index in range(gif.n_frames):
        gif.seek(index)
        durations.append(gif.info["duration"])
    assert sum(durations) == 501 * 20  # the reset frame and 500 steps at CartPole's 50 frames per second
    assert_clean_error(zoo_cli("run", "cartpole", "--render", tmp_path / "episode.png"), "must end in .gif")
