"""CycleGAN: unpaired translation of 32x32 digits between MNIST (domain A) and USPS (domain B)."""

import zoo

# Both domains use the zoo's digit layout (zoo.data.mnist_frame), the one its classifiers know, so a
# translation changes strokes and style, not the digit's size or position.
FRAMES = {"mnist": "the 28x28 MNIST image zero-padded to 32x32",
          "usps": "the 16x16 USPS image resized to MNIST's 20x20 digit box, zero-padded to 32x32"}
# How the USPS frame is resampled; a consumer needs it to reproduce the frame exactly.
RESAMPLING = {"usps": "bilinear (Pillow Image.BILINEAR, 16x16 -> 20x20, on uint8 grey levels)"}


def graphs(config):
    """Both translation directions for a config: the image channels follow it."""
    return (_graph(config, "a2b", "mnist", "usps"), _graph(config, "b2a", "usps", "mnist"))


def _graph(config: dict, name: str, source: str, target: str) -> zoo.GraphSpec:
    image = ("batch", config["image_channels"], "height", "width")
    return zoo.GraphSpec(
        name=name,
        module=f"zoo.plugins.cyclegan.model:{name}_graph",
        inputs=(zoo.TensorSpec("image", image, example="image",
                               description=f"grayscale {source} digit, white on black, in [-1, 1]"),),
        outputs=(zoo.TensorSpec("translated", image,
                                description=f"the digit in {target} style, in [-1, 1]"),),
        example_axes={"height": 32, "width": 32},
        axis_ranges={"height": (16, 32, 64), "width": (16, 32, 64)},  # engine profiles: multiples of 4 around 32
        preprocessing={"image": {"domain": source, "layout": "NCHW", "size": 32, "frame": FRAMES[source],
                                 **({"resampling": RESAMPLING[source]} if source in RESAMPLING else {}),
                                 "range": [-1.0, 1.0], "from_uint8": "x / 127.5 - 1", "foreground": "white on black",
                                 "height_width": "any multiple of 4; trained at 32x32"}},
        postprocessing={"translated": {"domain": target, "frame": FRAMES[target],
                                       **({"resampling": RESAMPLING[target]} if target in RESAMPLING else {}),
                                       "range": [-1.0, 1.0],
                                       "to_uint8": "(x + 1) * 127.5"}},
        description=f"{source} -> {target} style",
    )


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="cyclegan",
            task="image-to-image",
            # The classifier of each domain judges translations into it (label preservation and FID, zoo eval);
            # the domain judge tells MNIST from USPS (realism).
            task_config={"judges": {"mnist": "cnn", "usps": "cnn:usps"}, "domain_judge": "cnn:domain"},
            description="CycleGAN: two ResNet generators (instance norm) translating 32x32 digits MNIST <-> USPS, "
                        "trained unpaired with PatchGAN discriminators",
            builder="zoo.plugins.cyclegan.model:build",
            config={"image_channels": 1, "base_channels": 16, "residual_blocks": 6, "discriminator_channels": 32},
            weights={
                "default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml"),
            },
            trainer="cyclegan",
            graphs="zoo.plugins.cyclegan:graphs",
        )
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="cyclegan",
            recipe="zoo.plugins.cyclegan.train:CycleGANRecipe",
            # The shipped recipe: longer runs keep cycling the images but start to swap digits (docs/cyclegan.md).
            defaults={"epochs": 3, "batch_size": 16, "lr": 2e-4, "max_steps": 300},
            hyperparameters=(
                zoo.Setting("cycle_weight", 10.0, "weight of the cycle-consistency L1 loss"),
                zoo.Setting("identity_weight", 5.0, "weight of the identity L1 loss"),
                zoo.Setting("pool_size", 50, "fakes kept in each discriminator's image pool"),
                zoo.Setting("decay_from", 0.5, "share of the run after which the learning rate decays linearly to 0"),
            ),
            description="least-squares GAN + cycle (x10) + identity (x5) L1 losses, Adam(2e-4, 0.5/0.999) decaying "
                        "linearly to 0 over the second half, unpaired MNIST train and USPS train",
        )
    )
