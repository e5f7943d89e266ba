"""Wall-clock figures for the foundation's performance targets.

    python benchmarks/cli_latency.py [--repeat 5]

Measures, as a user sees them (a fresh process each time):
- `zoo list` cold start (median of --repeat runs; target < 0.5 s),
- `zoo export dcgan --target onnx` wall time, validation included (target < 10 s),
- `zoo run dcgan --backend onnx --n 1` with a cached export (target < 0.5 s),
- `import torch` alone, for scale,
then runs `zoo bench dcgan --batch 1` for the batch-1 latency of each backend.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from tqdm import tqdm


def wall(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    zoo = [sys.executable, "-m", "zoo"]
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "ZOO_CACHE_DIR": os.path.join(scratch, "cache")}
        cases = {
            "import torch": [sys.executable, "-c", "import torch"],
            "zoo list": [*zoo, "list"],
            "zoo export dcgan --target onnx": [*zoo, "export", "dcgan", "--target", "onnx", "-o", os.path.join(scratch, "out")],
            "zoo run dcgan --backend onnx --n 1 (cached)": [*zoo, "run", "dcgan", "--backend", "onnx", "--n", "1", "-o", os.path.join(scratch, "s.png")],
        }
        subprocess.run(cases["zoo run dcgan --backend onnx --n 1 (cached)"], check=True, env=env, capture_output=True)
        results = {}
        with tqdm(total=len(cases) * args.repeat, desc="timing", unit="run") as bar:
            for name, command in cases.items():
                times = []
                for _ in range(args.repeat):
                    times.append(wall(command, env))
                    bar.update(1)
                results[name] = times
        print(f"{'command':<46} {'median s':>9} {'min s':>7} {'max s':>7}   (n={args.repeat})")
        for name, times in results.items():
            print(f"{name:<46} {statistics.median(times):>9.3f} {min(times):>7.3f} {max(times):>7.3f}")
        print()
        subprocess.run([*zoo, "bench", "dcgan", "--batch", "1,64", "--runs", "200", "--warmup", "20"], check=True, env=env)


if __name__ == "__main__":
    main()
