"""Image grids that a person can look at (Pillow, numpy)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from zoo.errors import ZooError
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


def image_format(path: Path) -> str:
    """Pillow's format for the file's extension (.png, .jpg, .webp, ...), or a one-line error."""
    from PIL import Image

    suffix = Path(path).suffix.lower()
    found = Image.registered_extensions().get(suffix)
    if found is None or found not in Image.SAVE:
        writable = sorted(e for e, f in Image.registered_extensions().items() if f in Image.SAVE and f in COMMON_FORMATS)
        raise ZooError(f"-o {path}: cannot write '{suffix or 'no extension'}' images; use one of {', '.join(writable)}")
    return found


COMMON_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")


def save_grid(images: np.ndarray, path: Path, columns: int | None = None, scale: int = 2) -> Path:
    """Write uint8 images (N, C, H, W) as one grid, atomically, in the format of the file's extension (PNG is
    lossless; JPEG and WebP are lossy)."""
    from PIL import Image

    fmt = image_format(path)
    tiled = grid(images, columns)
    picture = Image.fromarray(tiled[..., 0] if tiled.shape[2] == 1 else tiled)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    with atomic_file(Path(path)) as temporary:
        picture.save(temporary, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    return Path(path)
