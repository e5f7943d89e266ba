"""A StyleGAN2-style generator (Karras et al. 2020) for 32x32 grayscale digits.

What makes it StyleGAN2 rather than a DCGAN with extra inputs:

- a mapping network turns z into an intermediate latent w (normalised z,
  equalised-learning-rate MLP with a reduced learning rate);
- synthesis starts from a learned 4x4 constant, not from z;
- every convolution is *modulated* by a per-layer style (an affine map of w)
  and *demodulated* so each output feature map has unit expected variance;
- per-layer noise inputs add stochastic detail, scaled by learned strengths;
- one w per layer ("w+"), so training can mix two latents' styles;
- `w_avg`, an exponential moving average of w, gives the truncation trick:
  w' = w_avg + psi * (w - w_avg).

The modulated convolution uses StyleGAN2's non-fused form: scale the input
channels by the style, convolve with the shared weight, scale the output
channels by the demodulation coefficients. It equals convolving with the
per-sample weight w_ijk * s_i / sigma_j, but needs no grouped convolution, so
the exported ONNX graph keeps a dynamic batch axis (ONNX's Conv `group` is a
static attribute). Upsampling is bilinear and the output is built with the
"skip" architecture (a toRGB at every resolution, summed after upsampling).

Randomness is never drawn inside the modules: noise maps are arguments, so
the exported graphs take them as inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class StyleGANConfig:
    z_dim: int = 64
    w_dim: int = 64
    mapping_layers: int = 4
    mapping_lr_multiplier: float = 0.01  # StyleGAN's slower mapping network
    channels_4: int = 128  # feature maps at each resolution
    channels_8: int = 128
    channels_16: int = 64
    channels_32: int = 32
    image_channels: int = 1
    image_size: int = 32
    w_avg_beta: float = 0.995  # EMA decay of the tracked w average

    @property
    def resolutions(self) -> tuple[int, ...]:
        return (4, 8, 16, 32)

    def channels(self, resolution: int) -> int:
        return getattr(self, f"channels_{resolution}")


def noise_shapes(config: StyleGANConfig) -> list[tuple[str, int]]:
    """(name, resolution) of each noise input, in the order synthesis takes them."""
    shapes = [("noise_4", 4)]
    for resolution in config.resolutions[1:]:
        shapes += [(f"noise_{resolution}a", resolution), (f"noise_{resolution}b", resolution)]
    return shapes


def num_ws(config: StyleGANConfig) -> int:
    """One w per modulated convolution, plus one for the final toRGB."""
    return len(noise_shapes(config)) + 1


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weights stored N(0, 1/lr_mul^2), scaled at run time."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_multiplier: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate (used by the discriminator)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)


class MappingNetwork(nn.Module):
    """z -> w: pixel-normalise z, then an MLP with leaky ReLU."""

    def __init__(self, config: StyleGANConfig):
        super().__init__()
        layers = []
        features = config.z_dim
        for _ in range(config.mapping_layers):
            layers += [EqualLinear(features, config.w_dim, lr_multiplier=config.mapping_lr_multiplier), nn.LeakyReLU(0.2)]
            features = config.w_dim
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        return self.net(z) * math.sqrt(2.0)  # leaky ReLU gain keeps activations at unit scale


class ModulatedConv2d(nn.Module):
    """A style-modulated convolution, demodulated unless it is a toRGB layer."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, w_dim: int, demodulate: bool = True):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # styles start at 1
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.demodulate = demodulate
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)  # (batch, in_channels)
        weight = self.weight * self.weight_gain
        if not self.demodulate:
            # toRGB: modulation only; gain as in StyleGAN2 so the RGB skip sum stays small.
            return F.conv2d(x * styles[:, :, None, None], weight, padding=self.padding)
        x = F.conv2d(x * styles[:, :, None, None], weight, padding=self.padding)
        # sigma_j = sqrt(sum_i,k (w_ijk * s_i)^2): the std of output j for unit-variance inputs.
        demod = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8)  # (batch, out)
        return x * demod[:, :, None, None]


