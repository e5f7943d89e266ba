"""Hugging Face GPT-2 checkpoints in this plugin's terms (no torch): their
config.json as our config, their state dict names and Conv1D layout as ours.
A config field the module does not implement is refused by name."""

import json

TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")  # one function written three ways
ACTIVATION_NAMES = TANH_GELUS + ("gelu", "relu", "silu", "swish")

_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def from_hub_state_dict(state_dict: dict, tied: bool = True) -> dict:
    """Hugging Face GPT-2 names and Conv1D (in, out) weights -> this module's names and
    Linear (out, in) weights. Accepts the hub's bare names (`h.0...`) and
    GPT2LMHeadModel's (`transformer.h.0...`); drops the attention-mask buffers, and
    `lm_head.weight` when the head is tied (it is then `wte`)."""
    mapped = {}
    for name, tensor in state_dict.items():
        name = name.removeprefix("transformer.")
        if (tied and name == "lm_head.weight") or name.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        mapped[name] = tensor.t().contiguous() if name.endswith(_CONV1D) else tensor
    return mapped


def is_hub_state_dict(state_dict: dict) -> bool:
    """Hub checkpoints either carry the `transformer.` prefix or, with bare names
    like ours, store the fused attention projection as Conv1D (n_embd, 3 * n_embd)."""
    if any(name.startswith("transformer.") for name in state_dict):
        return True
    c_attn = state_dict.get("h.0.attn.c_attn.weight")
    return c_attn is not None and c_attn.shape[1] == 3 * c_attn.shape[0]


# config.json fields that change the computation, and the values this module implements
# when it has no field of its own for them.
_FIXED_FIELDS = {"reorder_and_upcast_attn": False, "add_cross_attention": False}


def config_from_hub(hub_config: dict) -> dict:
    """This module's config for a hub config.json. A field it does not implement is a
    one-line error naming the field (activations outside ACTIVATION_NAMES, cross-attention,
    attention reordering and upcasting, other model types)."""
    from zoo.errors import WeightsError

    def refuse(field: str, value) -> WeightsError:
        return WeightsError(
            f"config.json sets {field}={json.dumps(value)}, which the gpt2 plugin does not implement; "
            f"use a checkpoint without it (supported: standard GPT-2 configs, activation_function one of "
            f"{', '.join(ACTIVATION_NAMES)})"
        )

    if hub_config.get("model_type", "gpt2") != "gpt2":
        raise refuse("model_type", hub_config["model_type"])
    activation = hub_config.get("activation_function", "gelu_new")
    if activation not in ACTIVATION_NAMES:
        raise refuse("activation_function", activation)
    for field, implemented in _FIXED_FIELDS.items():
        if hub_config.get(field, implemented) != implemented:
            raise refuse(field, hub_config[field])
    return {
        "vocab_size": hub_config["vocab_size"],
        "block_size": hub_config["n_positions"],
        "n_layer": hub_config["n_layer"],
        "n_head": hub_config["n_head"],
        "n_embd": hub_config["n_embd"],
        "layer_norm_epsilon": hub_config.get("layer_norm_epsilon", 1e-5),
        "n_inner": hub_config.get("n_inner"),
        "activation": activation,
        "tie_word_embeddings": hub_config.get("tie_word_embeddings", True),
        "scale_attn_weights": hub_config.get("scale_attn_weights", True),
        "scale_attn_by_inverse_layer_idx": hub_config.get("scale_attn_by_inverse_layer_idx", False),
        "dropout": 0.0,
    }
