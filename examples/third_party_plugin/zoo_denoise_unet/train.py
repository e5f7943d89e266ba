"""The denoising recipe: corrupt clean digits with Gaussian noise, regress the clean digit (MSE)."""

import torch
import torch.nn.functional as F

import zoo
from zoo.data import read_mnist
from zoo.runtime import TorchBackend
from zoo_denoise_unet.model import TinyUNet, UNetConfig
from zoo_denoise_unet.task import METRIC_DESCRIPTIONS, denoising_metrics


def to_tensor(images) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    return torch.from_numpy(images).float().unsqueeze(1) / 255.0


def corrupt(clean: torch.Tensor, std: float) -> torch.Tensor:
    noise = torch.randn(clean.shape).to(clean.device)
    return (clean + std * noise).clamp(0.0, 1.0)


class DenoiseRecipe(zoo.Recipe):
    data_description = "MNIST t10k, training split (index % 5 != 0, 8,000 images), scaled to [0, 1], plus N(0, noise_std) noise clipped to [0, 1]"
    metric_descriptions = METRIC_DESCRIPTIONS  # the denoising task's `zoo eval` metrics, measured the same way

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
        backend = TorchBackend(self.model.eval(), zoo.get_spec("denoise-unet").graph(), self.options.device)
        return denoising_metrics(backend, self.options.data, self.noise_std)
