"""CNN: a convolutional digit classifier, also the feature extractor of the generator metrics."""

import zoo

IMAGE = zoo.TensorSpec("image", ("batch", 1, 32, 32), example="image",
                       description="grayscale digit, white on black, MNIST layout zero-padded to 32x32, in [-1, 1]")
PREPROCESSING = {"image": {"layout": "NCHW", "size": 32, "range": [-1.0, 1.0], "frame": "MNIST 28x28 zero-padded to 32x32",
                           "from_uint8": "x / 127.5 - 1", "foreground": "white on black"}}


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="cnn",
            task="image-classification",
            description="convolutional digit classifier (two blocks of two 3x3 convolutions and max pooling, fully connected head), 32x32 input",
            builder="zoo.plugins.cnn.model:build",
            config={"channels": [32, 64], "hidden": 128, "num_classes": 10, "dropout": 0.3},
            weights={
                "default": zoo.WeightsSpec(
                    uri="weights/default.safetensors", card="weights/default.card.toml",
                    evaluation=("mnist/heldout", "usps/test"),
                    description="trained on the MNIST training split",
                ),
                "usps": zoo.WeightsSpec(
                    uri="weights/usps.safetensors", card="weights/usps.card.toml",
                    evaluation=("usps/test", "mnist/heldout"),
                    description="the default weights fine-tuned on USPS train",
                ),
                "domain": zoo.WeightsSpec(
                    uri="weights/domain.safetensors", card="weights/domain.card.toml",
                    evaluation=("domains/test",),
                    description="which data set a digit looks like it came from: class 0 MNIST, 1 USPS (judges CycleGAN's realism)",
                ),
            },
            trainer="cnn",
            graphs="zoo.plugins.cnn:graphs",
        )
    )


def graphs(config):
    """The classifier and its features graph for a config: the feature width and class count follow it."""
    classes = config["num_classes"]
    logits = zoo.TensorSpec("logits", ("batch", classes), description=f"unnormalised class scores, classes 0-{classes - 1}")
    return (
        zoo.GraphSpec(
            inputs=(IMAGE,),
            outputs=(logits,),
            preprocessing=PREPROCESSING,
            postprocessing={"logits": {"to_probabilities": "softmax", "labels": list(range(classes))}},
        ),
        zoo.GraphSpec(
            name="features",
            role="features",
            module="zoo.plugins.cnn.model:features_and_logits",
            inputs=(IMAGE,),
            outputs=(
                zoo.TensorSpec("features", ("batch", config["hidden"]), description="penultimate-layer activations (after ReLU)"),
                logits,
            ),
            preprocessing=PREPROCESSING,
            description="penultimate features and logits, for FID-CNN and class coverage",
        ),
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="cnn",
            recipe="zoo.plugins.cnn.train:CNNRecipe",
            defaults={"epochs": 15, "batch_size": 64, "lr": 2e-3},
            hyperparameters=(
                zoo.Setting("dataset", "mnist", "training split to learn from: mnist, usps or domains (MNIST vs USPS, needs num_classes=2)"),
                zoo.Setting("init", "", "weights to start from, as a model reference (cnn, cnn:usps); empty: random"),
            ),
            description="cross-entropy, AdamW with a one-cycle schedule, random shifts/rotations/scaling; "
                        "--set dataset=usps --set init=cnn fine-tunes the shipped weights on USPS train",
        )
    )
