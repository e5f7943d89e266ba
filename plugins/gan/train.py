"""The GAN recipe: binary cross-entropy on the discriminator's Sigmoid (real
labels smoothed to 0.9), the non-saturating generator loss, Adam(0.5, 0.999);
the shipped generator is an exponential moving average of the trained one."""

import torch
import torch.nn.functional as F

import zoo
from zoo.data import MNIST_TRAINING_32
from zoo.runtime import TorchBackend
from zoo.training import moving_average
from zoo.tasks.image_generation import generator_metric_descriptions, generator_metrics, judge
from zoo.plugins.gan.model import Discriminator, GANConfig, Generator


class GANRecipe(zoo.Recipe):
    data_description = MNIST_TRAINING_32
    metric_descriptions = generator_metric_descriptions("cnn")

    def __init__(self, spec, options):
        super().__init__(spec, options)
        model_config = GANConfig(**self.config)
        self.images = self.mnist_training_images(model_config.image_size)
        self.generator = Generator(model_config).to(options.device)
        self.discriminator = Discriminator(model_config).to(options.device)
        betas = (0.5, 0.999)
        self.average = moving_average(self.generator, self.settings["ema_decay"])
        self.networks = {"generator": self.generator, "discriminator": self.discriminator, "generator_ema": self.average}
        self.optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=options.lr, betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=options.lr, betas=betas),
        }
        self.shipped = "generator_ema"

    def batches(self, epoch):
        return [self.images[indices] for indices in self.index_batches(len(self.images), epoch)]

    def step(self, real):
        self.generator.train()
        latent = torch.randn(len(real), self.config["latent_dim"], device=real.device)
        fake = self.generator(latent)

        real_score = self.discriminator(real)
        fake_score = self.discriminator(fake.detach())
        # One-sided label smoothing (real = 0.9) keeps the discriminator from overconfidence.
        d_loss = F.binary_cross_entropy(real_score, torch.full_like(real_score, 0.9)) + \
            F.binary_cross_entropy(fake_score, torch.zeros_like(fake_score))
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["discriminator"].step()

        # Non-saturating generator loss: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
        fooled = self.discriminator(fake)
        g_loss = F.binary_cross_entropy(fooled, torch.ones_like(fooled))
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        self.average.update_parameters(self.generator)
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}

    def evaluate(self):
        generator = self.shipped_network().eval()
        return generator_metrics(TorchBackend(generator.cpu(), self.spec.graph()), self.options.data,
                                 judge=judge(self.spec))
