"""A small VGG-style digit classifier for 32x32 grayscale images.

Two blocks of two 3x3 convolutions (batch norm, ReLU) each end in 2x2 max
pooling (32 -> 16 -> 8); a fully connected layer maps the flattened 8x8 maps
to the penultimate features, and a last linear layer to the ten class
logits. The penultimate features double as the embedding the generator
metrics (FID-CNN) compare.
"""

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class CNNConfig:
    channels: list[int] = field(default_factory=lambda: [32, 64])  # width of each conv block
    hidden: int = 128  # penultimate features
    num_classes: int = 10
    dropout: float = 0.3
    image_size: int = 32


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for channels_in in (in_channels, out_channels):
        layers += [nn.Conv2d(channels_in, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


class CNN(nn.Module):
    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        widths = [1, *config.channels]
        self.conv = nn.Sequential(*(_block(a, b) for a, b in zip(widths, widths[1:])))
        side = config.image_size // 2 ** len(config.channels)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * side * side, config.hidden), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """images (batch, 1, 32, 32) in [-1, 1] -> penultimate features (batch, hidden)."""
        return self.embed(self.conv(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (batch, 1, 32, 32) in [-1, 1] -> class logits (batch, num_classes)."""
        return self.head(self.dropout(self.features(images)))


class FeaturesAndLogits(nn.Module):
    """The exported "features" graph: one pass gives the embedding and the prediction."""

    def __init__(self, model: CNN):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.features(images)
        return features, self.model.head(features)


def features_and_logits(model: CNN) -> nn.Module:
    return FeaturesAndLogits(model).eval()


def build(**config) -> CNN:
    return CNN(CNNConfig(**config))
