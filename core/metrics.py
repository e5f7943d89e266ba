"""Sample-quality metrics shared by the generators (numpy only)."""

from __future__ import annotations

import numpy as np


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D).

    d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)); the trace of the
    matrix square root is the sum of the square roots of the eigenvalues of
    S_a S_b, which are real and non-negative for covariance matrices.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eigenvalues = np.linalg.eigvals(cov_a @ cov_b)
    trace_sqrt = np.sqrt(np.clip(eigenvalues.real, 0.0, None)).sum()
    distance = ((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))


def pooled_pixels(images: np.ndarray, size: int = 8) -> np.ndarray:
    """Average-pool (N, 1, H, W) images in [-1, 1] to (N, size*size) features.

    Pooling keeps stroke layout and thickness and drops pixel-exact detail, so
    the Frechet distance on these features compares the overall shape
    distribution of digits without needing a trained feature extractor.
    """
    count, channels, height, width = images.shape
    cropped = images[:, :, : height - height % size, : width - width % size]
    blocks = cropped.reshape(count, channels, size, height // size, size, width // size)
    return blocks.mean(axis=(3, 5)).reshape(count, -1)


def class_coverage(probabilities: np.ndarray) -> dict[str, float]:
    """How a classifier sees a set of samples, from its class probabilities (N, classes).

    `classes_present`: classes predicted at least once; `min_class_share`:
    the share of samples in the rarest predicted class (0 when a class is
    missing; 0.1 is perfectly balanced for ten classes); `mean_confidence`:
    the mean top probability, low when samples look like no digit at all.
    """
    classes = probabilities.shape[1]
    counts = np.bincount(probabilities.argmax(axis=1), minlength=classes)
    return {
        "classes_present": int((counts > 0).sum()),
        "min_class_share": float(counts.min() / len(probabilities)),
        "mean_confidence": float(probabilities.max(axis=1).mean()),
    }


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)) between the rows of two feature sets."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(squared, 0.0, None))


def knn_radii(features: np.ndarray, k: int = 3) -> np.ndarray:
    """Each point's distance to its k-th nearest neighbour in its own set (itself excluded)."""
    if not 1 <= k < len(features):
        raise ValueError(f"k = {k} needs 1 <= k < {len(features)} (the number of points)")
    distances = pairwise_distances(features, features)
    np.fill_diagonal(distances, np.inf)
    return np.partition(distances, k - 1, axis=1)[:, k - 1]


def manifold_share(points: np.ndarray, manifold: np.ndarray, radii: np.ndarray, chunk: int = 1000) -> float:
    """Share of `points` inside the manifold estimate: the union of balls around each
    `manifold` row with its radius from `radii`."""
    inside = [
        (pairwise_distances(points[i : i + chunk], manifold) <= radii[None, :]).any(axis=1)
        for i in range(0, len(points), chunk)
    ]
    return float(np.concatenate(inside).mean())


def precision_recall(real: np.ndarray, generated: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of `generated` against `real` features.

    Each set's manifold is the union of balls around its points reaching each
    point's k-th nearest neighbour. Precision is the share of generated points
    on the real manifold (are samples realistic?); recall is the share of real
    points on the generated manifold (is the data's variety covered?). A sharp
    generator of a few modes scores high precision and low recall; a blurry but
    diverse one the reverse.
    """
    precision = manifold_share(generated, real, knn_radii(real, k))
    recall = manifold_share(real, generated, knn_radii(generated, k))
    return precision, recall
