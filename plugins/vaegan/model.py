"""VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned
similarity metric") for 32x32 grayscale digits.

A VAE whose decoder is also a GAN generator. The discriminator judges real
images, reconstructions and samples from the prior, and one of its hidden
layers ("Dis_l") is the space where reconstructions are compared with their
inputs, in place of a pixel-wise likelihood. Only the encoder and decoder
ship; the discriminator is needed for training.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class VAEGANConfig:
    latent_dim: int = 32
    base_channels: int = 32  # width of the first encoder / last decoder stage; each stage doubles it
    image_channels: int = 1
    image_size: int = 32  # three stride-2 stages from 4x4


class Encoder(nn.Module):
    """image (batch, C, 32, 32) in [-1, 1] -> mu, logvar (batch, latent_dim)."""

    def __init__(self, config: VAEGANConfig):
        super().__init__()
        width = config.base_channels
        self.net = nn.Sequential(
            nn.Conv2d(config.image_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, width * 2, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width * 2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width * 2, width * 4, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width * 4),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.head = nn.Linear(width * 4 * 16, 2 * config.latent_dim)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.net(images)).chunk(2, dim=1)
        return mu, logvar


class Decoder(nn.Module):
    """z (batch, latent_dim) -> image (batch, C, 32, 32) in [-1, 1]; the GAN's generator."""

    def __init__(self, config: VAEGANConfig):
        super().__init__()
        width = config.base_channels
        self.width = width
        self.project = nn.Sequential(nn.Linear(config.latent_dim, width * 4 * 16, bias=False),
                                     nn.BatchNorm1d(width * 4 * 16), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(width * 4, width * 2, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width * 2),
            nn.ReLU(),
            nn.ConvTranspose2d(width * 2, width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, config.image_channels, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(z).reshape(-1, self.width * 4, 4, 4))


class VAEGAN(nn.Module):
    """The shipped network: encoder and decoder. Calling it decodes (z -> image)."""

    def __init__(self, config: VAEGANConfig):
        super().__init__()
        assert config.image_size == 32, "this VAE-GAN is laid out for 32x32 images"
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class Discriminator(nn.Module):
    """image -> (real/fake logit, Dis_l features). Dis_l is the third conv layer's
    activation, the layer Larsen et al. measure reconstructions in.

    No batch norm: the features of one image must not depend on the rest of
    its batch, since they define that image's reconstruction error.
    """

    def __init__(self, config: VAEGANConfig):
        super().__init__()
        width = config.base_channels
        self.features = nn.Sequential(
            nn.Conv2d(config.image_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, width * 2, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width * 2, width * 4, 3, padding=1),
            nn.LeakyReLU(0.2),
        )
        self.classify = nn.Sequential(
            nn.Conv2d(width * 4, width * 4, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(width * 4 * 16, 1),
        )

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(images)
        return self.classify(features).flatten(), features.flatten(1)


def encoder_graph(model: VAEGAN) -> Encoder:
    return model.encoder


def build(**config) -> VAEGAN:
    return VAEGAN(VAEGANConfig(**config))
