"""Image grids that a person can look at (Pillow, numpy)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from zoo.files import atomic_file


def to_uint8(images: np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    low, high = value_range
    scaled = (np.asarray(images, dtype=np.float32) - low) / (high - low)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile uint8 images (N, C, H, W) into one (H', W', C) array."""
    count, channels, height, width = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    canvas = np.zeros(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels), dtype=np.uint8
    )
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        canvas[top : top + height, left : left + width] = image.transpose(1, 2, 0)
    return canvas


def save_grid(images: np.ndarray, path: Path, columns: int | None = None, scale: int = 2) -> Path:
    """Write uint8 images (N, C, H, W) as one PNG grid, atomically."""
    from PIL import Image

    tiled = grid(images, columns)
    picture = Image.fromarray(tiled[..., 0] if tiled.shape[2] == 1 else tiled)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    with atomic_file(Path(path)) as temporary:
        picture.save(temporary, format="PNG")
    return Path(path)
