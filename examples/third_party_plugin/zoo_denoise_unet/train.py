"""The denoising recipe: corrupt clean digits with Gaussian noise, regress the clean digit (MSE)."""

import torch
import torch.nn.functional as F

import zoo
from zoo.data import read_mnist
from zoo_denoise_unet.model import TinyUNet, UNetConfig

EVAL_NOISE_SEED = 0


def to_tensor(images) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    return torch.from_numpy(images).float().unsqueeze(1) / 255.0


def corrupt(clean: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    noise = torch.randn(clean.shape, generator=generator).to(clean.device)
    return (clean + std * noise).clamp(0.0, 1.0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    return round(float(10 * torch.log10(1.0 / F.mse_loss(a, b))), 2)


class DenoiseRecipe(zoo.Recipe):
    data_description = "MNIST t10k, training split (index % 5 != 0, 8,000 images), scaled to [0, 1], plus N(0, noise_std) noise clipped to [0, 1]"
    metric_descriptions = {
        "heldout_psnr": "PSNR (dB) of the denoised 2,000 held-out MNIST images against the clean ones, noise seed 0; higher is better",
        "noisy_psnr": "PSNR (dB) of the noisy held-out inputs themselves: the baseline the model must beat",
    }

    def __init__(self, spec, options):
        super().__init__(spec, options)
        self.noise_std = self.settings["noise_std"]
        images, _ = read_mnist(options.data, "train")
        if options.limit:
            images = images[: options.limit]
        self.images = to_tensor(images).to(options.device)
        self.model = TinyUNet(UNetConfig(**self.config)).to(options.device)
        self.networks = {"model": self.model}
        self.optimizers = {"model": torch.optim.Adam(self.model.parameters(), lr=options.lr)}
        self.shipped = "model"

    def batches(self, epoch):
        return [self.images[index] for index in self.index_batches(len(self.images), epoch)]

    def step(self, clean):
        self.model.train()
        loss = F.mse_loss(self.model(corrupt(clean, self.noise_std)), clean)
        self.optimizers["model"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["model"].step()
        return {"mse": loss.item()}

    def evaluate(self):
        model = self.networks["model"].eval()
        images, _ = read_mnist(self.options.data, "heldout")
        clean = to_tensor(images).to(self.options.device)
        noisy = corrupt(clean, self.noise_std, torch.Generator().manual_seed(EVAL_NOISE_SEED))
        with torch.no_grad():
            denoised = torch.cat([model(chunk) for chunk in noisy.split(500)])
        return {"heldout_psnr": psnr(denoised, clean), "noisy_psnr": psnr(noisy, clean)}
