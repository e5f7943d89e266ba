"""`zoo data fetch NAME`: data sets from the Hugging Face hub, through huggingface_hub's cache.

The hub keeps MNIST and Tiny Shakespeare as Parquet tables; fetching turns them
into the files the zoo reads (`mnist/t10k-*.gz`, `tinyshakespeare/input.txt`)
under the data root, and checks their content against the sha256 of the files
every shipped model was trained and scored on, so a changed hub copy is an
error instead of silently different data. HF_HUB_OFFLINE=1 and HF_HUB_CACHE are
honoured, as everywhere in huggingface_hub.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from zoo.data import DATASETS, HUB_DATASETS, MNIST_IMAGES, MNIST_LABELS, SHAKESPEARE_FILE, dataset_dir
from zoo.errors import UnavailableError, ZooError
from zoo.files import atomic_directory


@dataclass(frozen=True)
class HubDataSet:
    name: str
    repo_id: str
    pattern: str                                  # the Parquet files to download
    build: Callable[[list[Path]], dict[str, bytes]]  # Parquet files -> {file name: uncompressed content}
    sha256: dict[str, str]                        # of each file's uncompressed content
    revisions: tuple[str, ...] = ("main", "refs/convert/parquet")  # the hub's own Parquet conversion lives on a ref


def _table(paths: list[Path], columns: list[str]):
    import pyarrow.parquet as pq

    return [pq.read_table(path, columns=columns) for path in sorted(paths)]


def _mnist(paths: list[Path]) -> dict[str, bytes]:
    import numpy as np
    from PIL import Image

    tables = _table([p for p in paths if "test" in p.name], ["image", "label"])
    if not tables:
        raise ZooError("the hub copy of mnist has no test split")
    rows = [row for table in tables for row in table.to_pylist()]
    images = np.stack([np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])).convert("L")) for row in rows])
    labels = np.array([row["label"] for row in rows], dtype=np.uint8)
    return {
        MNIST_IMAGES: struct.pack(">IIII", 2051, len(images), *images.shape[1:]) + images.astype(np.uint8).tobytes(),
        MNIST_LABELS: struct.pack(">II", 2049, len(labels)) + labels.tobytes(),
    }


def _shakespeare(paths: list[Path]) -> dict[str, bytes]:
    # The hub splits the corpus 90/5/5 into train, validation, test; in that order they are the whole text.
    order = ("train", "validation", "test")
    parts = []
    for split in order:
        found = [p for p in paths if split in p.relative_to(p.parents[1]).as_posix()]
        if not found:
            raise ZooError(f"the hub copy of tinyshakespeare has no {split} split")
        parts += [text for table in _table(found, ["text"]) for text in table.column("text").to_pylist()]
    return {SHAKESPEARE_FILE: "".join(parts).encode("utf-8")}


SOURCES = {
    "mnist": HubDataSet(
        "mnist", "ylecun/mnist", "*test*.parquet", _mnist,
        {MNIST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
         MNIST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
    ),
    "tinyshakespeare": HubDataSet(
        "tinyshakespeare", "karpathy/tiny_shakespeare", "*.parquet", _shakespeare,
        {SHAKESPEARE_FILE: "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"},
    ),
}
assert set(SOURCES) == set(HUB_DATASETS)


def fetch(name: str, root: Path, log: Callable[[str], None] = print) -> Path:
    """Put data set `name` under the data root from the hub; returns its folder. Existing files are kept."""
    if name not in DATASETS:
        raise ZooError(f"unknown data set '{name}'; known: {', '.join(DATASETS)}")
    if name not in SOURCES:
        dataset = DATASETS[name]
        raise UnavailableError(f"{name} is not on the Hugging Face hub in a form the zoo can check; put "
                               f"{' and '.join(dataset.files)} ({dataset.what}) in {Path(root) / name}/ yourself")
    try:
        folder = dataset_dir(root, name)
    except ZooError:
        folder = None
    if folder is not None:
        log(f"{name} is already in {folder}; nothing to fetch")
        return folder
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UnavailableError("zoo data fetch reads the hub's Parquet files: pip install pyarrow") from None
    source = SOURCES[name]
    files = _build(source, _download(source))
    target = Path(root).expanduser() / name
    if target.exists() and any(target.iterdir()):
        raise ZooError(f"{target} exists and holds other files; move them away or fetch into another --data DIR")
    with atomic_directory(target, "--data") as temporary:  # replaces at most an empty folder
        for file, content in files.items():
            (temporary / file).write_bytes(gzip.compress(content, mtime=0) if file.endswith(".gz") else content)
    log(f"wrote {target}/ ({', '.join(sorted(files))}) from hf://datasets/{source.repo_id}")
    return target


def _download(source: HubDataSet) -> list[Path]:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    problems = []
    for revision in source.revisions:
        try:
            snapshot = Path(snapshot_download(source.repo_id, repo_type="dataset", revision=revision,
                                              allow_patterns=[source.pattern, f"**/{source.pattern}"]))
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
            problems.append(f"{revision}: {str(exc).splitlines()[0]}")
            continue
        found = sorted(snapshot.rglob(source.pattern))
        if found:
            return found
        problems.append(f"{revision}: no {source.pattern} files")
    raise UnavailableError(
        f"cannot get {source.name} from hf://datasets/{source.repo_id} ({'; '.join(problems)}); check the network "
        f"(HF_HUB_OFFLINE=1 allows only the local cache) or put the files in place yourself"
    )


def _build(source: HubDataSet, parquet: list[Path]) -> dict[str, bytes]:
    files = source.build(parquet)
    for file, content in files.items():
        digest = hashlib.sha256(content).hexdigest()
        if digest != source.sha256[file]:
            raise ZooError(f"the hub copy of {source.name} gives a {file} with sha256 {digest[:16]}..., not the "
                           f"{source.sha256[file][:16]}... the zoo's models were trained on; nothing was written")
    return files
