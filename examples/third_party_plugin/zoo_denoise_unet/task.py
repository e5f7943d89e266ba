"""The "denoising" task: what `zoo run` and `zoo eval` do for denoising models.

Registered by this plugin through the `register_tasks` hook, exactly as the
zoo's own tasks are. It imports numpy and the zoo's public helpers only, so
`zoo run denoise-unet --backend onnx` never imports torch. Noise is drawn by
numpy from a seed: every backend denoises the same noisy digits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.data import data_root, read_mnist
from zoo.errors import ZooError
from zoo.images import save_grid, to_uint8
from zoo.tasks import Quality, RunResult

NOISE_SEED = 0
METRIC_DESCRIPTIONS = {
    "heldout_psnr": "PSNR (dB) of the denoised 2,000 held-out MNIST images against the clean ones, "
                    "N(0, noise_std) noise from numpy seed 0; higher is better",
    "noisy_psnr": "PSNR (dB) of the noisy held-out inputs themselves: the baseline the model must beat",
}


def heldout_digits(data: Path, limit: int | None = None) -> np.ndarray:
    """The held-out MNIST digits as float32 (N, 1, 28, 28) in [0, 1]; `limit` keeps the first N."""
    images, _ = read_mnist(Path(data), "heldout")
    return (images[:limit].astype(np.float32) / 255.0)[:, None]


def corrupt(clean: np.ndarray, noise_std: float, seed: int = NOISE_SEED) -> np.ndarray:
    """`clean` plus N(0, noise_std) noise, clipped to [0, 1]."""
    if noise_std < 0:
        raise ZooError(f"--noise-std {noise_std} is negative; pass 0 or more")
    noise = np.random.default_rng(seed).standard_normal(clean.shape)
    return np.clip(clean + noise_std * noise, 0.0, 1.0).astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1]."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return round(10 * np.log10(1.0 / max(mse, 1e-12)), 2)


def denoise(backend, noisy: np.ndarray, chunk: int = 500) -> np.ndarray:
    name, output = backend.graph.inputs[0].name, backend.graph.outputs[0].name
    return np.concatenate([backend.run({name: noisy[i : i + chunk]})[output] for i in range(0, len(noisy), chunk)])


def denoising_metrics(backend, data: Path, noise_std: float = 0.5, limit: int | None = None) -> dict[str, float]:
    """PSNR of the denoised held-out digits and of their noisy inputs (see METRIC_DESCRIPTIONS)."""
    clean = heldout_digits(data, limit)
    noisy = corrupt(clean, noise_std)
    return {"heldout_psnr": psnr(denoise(backend, noisy), clean), "noisy_psnr": psnr(noisy, clean)}


def run(spec, backend, options: dict[str, Any]) -> RunResult:
    """Denoise `--n` held-out digits with `--noise-std` noise; write clean, noisy and denoised rows as a grid."""
    count = options["n"]
    if not 1 <= count <= 2000:
        raise ZooError(f"--n {count} is outside 1..2000 (the held-out MNIST digits)")
    data = data_root(options.get("data"))
    chosen = np.sort(np.random.default_rng(options["seed"]).choice(2000, count, replace=False))
    clean = heldout_digits(data)[chosen]
    noisy = corrupt(clean, options["noise_std"], options["seed"])
    denoised = np.clip(denoise(backend, noisy), 0.0, 1.0)
    path = save_grid(to_uint8(np.concatenate([clean, noisy, denoised]), (0.0, 1.0)),
                     Path(options["output"] or f"{spec.name}-denoised.png"), columns=count)
    noisy_psnr, denoised_psnr = psnr(noisy, clean), psnr(denoised, clean)
    return RunResult(  # the product is the grid: the line goes to stderr, `--json` prints `data`
        data={"file": str(path), "digits": count, "noise_std": options["noise_std"], "noisy_psnr": noisy_psnr,
              "denoised_psnr": denoised_psnr},
        note=f"wrote {count} held-out digits (rows: clean, with N(0, {options['noise_std']:g}) noise, denoised by "
             f"{spec.name} on {backend.name}; PSNR {noisy_psnr} -> {denoised_psnr} dB) to {path}",
    )


def evaluate(spec, backend, options: dict[str, Any]) -> dict[str, float]:
    return denoising_metrics(backend, options["data"], options["noise_std"])


def quality(spec, backend, options: dict[str, Any]) -> Quality:
    """PSNR on the first `options["examples"]` held-out digits: the measure fp16/int8 exports must keep."""
    count = options["examples"]
    value = denoising_metrics(backend, options["data"], limit=count)["heldout_psnr"]
    return Quality("heldout_psnr", value, higher_is_better=True, examples=count,
                   description=f"PSNR (dB) of the first {count} held-out MNIST digits denoised from N(0, 0.5) noise")
