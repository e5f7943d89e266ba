"""GAN: the original fully connected generator and discriminator on flattened 32x32 digits."""

import zoo


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="gan",
            task="image-generation",
            task_config={"judge": "cnn"},  # the classifier whose features score the samples (zoo eval)
            description="MLP GAN generator (Linear + BatchNorm + ReLU, Tanh) for 32x32 MNIST digits",
            builder="zoo.plugins.gan.model:build",
            config={"latent_dim": 100, "hidden": [256, 512, 1024], "image_size": 32},
            weights={
                "default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml"),
            },
            trainer="gan",
            graphs="zoo.plugins.gan:graphs",
        )
    )


def graphs(config):
    """The generator's signature for a config: its latent size and image size."""
    size = config["image_size"]
    return (
        zoo.GraphSpec(
            inputs=(zoo.TensorSpec("z", ("batch", config["latent_dim"]), description="latent vector, N(0, 1)"),),
            outputs=(zoo.TensorSpec("image", ("batch", 1, size, size), description="grayscale digit in [-1, 1]"),),
            preprocessing={"z": {"distribution": "standard normal"}},
            postprocessing={"image": {"layout": "NCHW", "range": [-1.0, 1.0], "to_uint8": "(x + 1) * 127.5"}},
        ),
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="gan",
            recipe="zoo.plugins.gan.train:GANRecipe",
            defaults={"epochs": 50, "batch_size": 64, "lr": 2e-4},
            hyperparameters=(zoo.Setting("ema_decay", 0.999, "decay of the moving average of the generator's weights that ships"),),
            description="non-saturating GAN loss (sigmoid + binary cross-entropy, real labels smoothed to 0.9), Adam(lr 2e-4, betas 0.5/0.999), "
                        "generator weights averaged (EMA), MNIST training split",
        )
    )
