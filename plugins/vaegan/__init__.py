"""VAE-GAN (Larsen et al. 2016): a VAE whose decoder is also a GAN generator,
with the reconstruction measured in the discriminator's feature space."""

import zoo


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="vaegan",
            task="image-generation",
            task_config={"judge": "cnn"},  # the classifier whose features score the samples (zoo eval)
            description="VAE-GAN: conv VAE whose decoder is a GAN generator, learned feature-space similarity; 32x32 MNIST",
            builder="zoo.plugins.vaegan.model:build",
            config={"latent_dim": 32, "base_channels": 32, "image_channels": 1, "image_size": 32},
            weights={
                "default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml"),
            },
            trainer="vaegan",
            graphs="zoo.plugins.vaegan:graphs",
        )
    )


def graphs(config):
    """Decoder and encoder for a config: the latent size and image shape follow it."""
    latent, size = config["latent_dim"], config["image_size"]
    image = ("batch", config["image_channels"], size, size)
    return (
        zoo.GraphSpec(
            name="decoder",
            inputs=(zoo.TensorSpec("z", ("batch", latent), description="latent vector, N(0, 1) to sample"),),
            outputs=(zoo.TensorSpec("image", image, description="grayscale digit in [-1, 1]"),),
            preprocessing={"z": {"distribution": "standard normal"}},
            postprocessing={"image": {"layout": "NCHW", "range": [-1.0, 1.0], "to_uint8": "(x + 1) * 127.5"}},
            description="z -> image (generation)",
        ),
        zoo.GraphSpec(
            name="encoder",
            role="encoder",
            module="zoo.plugins.vaegan.model:encoder_graph",
            inputs=(zoo.TensorSpec("image", image, example="image",
                                   description=f"grayscale digit in [-1, 1], 28x28 MNIST zero-padded to {size}x{size}"),),
            outputs=(zoo.TensorSpec("mu", ("batch", latent), description="posterior mean"),
                     zoo.TensorSpec("logvar", ("batch", latent), description="posterior log-variance")),
            preprocessing={"image": {"layout": "NCHW", "range": [-1.0, 1.0], "from_uint8": "x / 127.5 - 1"}},
            description="image -> mu, logvar (the approximate posterior)",
        ),
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="vaegan",
            recipe="zoo.plugins.vaegan.train:VAEGANRecipe",
            defaults={"epochs": 12, "batch_size": 64, "lr": 3e-4},
            hyperparameters=(zoo.Setting("gamma", 0.01, "weight of the feature-space reconstruction in the decoder's loss"),),
            description="Larsen et al. 2016 losses (KL + Dis_l likelihood + GAN), Adam(3e-4, 0.5/0.999)",
        )
    )
