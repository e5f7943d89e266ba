"""A character n-gram language model with interpolated Kneser-Ney smoothing.

Counting happens in numpy (`count_tables`); the module only looks the
tables up, so its exported graph maps a context of n-1 token ids to the
next-token distribution with the tables as initializers. Per context order k
(1..n-1) the seen contexts are a sparse table: their keys (the context's ids
read as a base-V number), the discounted probabilities `alpha` (one row per
seen context) and the back-off weights `gamma`. A context that was never seen
falls back to the next shorter one, down to the unigram distribution, which
is itself interpolated with the uniform one: every token gets a probability.

    P_k(w | c) = alpha_k(w | c) + gamma_k(c) * P_{k-1}(w | c[1:])   if c was seen
               = P_{k-1}(w | c[1:])                                  otherwise
"""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn


@dataclass
class NGramConfig:
    vocab_size: int = 65
    n: int = 4
    discount: float = 0.75
    contexts: list[int] = field(default_factory=list)  # seen contexts per order 1..n-1 (set by training)


class NGramLanguageModel(nn.Module):
    def __init__(self, config: NGramConfig):
        super().__init__()
        self.config = config
        sizes = list(config.contexts) or [1] * (config.n - 1)
        if len(sizes) != config.n - 1:
            raise ValueError(f"contexts lists {len(sizes)} orders, n={config.n} needs {config.n - 1}")
        vocab = config.vocab_size
        self.register_buffer("unigram", torch.full((vocab,), 1.0 / vocab))
        for order, size in enumerate(sizes, start=1):
            self.register_buffer(f"keys_{order}", torch.full((size,), -1, dtype=torch.int64))
            self.register_buffer(f"alpha_{order}", torch.zeros(size, vocab))
            self.register_buffer(f"gamma_{order}", torch.ones(size))
            self.register_buffer(f"powers_{order}", vocab ** torch.arange(order - 1, -1, -1, dtype=torch.int64),
                                 persistent=False)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """context (B, n-1) ids, oldest first -> next-token probabilities (B, vocab)."""
        probs = self.unigram.expand(context.shape[0], -1)
        for order in range(1, self.config.n):
            keys = getattr(self, f"keys_{order}")
            key = (context[:, context.shape[1] - order :] * getattr(self, f"powers_{order}")).sum(dim=1)
            match = key[:, None] == keys[None, :]
            found = match.any(dim=1)
            row = match.to(torch.int32).argmax(dim=1)
            interpolated = getattr(self, f"alpha_{order}")[row] + getattr(self, f"gamma_{order}")[row][:, None] * probs
            probs = torch.where(found[:, None], interpolated, probs)
        return probs


def count_tables(ids: np.ndarray, vocab: int, n: int, discount: float) -> dict[str, np.ndarray]:
    """Interpolated Kneser-Ney tables from a token stream: raw counts at the
    highest order, continuation counts (distinct left neighbours) below it."""
    ids = np.asarray(ids, dtype=np.int64)
    grams = {k: Counter(zip(*(ids[i : len(ids) - k + 1 + i] for i in range(k)))) for k in range(1, n + 1)}
    tables: dict[str, np.ndarray] = {}
    for order in range(0, n):
        # counts[(context, w)] for contexts of length `order`
        if order == n - 1:
            counts = grams[n]
        else:
            counts = Counter(gram[1:] for gram in grams[order + 2])  # continuation counts N1+(. c w)
        rows: dict[tuple, np.ndarray] = {}
        for gram, value in counts.items():
            rows.setdefault(gram[:-1], np.zeros(vocab))[gram[-1]] += value
        if order == 0:
            row = rows[()]
            total = row.sum()
            types = (row > 0).sum()
            tables["unigram"] = (np.maximum(row - discount, 0) / total + discount * types / total / vocab).astype(np.float32)
            continue
        contexts = sorted(rows)
        matrix = np.stack([rows[c] for c in contexts])
        totals = matrix.sum(axis=1, keepdims=True)
        powers = vocab ** np.arange(order - 1, -1, -1)
        tables[f"keys_{order}"] = (np.array(contexts, dtype=np.int64) * powers).sum(axis=1)
        tables[f"alpha_{order}"] = (np.maximum(matrix - discount, 0) / totals).astype(np.float32)
        tables[f"gamma_{order}"] = (discount * (matrix > 0).sum(axis=1) / totals[:, 0]).astype(np.float32)
    return tables


def build(**config) -> NGramLanguageModel:
    return NGramLanguageModel(NGramConfig(**config))
