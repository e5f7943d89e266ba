"""A character-level GRU language model: embedding, stacked GRU, linear head.

`forward` runs whole sequences (training, evaluation); `GRUStep` is the
exported graph: one token with the hidden state as an explicit input and output.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class GRUConfig:
    vocab_size: int = 65
    n_embd: int = 64
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.0


class GRULanguageModel(nn.Module):
    def __init__(self, config: GRUConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.n_embd)
        self.gru = nn.GRU(config.n_embd, config.hidden, config.layers, batch_first=True,
                          dropout=config.dropout if config.layers > 1 else 0.0)
        self.head = nn.Linear(config.hidden, config.vocab_size)

    def forward(self, idx: torch.Tensor, state: torch.Tensor | None = None):
        """ids (B, T) -> logits (B, T, vocab); with `state` also returns the new hidden state."""
        output, new_state = self.gru(self.embedding(idx), state)
        logits = self.head(output)
        return logits if state is None else (logits, new_state)


class GRUStep(nn.Module):
    """input_ids (B, 1), h0 (layers, B, hidden) -> logits (B, vocab), h."""

    def __init__(self, model: GRULanguageModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids, h0):
        logits, h = self.model(input_ids, h0)
        return logits[:, -1], h


def step_module(model: GRULanguageModel) -> GRUStep:
    return GRUStep(model).eval()


def build(**config) -> GRULanguageModel:
    return GRULanguageModel(GRUConfig(**config))
