"""DCGAN: transposed-convolution generator of 32x32 MNIST digits."""

import zoo


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="dcgan",
            task="image-generation",
            task_config={"judge": "cnn"},  # the classifier whose features score the samples (zoo eval)
            description="DCGAN generator (ConvTranspose2d + BatchNorm + ReLU, Tanh) for 32x32 MNIST digits",
            builder="zoo.plugins.dcgan.model:build",
            config={"latent_dim": 100, "base_channels": 64, "image_channels": 1, "image_size": 32},
            weights={
                "default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml"),
            },
            trainer="dcgan",
            graphs="zoo.plugins.dcgan:graphs",
        )
    )


def graphs(config):
    """The generator's signature for a config: its latent size and image shape."""
    size = config["image_size"]
    return (
        zoo.GraphSpec(
            inputs=(zoo.TensorSpec("z", ("batch", config["latent_dim"]), description="latent vector, N(0, 1)"),),
            outputs=(zoo.TensorSpec("image", ("batch", config["image_channels"], size, size),
                                    description="grayscale digit in [-1, 1]"),),
            preprocessing={"z": {"distribution": "standard normal"}},
            postprocessing={"image": {"layout": "NCHW", "range": [-1.0, 1.0], "to_uint8": "(x + 1) * 127.5"}},
        ),
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="dcgan",
            recipe="zoo.plugins.dcgan.train:DCGANRecipe",
            defaults={"epochs": 25, "batch_size": 64, "lr": 2e-4},
            description="non-saturating GAN loss, Adam(lr 2e-4, betas 0.5/0.999), MNIST training split",
        )
    )
