"""LSTM: a character-level LSTM language model of Tiny Shakespeare."""

import zoo
from zoo.lm_training import HYPERPARAMETERS

CONFIG = {"vocab_size": 65, "n_embd": 64, "hidden": 256, "layers": 2, "dropout": 0.0}


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="lstm",
            task="text-generation",
            description="character-level LSTM language model (embedding, 2-layer LSTM, linear head), Tiny Shakespeare",
            builder="zoo.plugins.lstm.model:build",
            config=dict(CONFIG),
            weights={"default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml")},
            trainer="lstm",
            graphs="zoo.plugins.lstm:graphs",
        )
    )


def graphs(config):
    """The step graph for a config: the vocabulary and the recurrent state's layers and width follow it."""
    vocab, state = config["vocab_size"], (config["layers"], "batch", config["hidden"])
    return (
        zoo.GraphSpec(
            module="zoo.plugins.lstm.model:step_module",
            inputs=(
                zoo.TensorSpec("input_ids", ("batch", 1), "int64", "integers", high=vocab, description="one character id per row"),
                zoo.TensorSpec("h0", state, description="hidden state (zeros at the start)"),
                zoo.TensorSpec("c0", state, description="cell state (zeros at the start)"),
            ),
            outputs=(
                zoo.TensorSpec("logits", ("batch", vocab), description="next-character logits"),
                zoo.TensorSpec("h", state, description="hidden state after the step"),
                zoo.TensorSpec("c", state, description="cell state after the step"),
            ),
            preprocessing={"input_ids": {"tokenizer": "<weights>.tokenizer.json (characters)"}},
            postprocessing={"logits": {"sampling": "softmax(logits / temperature), top-k"}},
            description="one generation step with the recurrent state as explicit inputs and outputs",
        ),
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="lstm",
            recipe="zoo.plugins.lstm.train:LSTMRecipe",
            defaults={"epochs": 100, "batch_size": 32, "lr": 3e-3},
            description="next-character cross-entropy on 128-character windows, AdamW, cosine schedule, time budget",
            hyperparameters=HYPERPARAMETERS,
        )
    )