class StyleLayer(nn.Module):
    """Modulated 3x3 conv, scaled noise, bias, leaky ReLU (gain sqrt 2)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, w) + noise * self.noise_strength
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * math.sqrt(2.0)


class ToImage(nn.Module):
    def __init__(self, in_channels: int, image_channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, image_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(image_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


class SynthesisNetwork(nn.Module):
    """(w per layer, noise per layer) -> image, starting from a learned constant."""

    def __init__(self, config: StyleGANConfig):
        super().__init__()
        self.config = config
        first = config.channels(4)
        self.const = nn.Parameter(torch.randn(first, 4, 4))
        self.layers = nn.ModuleList([StyleLayer(first, first, config.w_dim)])
        self.to_images = nn.ModuleList([ToImage(first, config.image_channels, config.w_dim)])
        for previous, resolution in zip(config.resolutions, config.resolutions[1:]):
            in_channels, out_channels = config.channels(previous), config.channels(resolution)
            self.layers.append(StyleLayer(in_channels, out_channels, config.w_dim))
            self.layers.append(StyleLayer(out_channels, out_channels, config.w_dim))
            self.to_images.append(ToImage(out_channels, config.image_channels, config.w_dim))

    def forward(self, ws: torch.Tensor, noises: list[torch.Tensor]) -> torch.Tensor:
        """ws (batch, num_ws, w_dim), noises [(batch, 1, r, r)] -> image (batch, C, 32, 32), unbounded."""
        x = self.const[None].expand(ws.shape[0], -1, -1, -1)
        x = self.layers[0](x, ws[:, 0], noises[0])
        # Each toRGB takes the w of the layer that follows it (the last one its own), as in StyleGAN2.
        image = self.to_images[0](x, ws[:, 1])
        for block, to_image in enumerate(self.to_images[1:]):
            first = 1 + 2 * block
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = self.layers[first](x, ws[:, first], noises[first])
            x = self.layers[first + 1](x, ws[:, first + 1], noises[first + 1])
            image = F.interpolate(image, scale_factor=2.0, mode="bilinear", align_corners=False)
            image = image + to_image(x, ws[:, first + 2])
        return image


class Generator(nn.Module):
    """z -> w -> (truncation) -> w+ -> image in [-1, 1]."""

    def __init__(self, config: StyleGANConfig):
        super().__init__()
        assert config.image_size == 32, "this StyleGAN is laid out for 32x32 images"
        self.config = config
        self.num_ws = num_ws(config)
        self.mapping = MappingNetwork(config)
        self.synthesis = SynthesisNetwork(config)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    def map(self, z: torch.Tensor, truncation: torch.Tensor | None = None, update_w_avg: bool = False) -> torch.Tensor:
        """z (batch, z_dim) -> w (batch, w_dim); truncation (batch,) pulls w towards w_avg."""
        w = self.mapping(z)
        if update_w_avg:
            self.w_avg.copy_(torch.lerp(w.detach().mean(dim=0), self.w_avg, self.config.w_avg_beta))
        if truncation is not None:
            w = self.w_avg + truncation[:, None] * (w - self.w_avg)
        return w

    def synthesize(self, ws: torch.Tensor, noises: list[torch.Tensor]) -> torch.Tensor:
        return torch.tanh(self.synthesis(ws, noises))

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """The same w for every layer: (batch, w_dim) -> (batch, num_ws, w_dim)."""
        return w[:, None].expand(-1, self.num_ws, -1)

    def forward(self, z, truncation, noise_4, noise_8a, noise_8b, noise_16a, noise_16b, noise_32a, noise_32b):
        """The exported "generator" graph: z, per-sample truncation psi and the noise maps -> image.

        The noise maps are named arguments (not *args) so torch.export sees a fixed signature.
        """
        noises = [noise_4, noise_8a, noise_8b, noise_16a, noise_16b, noise_32a, noise_32b]
        return self.synthesize(self.broadcast(self.map(z, truncation)), noises)

    def make_noise(self, batch: int, generator: torch.Generator | None = None, device=None) -> list[torch.Tensor]:
        return [
            torch.randn(batch, 1, resolution, resolution, generator=generator, device=device)
            for _, resolution in noise_shapes(self.config)
        ]


class Mapping(nn.Module):
    """The exported "mapping" graph: (z, truncation) -> truncated w."""

    def __init__(self, generator: Generator):
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor, truncation: torch.Tensor) -> torch.Tensor:
        return self.generator.map(z, truncation)


class Synthesis(nn.Module):
    """The exported "synthesis" graph: w per layer (batch, num_ws, w_dim) and noise maps -> image."""

    def __init__(self, generator: Generator):
        super().__init__()
        self.generator = generator

    def forward(self, ws, noise_4, noise_8a, noise_8b, noise_16a, noise_16b, noise_32a, noise_32b):
        noises = [noise_4, noise_8a, noise_8b, noise_16a, noise_16b, noise_32a, noise_32b]
        return self.generator.synthesize(ws, noises)


def mapping_graph(generator: Generator) -> Mapping:
    return Mapping(generator)


def synthesis_graph(generator: Generator) -> Synthesis:
    return Synthesis(generator)


class DiscriminatorBlock(nn.Module):
    """Residual block: two 3x3 convs then 2x average-pool, plus a pooled 1x1 skip (StyleGAN2's resnet D)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(F.avg_pool2d(x, 2))
        x = F.leaky_relu(self.conv0(x), 0.2) * math.sqrt(2.0)
        x = F.avg_pool2d(F.leaky_relu(self.conv1(x), 0.2) * math.sqrt(2.0), 2)
        return (x + skip) * math.sqrt(0.5)


class Discriminator(nn.Module):
    """fromRGB, residual blocks 32 -> 4, minibatch standard deviation, conv, two linear layers."""

    def __init__(self, config: StyleGANConfig, mbstd_group: int = 4):
        super().__init__()
        widths = [config.channels(r) for r in reversed(config.resolutions)]  # 32, 16, 8, 4
        widths = [max(w, 32) for w in widths]
        self.from_image = EqualConv2d(config.image_channels, widths[0], 1)
        self.blocks = nn.Sequential(*[DiscriminatorBlock(a, b) for a, b in zip(widths, widths[1:])])
        self.mbstd_group = mbstd_group
        last = widths[-1]
        self.conv = EqualConv2d(last + 1, last, 3)
        self.fc = EqualLinear(last * 16, last)
        self.out = EqualLinear(last, 1)

    def minibatch_stddev(self, x: torch.Tensor) -> torch.Tensor:
        """Append the mean std over groups of samples as an extra feature map (fights mode collapse)."""
        batch, channels, height, width = x.shape
        group = min(self.mbstd_group, batch)
        if batch % group:
            group = 1
        y = x.reshape(group, -1, channels, height, width)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()
        y = y.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1).repeat(group, 1, height, width)
        return torch.cat([x, y], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.from_image(images), 0.2) * math.sqrt(2.0)
        x = self.blocks(x)
        x = F.leaky_relu(self.conv(self.minibatch_stddev(x)), 0.2) * math.sqrt(2.0)
        x = F.leaky_relu(self.fc(x.flatten(1)), 0.2) * math.sqrt(2.0)
        return self.out(x).flatten()


def build(**config) -> Generator:
    return Generator(StyleGANConfig(**config))
