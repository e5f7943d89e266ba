"""GPT-2 in plain PyTorch (after nanoGPT): token and position embeddings,
pre-norm transformer blocks with causal self-attention and a GELU MLP, a final
LayerNorm and a head tied to the token embedding (or a separate one).

Every attention layer takes an optional cache of past keys and values and
returns the extended cache, so one graph (`KVCacheDecoder`) serves the prompt
(past length 0) and each following step. `from_hub_state_dict` maps Hugging
Face GPT-2 checkpoints (Conv1D layout, `transformer.h.N...` names) onto it
(`zoo.plugins.gpt2.hub`).
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoo.plugins.gpt2.hub import ACTIVATION_NAMES, TANH_GELUS, from_hub_state_dict, is_hub_state_dict


@dataclass
class GPTConfig:
    vocab_size: int = 1024
    block_size: int = 256  # longest context in tokens (position embeddings)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5
    # The rest only differ from these defaults in foreign checkpoints (see `config_from_hub`).
    n_inner: int | None = None  # MLP width; None means 4 * n_embd
    activation: str = "gelu_new"  # one of ACTIVATION_NAMES
    tie_word_embeddings: bool = True  # the head reuses wte; False gives it its own weight
    scale_attn_weights: bool = True  # scores / sqrt(head_dim)
    scale_attn_by_inverse_layer_idx: bool = False  # scores also / (layer index + 1)


def _tanh_gelu(x):
    if _exporting():
        # The same tanh GELU, written in the order ONNX Runtime fuses into one FastGelu node
        # (the exporter's own decomposition of F.gelu stays 8 separate nodes).
        return x * 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    return F.gelu(x, approximate="tanh")


# What each Hugging Face `activation_function` name computes; the tanh forms are one function.
ACTIVATIONS = {name: _tanh_gelu for name in TANH_GELUS} | {"gelu": F.gelu, "relu": F.relu, "silu": F.silu, "swish": F.silu}


def _exporting() -> bool:
    return torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export()


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, layer_index: int = 0):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout
        head_dim = config.n_embd // config.n_head
        self.scale = (1.0 / math.sqrt(head_dim) if config.scale_attn_weights else 1.0) / (
            layer_index + 1 if config.scale_attn_by_inverse_layer_idx else 1)

    def forward(self, x, batch, length, past_key=None, past_value=None, mask=None):
        """x (batch * length, width). `mask` (T, past + T): True where a query may attend;
        None means causal without a cache."""
        width = x.shape[-1]
        # One view and one transpose for q, k and v together (3 nodes in the exported graph, not 7).
        qkv = self.c_attn(x).view(batch, length, 3 * self.n_head, width // self.n_head).transpose(1, 2)
        q, k, v = qkv.split(self.n_head, dim=1)
        if past_key is not None:
            k = torch.cat([past_key, k], dim=2)
            v = torch.cat([past_value, v], dim=2)
        if _exporting():
            # Plain attention for the ONNX graph: SDPA's export decomposition adds per-layer
            # reshapes and NaN guards (17 nodes a layer), while ONNX Runtime fuses this form
            # (key transpose and scale into one FusedMatMul). `mask` arrives additive here.
            scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale
            y = torch.matmul(torch.softmax(scores + mask, dim=-1), v)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None,
                                               dropout_p=self.dropout if self.training else 0.0, scale=self.scale)
        y = y.transpose(1, 2).reshape(batch * length, width)
        return self.c_proj(y), k, v


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        inner = config.n_inner or 4 * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, inner)
        self.c_proj = nn.Linear(inner, config.n_embd)
        self.activation = ACTIVATIONS[config.activation]

    def forward(self, x):
        return self.c_proj(self.activation(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config: GPTConfig, layer_index: int = 0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = CausalSelfAttention(config, layer_index)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(self, x, batch, length, past_key=None, past_value=None, mask=None):
        attended, key, value = self.attn(self.ln_1(x), batch, length, past_key, past_value, mask)
        x = x + attended
        return x + self.mlp(self.ln_2(x)), key, value


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config, index) for index in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.lm_head = None if config.tie_word_embeddings else nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.apply(self._init_weights)
        # GPT-2's scaled init of the residual projections.
        for name, parameter in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    @staticmethod
    def _cache_mask(length, past_length, x):
        """Query i sits at absolute position past + i and sees keys 0..past + i: a boolean
        mask for SDPA, additive (0 / -inf) in an exported graph. Built once for all layers."""
        query_positions = torch.arange(length, device=x.device)[:, None] + past_length
        allowed = query_positions >= torch.arange(past_length + length, device=x.device)[None, :]
        if _exporting():
            return torch.where(allowed, 0.0, float("-inf")).to(x.dtype)
        return allowed

    def forward(self, idx, past=None):
        """ids (B, T) -> logits (B, T, vocab). With `past` (a list of (key, value)
        per layer, each (B, heads, past_length, head_dim)) also returns the new cache."""
        past_length = 0 if past is None else past[0][0].shape[2]
        positions = torch.arange(idx.shape[1], device=idx.device) + past_length
        # Rows of (batch * length, width) between the attention reshapes: an exported
        # linear layer on 2-D input is one Gemm in ONNX Runtime (MatMul and bias Add fused).
        batch, length = idx.shape
        x = self.drop(self.wte(idx) + self.wpe(positions)).view(batch * length, -1)
        mask = None if past is None else self._cache_mask(idx.shape[1], past_length, x)
        present = []
        for index, block in enumerate(self.h):
            key, value = (None, None) if past is None else past[index]
            x, key, value = block(x, batch, length, key, value, mask)
            present.append((key, value))
        head = self.wte.weight if self.lm_head is None else self.lm_head.weight
        logits = F.linear(self.ln_f(x), head).view(batch, length, -1)
        return logits if past is None else (logits, present)


class KVCacheDecoder(nn.Module):
    """input_ids (B, T), past_key_values.{i}.key/value (B, heads, P, head_dim)
    -> logits (B, T, vocab), present.{i}.key/value (B, heads, P + T, head_dim)."""

    def __init__(self, model: GPT):
        super().__init__()
        self.model = model

    def forward(self, input_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, present = self.model(input_ids, past)
        return (logits, *[t for pair in present for t in pair])


def kv_cache_decoder(model: GPT) -> KVCacheDecoder:
    return KVCacheDecoder(model).eval()


class GPT2(GPT):
    """GPT that also loads Hugging Face GPT-2 state dicts (mapped on the way in)."""

    def load_state_dict(self, state_dict, strict=True, assign=False):
        if is_hub_state_dict(state_dict):
            state_dict = from_hub_state_dict(state_dict, tied=self.config.tie_word_embeddings)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def build(**config) -> GPT2:
    return GPT2(GPTConfig(**config))
