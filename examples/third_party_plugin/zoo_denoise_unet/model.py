"""A tiny U-Net (Ronneberger et al. 2015) for 28x28 grayscale images.

Two downsampling levels (28 -> 14 -> 7) and back, with the encoder's
features concatenated into the decoder at each level, so fine strokes
survive the bottleneck.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class UNetConfig:
    channels: int = 1  # image channels
    width: int = 16  # channels at full resolution; each level down doubles them


def block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions with GroupNorm (batch-size independent, so eval equals train) and SiLU."""
    groups = min(8, out_channels)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.GroupNorm(groups, out_channels), nn.SiLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.GroupNorm(groups, out_channels), nn.SiLU(),
    )


class TinyUNet(nn.Module):
    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        width = config.width
        self.encode_full = block(config.channels, width)
        self.encode_half = block(width, 2 * width)
        self.middle = block(2 * width, 4 * width)
        self.up_half = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.decode_half = block(4 * width, 2 * width)
        self.up_full = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.decode_full = block(2 * width, width)
        self.head = nn.Conv2d(width, config.channels, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """noisy (batch, channels, 28, 28) in [0, 1] -> denoised, same shape, in [0, 1]."""
        full = self.encode_full(noisy)
        half = self.encode_half(self.pool(full))
        middle = self.middle(self.pool(half))
        half = self.decode_half(torch.cat([self.up_half(middle), half], dim=1))
        full = self.decode_full(torch.cat([self.up_full(half), full], dim=1))
        return torch.sigmoid(self.head(full))


def build(**config) -> TinyUNet:
    return TinyUNet(UNetConfig(**config))
