"""DCGAN (Radford et al. 2016) for 32x32 grayscale digits.

The generator maps a latent vector to an image through transposed
convolutions with batch norm and ReLU, ending in Tanh (range -1..1). The
discriminator mirrors it with strided convolutions and LeakyReLU; it is only
needed for training, so only the generator's weights ship.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class DCGANConfig:
    latent_dim: int = 100
    base_channels: int = 64  # width of the last hidden layer; earlier layers double it
    image_channels: int = 1
    image_size: int = 32  # 4 * 2**3: three upsampling stages after the 4x4 seed


def _up(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def _down(in_channels: int, out_channels: int, norm: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


class Generator(nn.Module):
    def __init__(self, config: DCGANConfig):
        super().__init__()
        assert config.image_size == 32, "this DCGAN is laid out for 32x32 images"
        self.config = config
        width = config.base_channels
        self.net = nn.Sequential(
            nn.ConvTranspose2d(config.latent_dim, width * 4, 4, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(width * 4),
            nn.ReLU(inplace=True),
            *_up(width * 4, width * 2),
            *_up(width * 2, width),
            nn.ConvTranspose2d(width, config.image_channels, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (batch, latent_dim) -> images (batch, channels, 32, 32) in [-1, 1]."""
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    def __init__(self, config: DCGANConfig):
        super().__init__()
        width = config.base_channels
        self.net = nn.Sequential(
            *_down(config.image_channels, width, norm=False),
            *_down(width, width * 2),
            *_down(width * 2, width * 4),
            nn.Conv2d(width * 4, 1, 4, stride=1, padding=0),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (batch, channels, 32, 32) -> real/fake logits (batch,)."""
        return self.net(images).flatten()


def init_weights(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: N(0, 0.02) convolutions, N(1, 0.02) norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(**config) -> Generator:
    return Generator(DCGANConfig(**config))
