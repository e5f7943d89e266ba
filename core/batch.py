"""Batch mode of `zoo run`: every input file of a folder through a backend, in bounded memory.

    zoo run CLASSIFIER --backend onnx --input-dir photos/ -o results/ --batch-size 64

The folder is walked lazily (one directory listing at a time, in sorted
order), files go through the backend `--batch-size` at a time, and each
result is appended to OUTDIR/predictions.jsonl as soon as its batch is done,
so memory holds one batch whatever the folder's size. The file is written
beside its final name and renamed into place only when every input
succeeded: a failed run leaves no partial predictions.

What a file is and what a result says depends on the task: a task that
accepts input files names a `BatchTask` in `TaskSpec.batch`. The generic part
(walking, batching, progress, atomic output) lives here.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from zoo.errors import ZooError
from zoo.files import atomic_file, check_regular_file, ensure_writable_dir
from zoo.specs import GraphSpec, ModelSpec, import_dotted
from zoo.tasks import RunResult

OUTPUT_NAME = "predictions.jsonl"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class BatchTask:
    """What a task's batch mode reads and writes.

    `load(path, graph)` turns one file into one example of the graph's first
    input (no batch axis) and raises ZooError naming the file when it cannot;
    `records(spec, outputs)` turns the outputs of one batch into one JSON
    object per example.
    """

    kind: str
    suffixes: tuple[str, ...]
    load: Callable[[Path, GraphSpec], np.ndarray]
    records: Callable[[ModelSpec, dict[str, np.ndarray]], list[dict[str, Any]]]


def batch_task(spec: ModelSpec) -> BatchTask:
    """The task's `BatchTask`, or a one-line error naming the tasks that do take input files."""
    from zoo.api import registry
    from zoo.tasks import task_spec

    path = task_spec(spec).batch
    if path is None:
        accepting = sorted(name for name, task in registry().tasks.items() if task.batch)
        raise ZooError(
            f"{spec.name} ({spec.task}) takes no input files, so --input-dir has nothing to feed it; "
            f"drop --input-dir, or use a model of a task that reads files ({', '.join(accepting) or 'none installed'})"
        )
    return import_dotted(path, f"the batch mode of task '{spec.task}'")


def iter_inputs(directory: Path, suffixes: tuple[str, ...]) -> Iterator[Path]:
    """Files under `directory` whose suffix is one of `suffixes`, in sorted order, lazily; hidden entries are skipped."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in suffixes:
                yield Path(root) / name


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


@dataclass
class BatchJob:
    """A checked `zoo run --input-dir` request; `run(backend)` does it."""

    spec: ModelSpec
    task: BatchTask
    input_dir: Path
    out_dir: Path
    batch_size: int
    count: int

    @property
    def output(self) -> Path:
        return self.out_dir / OUTPUT_NAME

    def run(self, backend, progress: bool = True) -> RunResult:
        from tqdm import tqdm

        started = time.perf_counter()
        name = backend.graph.inputs[0].name
        dtype = backend.graph.inputs[0].dtype
        with atomic_file(self.output) as temporary, open(temporary, "w") as handle, tqdm(
            total=self.count, desc=f"run {self.spec.name}", unit=self.task.kind, disable=not progress, leave=False
        ) as bar:
            for paths in batched(iter_inputs(self.input_dir, self.task.suffixes), self.batch_size):
                examples = np.stack([self.task.load(path, backend.graph) for path in paths]).astype(dtype, copy=False)
                records = self.task.records(self.spec, backend.run({name: examples}))
                for path, record in zip(paths, records):
                    handle.write(json.dumps({"file": path.relative_to(self.input_dir).as_posix(), **record}) + "\n")
                bar.update(len(paths))
        seconds = time.perf_counter() - started
        rate = self.count / seconds
        return RunResult(  # the product is the file
            data={"file": str(self.output), "inputs": self.count, "seconds": round(seconds, 3),
                  "per_second": round(rate, 1), "batch_size": self.batch_size},
            note=f"wrote {self.output}: {self.count} {self.task.kind} in {seconds:.1f} s "
                 f"({rate:.0f} {self.task.kind}/s, batches of {self.batch_size}, {backend.name})",
        )


def prepare(spec: ModelSpec, options: dict[str, Any]) -> BatchJob:
    """Check a batch request before any backend is opened (an ONNX backend may export first)."""
    task = batch_task(spec)
    input_dir = Path(options["input_dir"])
    if options.get("image"):
        raise ZooError("pass either --image (one picture) or --input-dir (a folder of them), not both")
    if not options.get("output"):
        raise ZooError(f"--input-dir needs -o OUTDIR, the folder that receives {OUTPUT_NAME}")
    batch_size = options.get("batch_size")
    batch_size = 64 if batch_size is None else batch_size
    if batch_size < 1:
        raise ZooError(f"--batch-size {batch_size} must be at least 1")
    if not input_dir.is_dir():
        raise ZooError(f"--input-dir {input_dir} is not a folder; pass the folder that holds the {task.kind}")
    # A counting pass (nothing kept) gives the progress bar its total and fails early on an empty
    # folder, or on a FIFO or device named like a picture (reading it would hang).
    count = 0
    for path in iter_inputs(input_dir, task.suffixes):
        check_regular_file(path, "input file", "remove it from the folder")
        count += 1
    if count == 0:
        raise ZooError(
            f"--input-dir {input_dir} holds no {task.kind} ({', '.join(task.suffixes)}); "
            f"pass a folder that does"
        )
    out_dir = ensure_writable_dir(Path(options["output"]))
    return BatchJob(spec, task, input_dir, out_dir, batch_size, count)
