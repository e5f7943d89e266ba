"""StyleGAN2-style generator of 32x32 MNIST digits: mapping network, modulated
convolutions, noise inputs, style mixing and the truncation trick."""

import zoo

# Seven modulated 3x3 convolutions (4x4 once, 8/16/32 twice) + the last toRGB: one w each.
NOISE = (("noise_4", 4), ("noise_8a", 8), ("noise_8b", 8), ("noise_16a", 16), ("noise_16b", 16),
         ("noise_32a", 32), ("noise_32b", 32))
NUM_WS = len(NOISE) + 1
_NOISE_INPUTS = tuple(
    zoo.TensorSpec(name, ("batch", 1, size, size), description=f"per-pixel noise of the {size}x{size} layer, N(0, 1)")
    for name, size in NOISE
)
_NOISE_PREPROCESSING = {name: {"distribution": "standard normal"} for name, _ in NOISE}
_IMAGE_POST = {"image": {"layout": "NCHW", "range": [-1.0, 1.0], "to_uint8": "(x + 1) * 127.5"}}
_TRUNCATION = zoo.TensorSpec(
    "truncation", ("batch",), example="uniform",
    description="truncation psi per sample: w = w_avg + psi * (w - w_avg); 1 = no truncation, 0 = the average digit",
)


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="stylegan",
            task="image-generation",
            task_config={"judge": "cnn"},  # the classifier whose features score the samples (zoo eval)
            description="StyleGAN2-style generator (mapping network, modulated convs, noise, truncation) for 32x32 MNIST digits",
            builder="zoo.plugins.stylegan.model:build",
            config={"z_dim": 64, "w_dim": 64, "mapping_layers": 4, "channels_4": 128, "channels_8": 128,
                    "channels_16": 64, "channels_32": 32, "image_channels": 1, "image_size": 32},
            weights={
                "default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml"),
            },
            trainer="stylegan",
            options=(
                zoo.Option("truncation", type="float", input="truncation", minimum=0.0, maximum=1.0,
                           help="truncation psi: 1 = none, 0 = the average digit"),
                zoo.Option("style-mix", type="flag",
                           help="a style-mixing grid: each cell takes its row's coarse styles and its column's fine ones"),
                zoo.Option("mix-layer", type="int", minimum=0,
                           help="with --style-mix: the first layer whose w comes from the column (default: half the layers)"),
            ),
            graphs="zoo.plugins.stylegan:graphs",
        )
    )


def graphs(config):
    """Generator, mapping and synthesis for a config: the z and w sizes and image channels follow it."""
    z = zoo.TensorSpec("z", ("batch", config["z_dim"]), description="latent vector, N(0, 1)")
    image = zoo.TensorSpec("image", ("batch", config["image_channels"], 32, 32), description="grayscale digit in [-1, 1]")
    return (
        zoo.GraphSpec(
            name="generator",
            inputs=(z, _TRUNCATION, *_NOISE_INPUTS),
            outputs=(image,),
            preprocessing={"z": {"distribution": "standard normal"}, "truncation": {"default": 1.0},
                           **_NOISE_PREPROCESSING},
            postprocessing=_IMAGE_POST,
            description="z -> image, with the truncation trick",
        ),
        zoo.GraphSpec(
            name="mapping",
            role="mapping",
            module="zoo.plugins.stylegan.model:mapping_graph",
            inputs=(z, _TRUNCATION),
            outputs=(zoo.TensorSpec("w", ("batch", config["w_dim"]), description="intermediate latent, truncated"),),
            preprocessing={"z": {"distribution": "standard normal"}, "truncation": {"default": 1.0}},
            description="z -> w (the mapping network and the truncation trick)",
        ),
        zoo.GraphSpec(
            name="synthesis",
            role="synthesis",
            module="zoo.plugins.stylegan.model:synthesis_graph",
            inputs=(zoo.TensorSpec("ws", ("batch", NUM_WS, config["w_dim"]),
                                   description="one w per layer (repeat one w for a plain sample; mix for style mixing)"),
                    *_NOISE_INPUTS),
            outputs=(image,),
            preprocessing=_NOISE_PREPROCESSING,
            postprocessing=_IMAGE_POST,
            description="w+ -> image, for editing and mixing in w space",
        ),
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="stylegan",
            recipe="zoo.plugins.stylegan.train:StyleGANRecipe",
            defaults={"epochs": 6, "batch_size": 32, "lr": 2.5e-3},
            hyperparameters=(
                zoo.Setting("r1_gamma", 0.2, "R1 gradient penalty weight"),
                zoo.Setting("r1_interval", 16, "discriminator steps between lazy R1 penalties"),
                zoo.Setting("mixing_prob", 0.9, "share of batches trained with style mixing"),
                zoo.Setting("ema_kimg", 5.0, "half-life of the generator EMA, in thousands of images"),
            ),
            description="non-saturating logistic loss, lazy R1, style mixing 0.9, Adam(0, 0.99), generator EMA",
        )
    )
