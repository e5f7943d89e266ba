"""CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks") for 32x32 grayscale digits.

Two ResNet generators translate between domain A (MNIST) and domain B (USPS):
a 7x7 convolution, two stride-2 convolutions down, residual blocks, two
transposed convolutions up and a 7x7 convolution with Tanh, with instance
normalization as in the paper. They are fully convolutional, so any height
and width divisible by 4 translates. Two PatchGAN discriminators judge
overlapping patches of each domain; only the generators ship.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class CycleGANConfig:
    image_channels: int = 1
    base_channels: int = 16  # width after the 7x7 stem; each of the two downsamplings doubles it
    residual_blocks: int = 6
    discriminator_channels: int = 32  # width of the PatchGAN's first layer; each downsampling doubles it


def _norm(channels: int) -> nn.InstanceNorm2d:
    # No running statistics: a translation depends on its own image only, in training and inference alike.
    return nn.InstanceNorm2d(channels, affine=True)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", bias=False),
            _norm(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", bias=False),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    """image (batch, C, H, W) in [-1, 1] -> translated image of the same shape, H and W divisible by 4."""

    def __init__(self, config: CycleGANConfig):
        super().__init__()
        width = config.base_channels
        layers = [
            nn.Conv2d(config.image_channels, width, 7, padding=3, padding_mode="reflect", bias=False),
            _norm(width),
            nn.ReLU(),
        ]
        for _ in range(2):
            layers += [nn.Conv2d(width, width * 2, 3, stride=2, padding=1, bias=False), _norm(width * 2), nn.ReLU()]
            width *= 2
        layers += [ResidualBlock(width) for _ in range(config.residual_blocks)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=False),
                _norm(width // 2),
                nn.ReLU(),
            ]
            width //= 2
        layers += [nn.Conv2d(width, config.image_channels, 7, padding=3, padding_mode="reflect"), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class PatchDiscriminator(nn.Module):
    """image (batch, C, 32, 32) -> (batch, 1, 6, 6) least-squares real/fake scores of overlapping patches.

    Two stride-2 layers and two stride-1 layers give 34x34 receptive fields:
    at 32x32 each patch sees most of the digit, whose strokes (thickness,
    slant, how a 1 or a 7 is drawn) tell MNIST from USPS.
    """

    def __init__(self, config: CycleGANConfig):
        super().__init__()
        width = config.discriminator_channels
        self.net = nn.Sequential(
            nn.Conv2d(config.image_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, width * 2, 4, stride=2, padding=1, bias=False),
            _norm(width * 2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width * 2, width * 4, 4, padding=1, bias=False),
            _norm(width * 4),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width * 4, 1, 4, padding=1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class CycleGAN(nn.Module):
    """The shipped network: both generators.

    Calling it translates a batch of each domain at once, (A, B) -> (A->B, B->A),
    so one call of a DistributedDataParallel wrapper runs both generators.
    The exported graphs are the generators alone (`a2b_graph`, `b2a_graph`).
    """

    def __init__(self, config: CycleGANConfig):
        super().__init__()
        self.config = config
        self.a2b = Generator(config)
        self.b2a = Generator(config)

    def forward(self, images_a: torch.Tensor, images_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.a2b(images_a), self.b2a(images_b)


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) convolutions and N(1, 0.02) norm scales, the paper's initialisation."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.InstanceNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def a2b_graph(model: CycleGAN) -> Generator:
    return model.a2b


def b2a_graph(model: CycleGAN) -> Generator:
    return model.b2a


def build(**config) -> CycleGAN:
    return CycleGAN(CycleGANConfig(**config))
