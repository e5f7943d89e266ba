"""The VAE recipe: minimise the negative ELBO, a Bernoulli reconstruction term
on grey levels in [0, 1] plus the analytic KL divergence to N(0, I), in nats."""

import torch
import torch.nn.functional as F

import zoo
from zoo.data import MNIST_TRAINING_32
from zoo.runtime import TorchBackend
from zoo.tasks.image_generation import (VAE_METRIC_DESCRIPTIONS, generator_metric_descriptions, generator_metrics, judge,
                                        vae_metrics)
from zoo.plugins.vae.model import VAE, VAEConfig, decoder_graph, encoder_graph


def negative_elbo(logits, mu, logvar, images):
    """Per-image reconstruction and KL terms (nats), images in [-1, 1]."""
    targets = (images + 1) / 2
    reconstruction = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1).sum(1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
    return reconstruction, kl


class VAERecipe(zoo.Recipe):
    data_description = MNIST_TRAINING_32
    metric_descriptions = {**generator_metric_descriptions("cnn"), **VAE_METRIC_DESCRIPTIONS}

    def __init__(self, spec, options):
        super().__init__(spec, options)
        model_config = VAEConfig(**self.config)
        self.images = self.mnist_training_images(model_config.image_size)
        self.model = VAE(model_config).to(options.device)
        self.networks = {"model": self.model}
        self.optimizers = {"model": torch.optim.Adam(self.model.parameters(), lr=options.lr)}
        self.shipped = "model"

    def batches(self, epoch):
        return [self.images[indices] for indices in self.index_batches(len(self.images), epoch)]

    def step(self, images):
        self.model.train()
        eps = torch.randn(len(images), self.config["latent_dim"], device=images.device)
        logits, mu, logvar = self.model(images, eps)
        reconstruction, kl = negative_elbo(logits, mu, logvar, images)
        # kl_weight < 1 trades prior fit for sharper decodes (beta-VAE); the card's ELBO always weighs KL by 1.
        loss = (reconstruction + self.settings["kl_weight"] * kl).mean()
        self.optimizers["model"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["model"].step()
        return {"neg_elbo": loss.item(), "kl": kl.mean().item()}

    def evaluate(self):
        model = self.model.cpu().eval()
        spec = self.spec
        decoder = TorchBackend(decoder_graph(model), spec.graph("decoder"))
        encoder = TorchBackend(encoder_graph(model), spec.graph("encoder"))
        return {**generator_metrics(decoder, self.options.data, judge=judge(spec)),
                **vae_metrics(encoder, decoder, self.options.data)}
