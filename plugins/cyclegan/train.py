"""The CycleGAN training recipe: least-squares GAN, cycle-consistency and
identity losses over unpaired MNIST and USPS training images (Zhu et al. 2017)."""

import torch
import torch.nn.functional as F

import zoo
from zoo.runtime import TorchBackend, open_backend
from zoo.tasks.image_generation import feature_backend
from zoo.tasks.image_translation import (DOMAINS, domain_judge, judge, metric_descriptions, read_domain,
                                         translation_metrics)
from zoo.plugins.cyclegan.model import CycleGANConfig, PatchDiscriminator, build, init_weights

SIZE = 32
# Recipe options (`--set key=value`): loss weights as in the paper, the fake-image history
# each discriminator also trains on (Shrivastava et al. 2017), which damps oscillation, and the
# share of the run after which the learning rate decays linearly to zero (the paper's schedule).
class ImagePool:
    """The last `size` fakes; half of each returned batch is drawn from this history."""

    def __init__(self, size: int):
        self.size, self.images = size, []

    def __call__(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        returned = []
        for image in fakes.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                returned.append(image)
            elif torch.rand(()) < 0.5:
                index = int(torch.randint(self.size, ()))
                returned.append(self.images[index])
                self.images[index] = image
            else:
                returned.append(image)
        return torch.stack(returned)


class CycleGANRecipe(zoo.Recipe):
    data_description = (
        "unpaired: domain A = MNIST t10k training split (index % 5 != 0, 8,000 images), domain B = USPS train "
        "(7,291 images, 16x16 resized to MNIST's 20x20 digit box); both zero-padded to 32x32, scaled to [-1, 1]"
    )
    metric_descriptions = {**metric_descriptions("mnist", "usps", "cnn:usps", "cnn:domain"),
                           **metric_descriptions("usps", "mnist", "cnn", "cnn:domain")}

    def __init__(self, spec, options):
        super().__init__(spec, options)
        device = options.device
        self.images = {}
        for name in ("a", "b"):
            source = DOMAINS["mnist" if name == "a" else "usps"]
            images, _ = read_domain(options.data, source.dataset, source.train_split, SIZE, options.limit)
            self.images[name] = torch.from_numpy(images).to(device)
        model_config = CycleGANConfig(**self.config)
        self.generators = build(**self.config).to(device)
        self.discriminator_a = PatchDiscriminator(model_config).to(device)
        self.discriminator_b = PatchDiscriminator(model_config).to(device)
        for network in (self.generators, self.discriminator_a, self.discriminator_b):
            network.apply(init_weights)
        self.networks = {"generators": self.generators, "discriminator_a": self.discriminator_a,
                         "discriminator_b": self.discriminator_b}
        betas = (0.5, 0.999)
        self.optimizers = {name: torch.optim.Adam(network.parameters(), lr=options.lr, betas=betas)
                           for name, network in self.networks.items()}
        self.shipped = "generators"
        self.pools = {name: ImagePool(int(self.settings["pool_size"])) for name in ("a", "b")}
        per_epoch = len(self.index_batches(min(len(images) for images in self.images.values()), 0))
        self.total_steps = min(options.epochs * per_epoch, options.max_steps or options.epochs * per_epoch)

    def steps_taken(self) -> int:
        """Optimisation steps so far, read from Adam's state, so a resumed run keeps its schedule."""
        state = self.optimizers["generators"].state
        first = next(iter(self.optimizers["generators"].param_groups[0]["params"]))
        return int(state[first]["step"]) if first in state else 0

    def schedule_learning_rate(self) -> float:
        start = self.settings["decay_from"] * self.total_steps
        remaining = (self.total_steps - self.steps_taken()) / max(self.total_steps - start, 1)
        lr = self.options.lr * min(1.0, max(remaining, 0.0))
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr
        return lr

    def batches(self, epoch):
        # Unpaired: independent shuffles of the two domains, as many batches as the smaller one gives.
        offset = 1_000_003  # a different permutation stream for domain B
        a = self.index_batches(len(self.images["a"]), epoch)
        b = self.index_batches(len(self.images["b"]), epoch + offset)
        return [(self.images["a"][i], self.images["b"][j]) for i, j in zip(a, b)]

    def step(self, batch):
        real_a, real_b = batch
        count = len(real_a)
        lr = self.schedule_learning_rate()
        self.generators.train()
        # One call runs both generators (through the DDP wrapper when distributed):
        # A->B on [real A, real B] gives the fake B and B's identity image, and vice versa.
        to_b, to_a = self.generators(torch.cat([real_a, real_b]), torch.cat([real_b, real_a]))
        fake_b, same_b = to_b[:count], to_b[count:]
        fake_a, same_a = to_a[:count], to_a[count:]
        cycled_b, cycled_a = self.generators(fake_a, fake_b)

        score_b, score_a = self.discriminator_b(fake_b), self.discriminator_a(fake_a)
        gan = F.mse_loss(score_b, torch.ones_like(score_b)) + F.mse_loss(score_a, torch.ones_like(score_a))
        cycle = F.l1_loss(cycled_a, real_a) + F.l1_loss(cycled_b, real_b)
        identity = F.l1_loss(same_a, real_a) + F.l1_loss(same_b, real_b)
        g_loss = gan + self.settings["cycle_weight"] * cycle + self.settings["identity_weight"] * identity
        self.optimizers["generators"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generators"].step()

        d_losses = {}
        for name, real, fake in (("a", real_a, fake_a), ("b", real_b, fake_b)):
            discriminator = getattr(self, f"discriminator_{name}")
            scores = discriminator(torch.cat([real, self.pools[name](fake)]))
            targets = torch.cat([torch.ones_like(scores[:count]), torch.zeros_like(scores[count:])])
            d_losses[name] = F.mse_loss(scores, targets)
            optimizer = self.optimizers[f"discriminator_{name}"]
            optimizer.zero_grad(set_to_none=True)  # also drops what the generator step left in its gradients
            d_losses[name].backward()
            optimizer.step()
        return {"gan": gan.item(), "cycle": cycle.item(), "identity": identity.item(),
                "d_a": d_losses["a"].item(), "d_b": d_losses["b"].item(), "lr": lr}

    def evaluate(self):
        model = self.networks["generators"].eval()
        spec = self.spec
        backends = {graph.name: TorchBackend(getattr(model, graph.name), graph, self.options.device)
                    for graph in spec.graphs}
        domains = domain_judge(spec)
        metrics = {}
        for forward, backward in (("a2b", "b2a"), ("b2a", "a2b")):
            target = backends[forward].graph.postprocessing["translated"]["domain"]
            metrics.update(translation_metrics(backends[forward], backends[backward],
                                               feature_backend("torch", judge(spec, target)), self.options.data,
                                               domain_judge=open_backend(domains, "torch") if domains else None))
        return metrics
