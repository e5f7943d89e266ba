"""The DCGAN training recipe: the non-saturating GAN loss with Adam(0.5, 0.999)."""

import torch
import torch.nn.functional as F

import zoo
from zoo.data import MNIST_TRAINING_32
from zoo.runtime import TorchBackend
from zoo.tasks.image_generation import generator_metric_descriptions, generator_metrics, judge
from zoo.plugins.dcgan.model import DCGANConfig, Discriminator, Generator, init_weights


class DCGANRecipe(zoo.Recipe):
    data_description = MNIST_TRAINING_32
    metric_descriptions = generator_metric_descriptions("cnn")

    def __init__(self, spec, options):
        super().__init__(spec, options)
        model_config = DCGANConfig(**self.config)
        self.images = self.mnist_training_images(model_config.image_size)
        self.generator = Generator(model_config).to(options.device)
        self.discriminator = Discriminator(model_config).to(options.device)
        self.generator.apply(init_weights)
        self.discriminator.apply(init_weights)
        betas = (0.5, 0.999)
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        self.optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=options.lr, betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=options.lr, betas=betas),
        }
        self.shipped = "generator"

    def batches(self, epoch):
        return [self.images[indices] for indices in self.index_batches(len(self.images), epoch)]

    def step(self, real):
        self.generator.train()
        latent = torch.randn(len(real), self.config["latent_dim"], device=real.device)
        fake = self.generator(latent)

        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + \
            F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["discriminator"].step()

        # Non-saturating generator loss: maximise log D(G(z)).
        fooled = self.discriminator(fake)
        g_loss = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}

    def evaluate(self):
        generator = self.networks["generator"].cpu().eval()
        return generator_metrics(TorchBackend(generator, self.spec.graph()), self.options.data, judge=judge(self.spec))
