"""VAE: an MLP variational autoencoder of 32x32 digits; the decoder generates, the encoder embeds."""

import zoo

@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="vae",
            task="image-generation",
            task_config={"judge": "cnn"},  # the classifier whose features score the samples (zoo eval)
            description="VAE (MLP encoder to mu and log-variance, reparameterisation, MLP decoder) for 32x32 MNIST digits",
            builder="zoo.plugins.vae.model:build",
            config={"latent_dim": 16, "hidden": [512, 256], "image_size": 32, "decoder": "mlp", "decoder_channels": 32},
            weights={
                "default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml"),
            },
            trainer="vae",
            graphs="zoo.plugins.vae:graphs",
        )
    )


def graphs(config):
    """Decoder and encoder for a config: the latent size and image size follow it."""
    latent, size = config["latent_dim"], config["image_size"]
    image = ("batch", 1, size, size)
    return (
        zoo.GraphSpec(
            name="decoder",
            module="zoo.plugins.vae.model:decoder_graph",
            inputs=(zoo.TensorSpec("z", ("batch", latent), description="latent vector; N(0, 1) samples the prior"),),
            outputs=(
                zoo.TensorSpec("image", image, description="decoded digit in [-1, 1] (tanh(logits / 2))"),
                zoo.TensorSpec("logits", image, description="Bernoulli logits of each pixel's grey level in [0, 1]"),
            ),
            preprocessing={"z": {"distribution": "standard normal"}},
            postprocessing={"image": {"layout": "NCHW", "range": [-1.0, 1.0], "to_uint8": "(x + 1) * 127.5"}},
            description="z -> image: sampling (z from N(0, 1)) and decoding encoder means",
        ),
        zoo.GraphSpec(
            name="encoder",
            role="encoder",
            module="zoo.plugins.vae.model:encoder_graph",
            inputs=(zoo.TensorSpec("image", image, example="image",
                                   description=f"digit in [-1, 1], MNIST layout zero-padded to {size}x{size}"),),
            outputs=(
                zoo.TensorSpec("mu", ("batch", latent), description="posterior mean"),
                zoo.TensorSpec("logvar", ("batch", latent), description="posterior log-variance"),
            ),
            preprocessing={"image": {"layout": "NCHW", "range": [-1.0, 1.0], "from_uint8": "x / 127.5 - 1"}},
            description="image -> q(z | image); sample z = mu + exp(logvar / 2) * eps outside the graph",
        ),
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="vae",
            recipe="zoo.plugins.vae.train:VAERecipe",
            defaults={"epochs": 40, "batch_size": 64, "lr": 1e-3},
            hyperparameters=(zoo.Setting("kl_weight", 1.0, "weight of the KL term in the training loss (below 1: sharper decodes, looser prior)"),),
            description="negative ELBO (Bernoulli reconstruction + analytic KL), Adam, MNIST training split",
        )
    )
