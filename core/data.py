"""The data root and readers for the project's data sets (numpy only).

Every command takes one data root (`--data DIR`, else $ZOO_DATA, else the
`[data] root` key) holding one folder per data set: `mnist/`, `usps/`,
`tinyshakespeare/`. MNIST here is the official t10k set split by a fixed rule:
index % 5 == 0 is the held-out split (2,000 images), the rest trains (8,000
images).
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.errors import ZooError

MNIST_IMAGES = "t10k-images-idx3-ubyte.gz"
MNIST_LABELS = "t10k-labels-idx1-ubyte.gz"
MNIST_SPLITS = ("train", "heldout", "all")
# What Recipe.mnist_training_images returns at size 32, for the cards of the recipes that train on it.
MNIST_TRAINING_32 = "MNIST t10k, training split (index % 5 != 0, 8,000 images), zero-padded to 32x32, scaled to [-1, 1]"
USPS_FILE = "usps.npz"
SHAKESPEARE_FILE = "input.txt"


@dataclass(frozen=True)
class DataSet:
    """One data set: its folder under the data root, the files it needs there and what they are."""

    name: str
    files: tuple[str, ...]
    what: str


DATASETS = {
    "mnist": DataSet("mnist", (MNIST_IMAGES, MNIST_LABELS), "the official MNIST test set (t10k), IDX format, gzip"),
    "usps": DataSet("usps", (USPS_FILE,), "USPS as uint8 arrays train_images, train_labels, test_images, test_labels"),
    "tinyshakespeare": DataSet("tinyshakespeare", (SHAKESPEARE_FILE,), "char-rnn's Tiny Shakespeare, UTF-8 text"),
}


def data_root(flag: str | Path | None = None) -> Path:
    """The data root: the --data flag, else $ZOO_DATA or the configuration's [data] root."""
    if flag:
        return Path(flag).expanduser()
    from zoo.config import load_config

    return Path(load_config()["data"]["root"]).expanduser()


def dataset_dir(root: str | Path, name: str) -> Path:
    """The folder of data set `name` under the data root, or a one-line error saying what to put where.

    A path that is the data set's folder itself is accepted too."""
    dataset = DATASETS[name]
    root = Path(root).expanduser()
    for folder in (root / name, root):
        if all((folder / file).is_file() for file in dataset.files):
            return folder
    fetch = f", or run `zoo data fetch {name}`" if name in HUB_DATASETS else ""
    raise ZooError(
        f"no {name} data under the data root {root}: put {' and '.join(dataset.files)} ({dataset.what}) in "
        f"{root / name}/{fetch}; --data DIR or ZOO_DATA=DIR names another data root"
    )


def find_mnist(path: Path) -> Path:
    """The MNIST folder under the data root."""
    return dataset_dir(path, "mnist")


def _read_idx(path: Path, magic: int) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        found, count = struct.unpack(">II", handle.read(8))
        if found != magic:
            raise ZooError(f"{path} is not an IDX file (magic {found}, expected {magic})")
        dims = struct.unpack(">" + "I" * (magic % 256 - 1), handle.read(4 * (magic % 256 - 1)))
        data = np.frombuffer(handle.read(), dtype=np.uint8)
    return data.reshape(count, *dims)


def read_mnist(path: Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) and int64 labels (N,) of one split."""
    if split not in MNIST_SPLITS:
        raise ZooError(f"unknown MNIST split {split!r}; use one of {', '.join(MNIST_SPLITS)}")
    folder = find_mnist(path)
    images = _read_idx(folder / MNIST_IMAGES, 2051)
    labels = _read_idx(folder / MNIST_LABELS, 2049).astype(np.int64)
    index = np.arange(len(images))
    keep = {"train": index % 5 != 0, "heldout": index % 5 == 0, "all": index >= 0}[split]
    return images[keep], labels[keep]


def pad_to(images: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad (N, H, W) images symmetrically to (N, size, size)."""
    height, width = images.shape[1:]
    top, left = (size - height) // 2, (size - width) // 2
    return np.pad(images, ((0, 0), (top, size - height - top), (left, size - width - left)))


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) in [-1, 1], the range generators emit."""
    return (images.astype(np.float32)[:, None] / 127.5) - 1.0


USPS_SPLITS = ("train", "test")
# MNIST digits fill a 20x20 box centred in a 28x28 frame; USPS digits fill their whole 16x16 frame.
MNIST_DIGIT_BOX = 20


def find_usps(path: Path) -> Path:
    """The usps.npz file under the data root (or the file itself)."""
    path = Path(path).expanduser()
    if path.is_file() and path.name == USPS_FILE:
        return path
    return dataset_dir(path, "usps") / USPS_FILE


def read_usps(path: Path, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 16, 16) and int64 labels (N,) of USPS's own train or test split."""
    if split not in USPS_SPLITS:
        raise ZooError(f"unknown USPS split {split!r}; use one of {', '.join(USPS_SPLITS)}")
    with np.load(find_usps(path)) as archive:
        return archive[f"{split}_images"], archive[f"{split}_labels"].astype(np.int64)


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 (N, H, W) images to (N, size, size) with Pillow's bilinear filter."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR)) for image in images])


def mnist_frame(images: np.ndarray, size: int = 32) -> np.ndarray:
    """Bring uint8 digits of any data set into the MNIST layout, padded to `size`.

    28x28 images are MNIST already; others (USPS 16x16, whose digit fills the
    frame) are resized to MNIST's 20x20 digit box first, so a classifier
    trained on MNIST sees digits of the size it knows.
    """
    if images.shape[1:] != (28, 28):
        images = pad_to(resize(images, MNIST_DIGIT_BOX), 28)
    return pad_to(images, size)


# "domains": both digit data sets, labelled by data set (MNIST 0, USPS 1), for a classifier that judges
# which data set a digit looks like it came from (a translation's realism); its splits pair theirs.
DOMAIN_CLASSES = ("mnist", "usps")
DOMAIN_SPLITS = {"train": ("train", "train"), "test": ("heldout", "test")}


def read_digits(path: Path, dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, 32, 32) in [-1, 1] and labels of "mnist" (train, heldout, all), "usps" (train, test)
    or "domains" (train, test: the data set's index in DOMAIN_CLASSES as the label)."""
    if dataset == "domains":
        if split not in DOMAIN_SPLITS:
            raise ZooError(f"unknown domains split {split!r}; use one of {', '.join(DOMAIN_SPLITS)}")
        parts = [read_digits(path, name, part) for name, part in zip(DOMAIN_CLASSES, DOMAIN_SPLITS[split])]
        labels = [np.full(len(part_labels), index, dtype=np.int64) for index, (_, part_labels) in enumerate(parts)]
        return np.concatenate([images for images, _ in parts]), np.concatenate(labels)
    readers = {"mnist": read_mnist, "usps": read_usps}
    if dataset not in readers:
        raise ZooError(f"unknown digit data set {dataset!r}; use one of {', '.join(readers)}, domains")
    images, labels = readers[dataset](path, split)
    return to_unit_range(mnist_frame(images)), labels


# Data sets that `zoo data fetch` finds on the Hugging Face hub (zoo.datahub); the others are put in place by hand.
HUB_DATASETS = ("mnist", "tinyshakespeare")
