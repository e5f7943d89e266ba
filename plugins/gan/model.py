"""The original GAN (Goodfellow et al. 2014) as fully connected networks on flattened digits.

The generator maps a latent vector through linear layers with ReLU to
32*32 pixels and a Tanh (range -1..1), reshaped to (batch, 1, 32, 32) like
every image generator of the zoo. Batch norm after each hidden linear layer
keeps the generator from collapsing onto a few digits (without it the
shipped recipe lost one class entirely). The discriminator maps flattened pixels
through linear layers to a Sigmoid probability of "real"; it uses LeakyReLU
rather than ReLU because a discriminator whose units die passes no gradient
to the generator. Only the generator ships.
"""

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class GANConfig:
    latent_dim: int = 100
    hidden: list[int] = field(default_factory=lambda: [256, 512, 1024])  # generator widths; the discriminator mirrors them
    image_size: int = 32


class Generator(nn.Module):
    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        widths = [config.latent_dim, *config.hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], config.image_size**2), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (batch, latent_dim) -> images (batch, 1, 32, 32) in [-1, 1]."""
        size = self.config.image_size
        return self.net(z).reshape(-1, 1, size, size)


class Discriminator(nn.Module):
    def __init__(self, config: GANConfig):
        super().__init__()
        widths = [config.image_size**2, *reversed(config.hidden)]
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3)]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], 1), nn.Sigmoid())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (batch, 1, 32, 32) -> probability of being real (batch,)."""
        return self.net(images.flatten(1)).flatten()


def build(**config) -> Generator:
    return Generator(GANConfig(**config))
