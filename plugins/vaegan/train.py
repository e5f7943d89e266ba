"""The VAE-GAN training recipe (Larsen et al. 2016, algorithm 1).

Per batch of real images x:
    mu, logvar = Enc(x);  z = mu + sigma * eps;  x_rec = Dec(z);  x_p = Dec(z_p), z_p ~ N(0, I)
    L_prior = KL(q(z|x) || N(0, I))                                  (nats, summed over latent dims)
    L_llike = 0.5 * ||Dis_l(x) - Dis_l(x_rec)||^2                    (a unit Gaussian in Dis_l space)
    L_GAN   = log D(x) + log(1 - D(x_rec)) + log(1 - D(x_p))
The encoder minimises L_prior + L_llike, the decoder gamma * L_llike - L_GAN
(in its non-saturating form), the discriminator -L_GAN. Each network gets
only the gradient of its own loss. No pixel-space loss is used.
"""

import torch
import torch.nn.functional as F

import zoo
from zoo.data import MNIST_TRAINING_32
from zoo.runtime import TorchBackend
from zoo.tasks.image_generation import generator_metric_descriptions, generator_metrics, judge
from zoo.plugins.vaegan.model import VAEGAN, Discriminator, VAEGANConfig

def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over latent dimensions."""
    return -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(dim=1)


class VAEGANRecipe(zoo.Recipe):
    data_description = MNIST_TRAINING_32
    metric_descriptions = generator_metric_descriptions("cnn")
    single_process = True

    def __init__(self, spec, options):
        super().__init__(spec, options)
        model_config = VAEGANConfig(**self.config)
        self.images = self.mnist_training_images(model_config.image_size)
        self.model = VAEGAN(model_config).to(options.device)
        self.discriminator = Discriminator(model_config).to(options.device)
        betas = (0.5, 0.999)
        self.networks = {"vaegan": self.model, "discriminator": self.discriminator}
        self.optimizers = {
            "encoder": torch.optim.Adam(self.model.encoder.parameters(), lr=options.lr, betas=betas),
            "decoder": torch.optim.Adam(self.model.decoder.parameters(), lr=options.lr, betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=options.lr, betas=betas),
        }
        self.shipped = "vaegan"

    def batches(self, epoch):
        shuffle = torch.Generator().manual_seed(self.options.seed * 100_003 + epoch)
        order = torch.randperm(len(self.images), generator=shuffle)
        size = min(self.options.batch_size, len(self.images))
        return [self.images[order[i : i + size]] for i in range(0, len(order) - size + 1, size)]

    def step(self, real):
        self.model.train()
        batch = len(real)
        mu, logvar = self.model.encoder(real)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        prior_z = torch.randn_like(mu)
        # One decoder pass over both latents, so batch norm sees reconstructions and samples alike.
        reconstructed, sampled = self.model.decoder(torch.cat([z, prior_z])).split(batch)

        # Discriminator: real vs. reconstructed and sampled.
        real_logits, _ = self.discriminator(real)
        fake_logits, _ = self.discriminator(torch.cat([reconstructed, sampled]).detach())
        d_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + \
            F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["discriminator"].step()

        # Encoder and decoder, against the updated discriminator.
        _, real_features = self.discriminator(real)
        fake_logits, fake_features = self.discriminator(torch.cat([reconstructed, sampled]))
        llike = 0.5 * (fake_features[:batch] - real_features.detach()).square().sum(dim=1).mean()
        prior = kl_to_standard_normal(mu, logvar).mean()
        gan = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        encoder_parameters = list(self.model.encoder.parameters())
        decoder_parameters = list(self.model.decoder.parameters())
        encoder_gradients = torch.autograd.grad(prior + llike, encoder_parameters, retain_graph=True)
        decoder_gradients = torch.autograd.grad(self.settings["gamma"] * llike + gan, decoder_parameters)
        for parameters, gradients, name in ((encoder_parameters, encoder_gradients, "encoder"),
                                            (decoder_parameters, decoder_gradients, "decoder")):
            for parameter, gradient in zip(parameters, gradients):
                parameter.grad = gradient
            self.optimizers[name].step()
        return {"d_loss": d_loss.item(), "gan": gan.item(), "llike": llike.item(), "kl": prior.item()}

    def evaluate(self):
        self.model.eval()
        spec = self.spec
        backend = TorchBackend(self.model.cpu(), spec.graph())
        return generator_metrics(backend, self.options.data, judge=judge(spec))
