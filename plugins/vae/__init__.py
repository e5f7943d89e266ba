"""VAE: an MLP variational autoencoder of 32x32 digits; the decoder generates, the encoder embeds."""

import zoo

LATENT_DIM = 16
IMAGE_OUTPUT = zoo.TensorSpec("image", ("batch", 1, 32, 32), description="decoded digit in [-1, 1] (tanh(logits / 2))")


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="vae",
            task="image-generation",
            task_config={"judge": "cnn"},  # the classifier whose features score the samples (zoo eval)
            description="VAE (MLP encoder to mu and log-variance, reparameterisation, MLP decoder) for 32x32 MNIST digits",
            builder="zoo.plugins.vae.model:build",
            config={"latent_dim": LATENT_DIM, "hidden": [512, 256], "image_size": 32},
            weights={
                "default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml"),
            },
            trainer="vae",
            graphs=(
                zoo.GraphSpec(
                    name="decoder",
                    module="zoo.plugins.vae.model:decoder_graph",
                    inputs=(zoo.TensorSpec("z", ("batch", LATENT_DIM), description="latent vector; N(0, 1) samples the prior"),),
                    outputs=(
                        IMAGE_OUTPUT,
                        zoo.TensorSpec("logits", ("batch", 1, 32, 32),
                                       description="Bernoulli logits of each pixel's grey level in [0, 1]"),
                    ),
                    preprocessing={"z": {"distribution": "standard normal"}},
                    postprocessing={"image": {"layout": "NCHW", "range": [-1.0, 1.0], "to_uint8": "(x + 1) * 127.5"}},
                    description="z -> image: sampling (z from N(0, 1)) and decoding encoder means",
                ),
                zoo.GraphSpec(
                    name="encoder",
                    role="encoder",
                    module="zoo.plugins.vae.model:encoder_graph",
                    inputs=(zoo.TensorSpec("image", ("batch", 1, 32, 32), example="image",
                                           description="digit in [-1, 1], MNIST layout zero-padded to 32x32"),),
                    outputs=(
                        zoo.TensorSpec("mu", ("batch", LATENT_DIM), description="posterior mean"),
                        zoo.TensorSpec("logvar", ("batch", LATENT_DIM), description="posterior log-variance"),
                    ),
                    preprocessing={"image": {"layout": "NCHW", "range": [-1.0, 1.0], "from_uint8": "x / 127.5 - 1"}},
                    description="image -> q(z | image); sample z = mu + exp(logvar / 2) * eps outside the graph",
                ),
            ),
        )
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="vae",
            recipe="zoo.plugins.vae.train:VAERecipe",
            defaults={"epochs": 40, "batch_size": 64, "lr": 1e-3},
            description="negative ELBO (Bernoulli reconstruction + analytic KL), Adam, MNIST training split",
        )
    )
