"""`zoo run` and `zoo eval` for policy models: play episodes of a gymnasium
environment with any backend, report return statistics, render a GIF.

The environment is named by the graph's manifest (`preprocessing["environment"]
["id"]`), so this module serves any policy whose graph maps an observation
batch to an `action` output (or, lacking one, to logits to take the arg-max of).
It imports numpy, gymnasium and Pillow only: the ONNX Runtime path never
imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from zoo.errors import UnavailableError, ZooError
from zoo.runtime import Backend
from zoo.specs import GraphSpec, ModelSpec
from zoo.tasks import Quality, RunResult

EVAL_EPISODES = 100
QUALITY_EPISODES = 20  # at most this many episodes validate a reduced-precision export: a good policy plays 500 steps each
ACTION_OUTPUT = "action"
POLICY_METRIC_DESCRIPTIONS = {
    "mean_return": "mean undiscounted return of greedy actions over episodes with reset seeds 0..N-1",
    "min_return": "lowest return among those episodes",
    "std_return": "population standard deviation of those returns",
    "episodes": "number of evaluation episodes",
}


def environment_id(graph: GraphSpec) -> str:
    try:
        return str(graph.preprocessing["environment"]["id"])
    except (KeyError, TypeError):
        raise ZooError(
            f"graph '{graph.name}' names no environment; a policy graph needs preprocessing "
            f"{{'environment': {{'id': 'CartPole-v1'}}}} in its GraphSpec"
        ) from None


def make_environment(graph: GraphSpec, render_mode: str | None = None):
    """The gymnasium environment a policy graph was trained on."""
    try:
        import gymnasium
    except ImportError:
        raise UnavailableError("policy models need gymnasium; pip install 'gymnasium[classic-control]>=1.0'") from None
    name = environment_id(graph)
    try:
        return gymnasium.make(name, render_mode=render_mode)
    except gymnasium.error.Error as exc:
        raise UnavailableError(f"gymnasium cannot make environment '{name}' ({exc}); check the installed gymnasium") from None


def greedy_actions(backend: Backend, observations: np.ndarray) -> np.ndarray:
    """Actions for a batch of observations: the graph's `action` output, or the arg-max of its first output."""
    graph = backend.graph
    source = graph.inputs[0]
    outputs = backend.run({source.name: np.asarray(observations, dtype=source.dtype)})
    if ACTION_OUTPUT in outputs:
        return outputs[ACTION_OUTPUT]
    return outputs[graph.outputs[0].name].argmax(axis=-1)


def play_episode(backend: Backend, env, seed: int, on_frame: Callable[[np.ndarray], None] | None = None) -> tuple[float, int]:
    """One episode with greedy actions from reset seed `seed`; returns (return, steps).

    `on_frame` receives `env.render()` after the reset and after every step.
    """
    observation, _ = env.reset(seed=seed)
    if on_frame:
        on_frame(env.render())
    total, steps = 0.0, 0
    while True:
        action = greedy_actions(backend, observation[None])[0]
        observation, reward, terminated, truncated, _ = env.step(int(action))
        total += float(reward)
        steps += 1
        if on_frame:
            on_frame(env.render())
        if terminated or truncated:
            return total, steps


def episode_returns(backend: Backend, episodes: int = EVAL_EPISODES, first_seed: int = 0, progress: bool = True) -> np.ndarray:
    """Returns of `episodes` greedy episodes with reset seeds first_seed, first_seed + 1, ..."""
    from tqdm import tqdm

    env = make_environment(backend.graph)
    returns = []
    try:
        for seed in tqdm(range(first_seed, first_seed + episodes), desc=f"eval {backend.name}", unit="episode",
                         leave=False, disable=not progress):
            returns.append(play_episode(backend, env, seed)[0])
    finally:
        env.close()
    return np.asarray(returns, dtype=np.float64)


def return_statistics(returns: np.ndarray) -> dict[str, float]:
    return {
        "mean_return": round(float(returns.mean()), 2),
        "min_return": round(float(returns.min()), 2),
        "std_return": round(float(returns.std()), 2),
        "episodes": len(returns),
    }


def policy_metrics(backend: Backend, episodes: int = EVAL_EPISODES, progress: bool = True) -> dict[str, float]:
    """Return statistics of greedy play over reset seeds 0..episodes-1 (see POLICY_METRIC_DESCRIPTIONS)."""
    if episodes < 1:
        raise ZooError(f"--episodes {episodes} must be at least 1")
    return return_statistics(episode_returns(backend, episodes, progress=progress))


def quality(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> Quality:
    """Mean greedy return over reset seeds 0..N-1, N = min(`options["examples"]`, QUALITY_EPISODES)."""
    episodes = max(1, min(options["examples"], QUALITY_EPISODES))
    returns = episode_returns(backend, episodes, progress=False)
    description = f"mean undiscounted return of greedy actions over {episodes} episodes with reset seeds 0..{episodes - 1}"
    return Quality("mean_return", float(returns.mean()), higher_is_better=True, examples=episodes, description=description)


def save_gif(frames: list[np.ndarray], path: Path, fps: int) -> Path:
    """An animated GIF of RGB frames, written atomically."""
    from PIL import Image

    from zoo.files import atomic_file

    # One palette for the whole animation, fitted to a few frames spread over it:
    # mapping each frame onto it is ten times faster than quantising each alone.
    sample = np.concatenate(frames[:: max(1, len(frames) // 8)], axis=0)
    palette = Image.fromarray(sample).quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    images = [Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    with atomic_file(Path(path), "--render") as temporary:
        images[0].save(temporary, format="GIF", save_all=True, append_images=images[1:],
                       duration=max(20, round(1000 / fps)), loop=0)
    return Path(path)


def run(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> RunResult:
    seed = options.get("seed", 0)
    render = options.get("render")
    if not render:
        env = make_environment(backend.graph)
        total, steps = play_episode(backend, env, seed)
        env.close()
        return RunResult(data={"seed": seed, "return": float(total), "steps": steps},
                         product=f"{spec.name} ({backend.name}), episode seed {seed}: return {total:g} in {steps} steps")
    if Path(render).suffix.lower() != ".gif":
        raise ZooError(f"--render {render} must end in .gif")
    import importlib.util

    # gymnasium draws classic-control frames with pygame; keep its banner off stdout.
    if importlib.util.find_spec("pygame") is None:
        raise UnavailableError("--render needs pygame to draw frames; pip install 'gymnasium[classic-control]'")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    # Off-screen frames need no display or sound; without these SDL complains on headless machines.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    env = make_environment(backend.graph, render_mode="rgb_array")
    frames: list[np.ndarray] = []
    try:
        total, steps = play_episode(backend, env, seed, on_frame=frames.append)
    finally:
        env.close()
    fps = int(env.metadata.get("render_fps", 50))
    path = save_gif(frames, Path(render), fps)
    return RunResult(
        data={"seed": seed, "return": float(total), "steps": steps, "file": str(path), "frames": len(frames)},
        product=f"{spec.name} ({backend.name}), episode seed {seed}: return {total:g} in {steps} steps",
        note=f"wrote {len(frames)} frames to {path}",
    )


def evaluate(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> dict[str, float]:
    episodes = options.get("episodes")
    return policy_metrics(backend, EVAL_EPISODES if episodes is None else episodes)
