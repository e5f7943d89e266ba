"""GPT-2: a small GPT-2 trained on Tiny Shakespeare with a byte-level BPE
tokenizer, and the original 124M GPT-2 (`gpt2:openai`) mapped from the hub."""

import zoo
from zoo.lm_training import HYPERPARAMETERS

CONFIG = {"vocab_size": 1024, "block_size": 128, "n_layer": 4, "n_head": 5, "n_embd": 160,
          "dropout": 0.1, "layer_norm_epsilon": 1e-5}


def _cache(config: dict, prefix: str, index: int, kind: str, length: str) -> zoo.TensorSpec:
    heads, width = config["n_head"], config["n_embd"] // config["n_head"]
    return zoo.TensorSpec(f"{prefix}.{index}.{kind}", ("batch", heads, length, width),
                          description=f"layer {index} attention {kind}s")


def graphs(config: dict) -> tuple[zoo.GraphSpec, ...]:
    """The KV-cache decoder for one config: one cache input and output per layer and kind,
    heads and head width, vocabulary and context from the config."""
    layers = range(config["n_layer"])
    past = tuple(_cache(config, "past_key_values", i, kind, "past_sequence_length") for i in layers for kind in ("key", "value"))
    present = tuple(_cache(config, "present", i, kind, "total_sequence_length") for i in layers for kind in ("key", "value"))
    return (
        zoo.GraphSpec(
            name="decoder",
            module="zoo.plugins.gpt2.model:kv_cache_decoder",
            inputs=(zoo.TensorSpec("input_ids", ("batch", "sequence_length"), "int64", "integers",
                                   high=config["vocab_size"], description="BPE token ids"),) + past,
            outputs=(zoo.TensorSpec("logits", ("batch", "sequence_length", config["vocab_size"]),
                                    description="next-token logits at every position"),) + present,
            example_axes={"sequence_length": 3, "past_sequence_length": 5, "total_sequence_length": 8},
            # engine profiles: a prompt of up to the context, or one token after a cache of up to the context minus one
            axis_ranges={"sequence_length": (1, 1, config["block_size"]),
                         "past_sequence_length": (0, config["block_size"] // 2, config["block_size"] - 1)},
            preprocessing={"input_ids": {"tokenizer": "<weights>.tokenizer.json (byte-level BPE)",
                                         "max_positions": config["block_size"]}},
            postprocessing={"logits": {"sampling": "softmax(logits[:, -1] / temperature), top-k"}},
            description="decoder with the KV cache as inputs and outputs: past length 0 for the prompt, then one token "
                        "per step; past + new tokens must not exceed max_positions",
        ),
    )


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="gpt2",
            task="text-generation",
            description="GPT-2 architecture (pre-norm blocks, causal self-attention, tied head) in plain PyTorch; "
                        "also loads any Hugging Face GPT-2 checkpoint (model.safetensors + config.json)",
            builder="zoo.plugins.gpt2.model:build",
            config=dict(CONFIG),
            weights={
                "default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml",
                                           description="4 layers, 160 wide, byte-level BPE (1,024 tokens), Tiny Shakespeare"),
                "openai": zoo.WeightsSpec(uri="hf://openai-community/gpt2/model.safetensors",
                                          description="the original 124M GPT-2 from the hub, mapped from its Conv1D layout"),
            },
            trainer="gpt2",
            hub_config="zoo.plugins.gpt2.hub:config_from_hub",
            graphs="zoo.plugins.gpt2:graphs",
        )
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="gpt2",
            recipe="zoo.plugins.gpt2.train:GPT2Recipe",
            defaults={"epochs": 100, "batch_size": 16, "lr": 1e-3},
            description="byte-level BPE trained on the training split; next-token cross-entropy, AdamW, cosine schedule, time budget",
            hyperparameters=HYPERPARAMETERS,
        )
    )
