"""A variational autoencoder (Kingma and Welling 2014) of 32x32 digits.

An MLP encoder maps flattened pixels to the mean and log-variance of a diagonal
Gaussian q(z | x); the decoder maps z to Bernoulli logits of each pixel's grey
level, either as an MLP mirroring the encoder or, sharper, as transposed
convolutions from a 4x4 seed (`decoder="conv"`). The reparameterisation z = mu + exp(logvar / 2) * eps takes eps as an
argument: randomness is always an input, so no exported graph contains it.
"""

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class VAEConfig:
    latent_dim: int = 16
    hidden: list[int] = field(default_factory=lambda: [512, 256])  # encoder widths; an MLP decoder mirrors them
    image_size: int = 32
    decoder: str = "mlp"  # "mlp" or "conv"
    decoder_channels: int = 32  # conv decoder: channels of its last hidden layer; earlier layers double them


def _mlp(widths: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
    return layers


def _conv_decoder(latent_dim: int, width: int) -> nn.Sequential:
    """z -> 4x4 seed of 4 * width channels -> three 2x transposed convolutions -> 32x32 logits."""
    return nn.Sequential(
        nn.Linear(latent_dim, width * 4 * 4 * 4),
        nn.ReLU(inplace=True),
        nn.Unflatten(1, (width * 4, 4, 4)),
        nn.ConvTranspose2d(width * 4, width * 2, 4, stride=2, padding=1),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(width * 2, width, 4, stride=2, padding=1),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),
    )


class VAE(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        if config.decoder not in ("mlp", "conv"):
            raise ValueError(f"unknown decoder {config.decoder!r}; use 'mlp' or 'conv'")
        if config.decoder == "conv" and config.image_size != 32:
            raise ValueError("the conv decoder is laid out for 32x32 images; use image_size=32 or decoder='mlp'")
        self.config = config
        pixels = config.image_size**2
        self.encoder = nn.Sequential(nn.Flatten(), *_mlp([pixels, *config.hidden]))
        self.to_mu = nn.Linear(config.hidden[-1], config.latent_dim)
        self.to_logvar = nn.Linear(config.hidden[-1], config.latent_dim)
        if config.decoder == "conv":
            self.decoder = _conv_decoder(config.latent_dim, config.decoder_channels)
        else:
            widths = [config.latent_dim, *reversed(config.hidden)]
            self.decoder = nn.Sequential(*_mlp(widths), nn.Linear(widths[-1], pixels))

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (batch, 1, 32, 32) in [-1, 1] -> mu, logvar (batch, latent_dim)."""
        hidden = self.encoder(images)
        return self.to_mu(hidden), self.to_logvar(hidden)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (batch, latent_dim) -> pixel logits (batch, 1, 32, 32)."""
        size = self.config.image_size
        return self.decoder(z).reshape(-1, 1, size, size)

    def forward(self, images: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction logits, mu and logvar, with z = mu + exp(logvar / 2) * eps."""
        mu, logvar = self.encode(images)
        return self.decode(mu + torch.exp(0.5 * logvar) * eps), mu, logvar


class DecoderGraph(nn.Module):
    """The exported "decoder" graph: z -> (image in [-1, 1], logits)."""

    def __init__(self, model: VAE):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model.decode(z)
        # The Bernoulli mean sigmoid(logits) in [0, 1], rescaled to [-1, 1]: 2 * sigmoid(l) - 1 = tanh(l / 2).
        return torch.tanh(0.5 * logits), logits


class EncoderGraph(nn.Module):
    """The exported "encoder" graph: image -> (mu, logvar)."""

    def __init__(self, model: VAE):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode(images)


def decoder_graph(model: VAE) -> nn.Module:
    return DecoderGraph(model).eval()


def encoder_graph(model: VAE) -> nn.Module:
    return EncoderGraph(model).eval()


def build(**config) -> VAE:
    return VAE(VAEConfig(**config))
