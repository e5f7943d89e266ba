"""The StyleGAN2 training recipe, scaled down for 32x32 digits on a CPU.

- non-saturating logistic loss;
- lazy R1 regularisation of the discriminator on real images every
  `r1_interval` steps (gamma `r1_gamma`, scaled by the interval as in the paper);
- style mixing: with probability `mixing_prob` a sample takes its first
  layers' w from one z and the rest from another, at a random crossover;
- w_avg tracked as an EMA of the mapped w, used by the truncation trick;
- Adam(betas 0, 0.99), the mapping network at 1/100 of the learning rate
  (through its equalised-lr multiplier);
- the shipped network is an exponential moving average of the generator
  (half-life `ema_kimg` thousand images), as StyleGAN2 samples from G_ema.

Path-length regularisation is left out: it shapes w-space smoothness at a
cost of a second generator pass per step, too dear for this budget.
"""

import copy

import torch
import torch.nn.functional as F

import zoo
from zoo.data import MNIST_TRAINING_32
from zoo.runtime import TorchBackend
from zoo.tasks.image_generation import generator_metric_descriptions, generator_metrics, judge
from zoo.plugins.stylegan.model import Discriminator, Generator, StyleGANConfig

class StyleGANRecipe(zoo.Recipe):
    data_description = MNIST_TRAINING_32
    metric_descriptions = generator_metric_descriptions("cnn")
    single_process = True

    def __init__(self, spec, options):
        super().__init__(spec, options)
        model_config = StyleGANConfig(**self.config)
        self.images = self.mnist_training_images(model_config.image_size)
        self.generator = Generator(model_config).to(options.device)
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.discriminator = Discriminator(model_config).to(options.device)
        betas = (0.0, 0.99)
        # Lazy regularisation: the discriminator's Adam is adjusted for the R1 steps it takes (StyleGAN2 appendix B).
        ratio = self.settings["r1_interval"] / (self.settings["r1_interval"] + 1)
        self.networks = {"generator": self.generator, "generator_ema": self.generator_ema,
                         "discriminator": self.discriminator}
        self.optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=options.lr, betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=options.lr * ratio,
                                              betas=(0.0, 0.99 ** ratio)),
        }
        self.shipped = "generator_ema"
        self.steps = 0

    def batches(self, epoch):
        shuffle = torch.Generator().manual_seed(self.options.seed * 100_003 + epoch)
        order = torch.randperm(len(self.images), generator=shuffle)
        size = min(self.options.batch_size, len(self.images))
        return [self.images[order[i : i + size]] for i in range(0, len(order) - size + 1, size)]

    def mixed_ws(self, batch: int, device, update_w_avg: bool = False) -> torch.Tensor:
        """w+ for a batch: one w per layer, mixing two latents' styles in `mixing_prob` of the samples."""
        generator = self.generator
        z_dim = generator.config.z_dim
        w = generator.map(torch.randn(batch, z_dim, device=device), update_w_avg=update_w_avg)
        ws = generator.broadcast(w)
        if self.settings["mixing_prob"] <= 0:
            return ws
        second = generator.broadcast(generator.map(torch.randn(batch, z_dim, device=device)))
        crossover = torch.randint(1, generator.num_ws, (batch,), device=device)
        crossover = torch.where(torch.rand(batch, device=device) < self.settings["mixing_prob"], crossover,
                                torch.full_like(crossover, generator.num_ws))
        use_second = torch.arange(generator.num_ws, device=device)[None, :] >= crossover[:, None]
        return torch.where(use_second[:, :, None], second, ws)

    def fake_images(self, batch: int, device, update_w_avg: bool = False) -> torch.Tensor:
        ws = self.mixed_ws(batch, device, update_w_avg)
        return self.generator.synthesize(ws, self.generator.make_noise(batch, device=device))

    def step(self, real):
        self.generator.train()
        self.steps += 1
        batch, device = len(real), real.device

        # Discriminator: logistic loss on real and fake, plus lazy R1 on real images.
        with torch.no_grad():
            fake = self.fake_images(batch, device)
        d_loss = F.softplus(self.discriminator(fake)).mean() + F.softplus(-self.discriminator(real)).mean()
        losses = {"d_loss": d_loss.item()}
        if self.steps % self.settings["r1_interval"] == 0:
            real_for_r1 = real.detach().requires_grad_(True)
            (gradient,) = torch.autograd.grad(self.discriminator(real_for_r1).sum(), real_for_r1, create_graph=True)
            r1 = gradient.square().sum(dim=(1, 2, 3)).mean()
            d_loss = d_loss + r1 * (self.settings["r1_gamma"] / 2) * self.settings["r1_interval"]
            losses["r1"] = r1.item()
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["discriminator"].step()

        # Generator: non-saturating loss, softplus(-D(G(z))).
        g_loss = F.softplus(-self.discriminator(self.fake_images(batch, device, update_w_avg=True))).mean()
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        self.update_ema(batch)
        losses["g_loss"] = g_loss.item()
        return losses

    @torch.no_grad()
    def update_ema(self, batch: int) -> None:
        beta = 0.5 ** (batch / (self.settings["ema_kimg"] * 1000))
        for average, current in zip(self.generator_ema.parameters(), self.generator.parameters()):
            average.lerp_(current, 1.0 - beta)
        for average, current in zip(self.generator_ema.buffers(), self.generator.buffers()):
            average.copy_(current)

    def evaluate(self):
        self.generator_ema.eval()
        spec = self.spec
        backend = TorchBackend(self.generator_ema.cpu(), spec.graph())
        return generator_metrics(backend, self.options.data, judge=judge(spec))
