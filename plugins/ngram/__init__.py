"""N-gram: a character n-gram language model with interpolated Kneser-Ney smoothing."""

import zoo

CONFIG = {"vocab_size": 65, "n": 4, "discount": 0.75, "contexts": []}


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="ngram",
            task="text-generation",
            description="character 4-gram model, interpolated Kneser-Ney; exports as table lookups",
            builder="zoo.plugins.ngram.model:build",
            config=dict(CONFIG),
            weights={"default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml")},
            trainer="ngram",
            graphs="zoo.plugins.ngram:graphs",
        )
    )


def graphs(config):
    """The lookup graph for a config: the context length (n - 1) and the vocabulary follow it."""
    vocab = config["vocab_size"]
    return (
        zoo.GraphSpec(
            inputs=(zoo.TensorSpec("context", ("batch", config["n"] - 1), "int64", "integers", high=vocab,
                                   description="the last n-1 character ids, oldest first; left-padded with 0"),),
            outputs=(zoo.TensorSpec("probs", ("batch", vocab), description="next-character probabilities (sum to 1)"),),
            preprocessing={"context": {"tokenizer": "<weights>.tokenizer.json (characters)", "padding": 0}},
            postprocessing={"probs": {"sampling": "probs ** (1 / temperature), top-k"}},
            description="context of n-1 ids to the smoothed next-token distribution",
        ),
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="ngram",
            recipe="zoo.plugins.ngram.train:NGramRecipe",
            defaults={"epochs": 1, "batch_size": 1, "lr": 0.0},
            description="counts the training split in one step (no gradients)",
        )
    )
