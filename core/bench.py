"""`zoo bench`: median latency and throughput per backend and batch size."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from zoo.runtime import Backend
from zoo.tensors import example_inputs


@dataclass
class Measurement:
    backend: str
    batch: int
    runs: int
    median_ms: float
    p90_ms: float

    @property
    def items_per_s(self) -> float:
        return self.batch / (self.median_ms / 1000.0)

    def to_json(self) -> dict:
        return {**self.__dict__, "items_per_s": round(self.items_per_s, 1)}


def measure(backend: Backend, batch: int, runs: int, warmup: int, progress=None) -> Measurement:
    """Time `runs` calls after `warmup` untimed ones, on one fixed random input."""
    feeds = example_inputs(backend.graph, batch, seed=0)
    for _ in range(warmup):
        backend.run(feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        backend.run(feeds)
        times.append((time.perf_counter() - start) * 1000.0)
        if progress is not None:
            progress.update(1)
    times.sort()
    return Measurement(backend.name, batch, runs, statistics.median(times), times[int(0.9 * (len(times) - 1))])


def format_table(results: list[Measurement]) -> str:
    """One row per (batch, backend), with the speed-up over the first backend."""
    lines = [f"{'batch':>5}  {'backend':<10} {'runs':>5} {'median ms':>10} {'p90 ms':>9} {'items/s':>10} {'speed-up':>9}"]
    baseline: dict[int, float] = {}
    for m in results:
        baseline.setdefault(m.batch, m.median_ms)
        ratio = baseline[m.batch] / m.median_ms
        lines.append(
            f"{m.batch:>5}  {m.backend:<10} {m.runs:>5} {m.median_ms:>10.3f} {m.p90_ms:>9.3f} {m.items_per_s:>10.1f} {ratio:>8.2f}x"
        )
    return "\n".join(lines)
