"""A character-level LSTM language model: embedding, stacked LSTM, linear head.

`forward` runs whole sequences (training, evaluation); `LSTMStep` is the
exported graph: one token with the hidden and cell state as explicit inputs
and outputs, so ONNX Runtime generates one cheap step per character.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LSTMConfig:
    vocab_size: int = 65
    n_embd: int = 64
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.0


class LSTMLanguageModel(nn.Module):
    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.n_embd)
        self.lstm = nn.LSTM(config.n_embd, config.hidden, config.layers, batch_first=True,
                            dropout=config.dropout if config.layers > 1 else 0.0)
        self.head = nn.Linear(config.hidden, config.vocab_size)

    def forward(self, idx: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """ids (B, T) -> logits (B, T, vocab); with `state` also returns the new (h, c)."""
        output, new_state = self.lstm(self.embedding(idx), state)
        logits = self.head(output)
        return logits if state is None else (logits, new_state)


class LSTMStep(nn.Module):
    """input_ids (B, 1), h0 (layers, B, hidden), c0 -> logits (B, vocab), h, c."""

    def __init__(self, model: LSTMLanguageModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids, h0, c0):
        logits, (h, c) = self.model(input_ids, (h0, c0))
        return logits[:, -1], h, c


def step_module(model: LSTMLanguageModel) -> LSTMStep:
    return LSTMStep(model).eval()


def build(**config) -> LSTMLanguageModel:
    return LSTMLanguageModel(LSTMConfig(**config))
