"""denoise-unet: a tiny U-Net that removes Gaussian noise from 28x28 digits,
and "denoising", the task that says what `zoo run` and `zoo eval` do with it.

Hook implementations only; this module imports no torch, so `zoo list`
stays instant.
"""

import zoo

IMAGE_SHAPE = ("batch", 1, 28, 28)


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="denoise-unet",
            task="denoising",
            description="two-level U-Net (skip connections, GroupNorm) that denoises 28x28 grayscale digits",
            builder="zoo_denoise_unet.model:build",
            config={"channels": 1, "width": 16},
            weights={
                "default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml"),
            },
            trainer="denoise-unet",
            graphs=(
                zoo.GraphSpec(
                    inputs=(zoo.TensorSpec("noisy", IMAGE_SHAPE, example="uniform", description="noisy image in [0, 1]"),),
                    outputs=(zoo.TensorSpec("denoised", IMAGE_SHAPE, description="denoised image in [0, 1]"),),
                    preprocessing={"noisy": {"layout": "NCHW", "range": [0.0, 1.0], "from_uint8": "x / 255"}},
                    postprocessing={"denoised": {"layout": "NCHW", "range": [0.0, 1.0], "to_uint8": "x * 255"}},
                ),
            ),
        )
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="denoise-unet",
            recipe="zoo_denoise_unet.train:DenoiseRecipe",
            defaults={"epochs": 3, "batch_size": 64, "lr": 1e-3},
            description="MSE between the U-Net's output and the clean digit; inputs get N(0, noise_std) noise (--set noise_std=0.5)",
            hyperparameters=(zoo.Setting("noise_std", 0.5, "standard deviation of the noise added to the inputs"),),
        )
    )


@zoo.hookimpl
def register_tasks(register):
    register(
        zoo.TaskSpec(
            name="denoising",
            description="remove Gaussian noise from digits; PSNR on the held-out MNIST split",
            run="zoo_denoise_unet.task:run",
            evaluate="zoo_denoise_unet.task:evaluate",
            quality="zoo_denoise_unet.task:quality",
            options=(
                zoo.Option("noise-std", type="float", default=0.5, commands=("run", "eval"), minimum=0,
                           help="standard deviation of the Gaussian noise added to the clean digits in [0, 1]"),
                zoo.Option("n", type="int", default=8, minimum=1, maximum=2000, help="held-out digits to corrupt and denoise"),
            ),
            data=("mnist",),
        )
    )
