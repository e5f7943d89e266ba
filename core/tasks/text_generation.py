"""`zoo run` and `zoo eval` for text-generation models, on any backend.

Three kinds of exported graph are driven the same way through `Decoder`:

- recurrent step graphs: `input_ids` (B, 1) plus state inputs (h0, c0, ...)
  -> `logits` (B, V) plus the new states, in the same order;
- KV-cache decoders: `input_ids` (B, T) plus `past_key_values.*`
  (B, heads, past, head_dim) -> `logits` (B, T, V) plus `present.*`;
  the prompt goes in with past length 0, then one token per step;
- n-gram graphs: `context` (B, n-1) -> `probs` (B, V).

Sampling uses numpy with a seed, so a seed gives the same text on PyTorch and
ONNX Runtime, and greedy decoding (temperature 0) the same tokens.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from zoo.errors import ZooError
from zoo.runtime import Backend
from zoo.specs import ModelSpec
from zoo.tasks import Quality, RunResult
from zoo.text import METRIC_DESCRIPTIONS, Tokenizer, bits_per_char, load_tokenizer, read_text, tokenizer_path
from zoo.tensors import concrete_shape

TEXT_METRIC_DESCRIPTIONS = METRIC_DESCRIPTIONS
QUALITY_CHARACTERS_PER_EXAMPLE = 64  # `quality` scores a held-out prefix of examples x 64 characters
LOGITS_PER_CALL = 1 << 25  # windows scored per decoder call are capped to keep logits near 128 MB


class Decoder:
    """Feeds tokens through a backend's graph, keeping the state between calls."""

    def __init__(self, backend: Backend):
        self.backend = backend
        graph = backend.graph
        names = [t.name for t in graph.inputs]
        self.kind = "ngram" if names[0] == "context" else "cache" if any(n.startswith("past_key_values") for n in names) else "recurrent"
        self.state_inputs = graph.inputs[1:]
        self.state_outputs = [t.name for t in graph.outputs[1:]]
        self.context = graph.inputs[0].shape[1] if self.kind == "ngram" else 0
        self.max_positions = int(graph.preprocessing.get("input_ids", {}).get("max_positions", 0))

    def initial_state(self, batch: int) -> dict[str, np.ndarray]:
        if self.kind == "ngram":
            return {"context": np.zeros((batch, self.context), dtype=np.int64)}  # left padding: token 0
        sizes = {"batch": batch, "past_sequence_length": 0}
        return {t.name: np.zeros(concrete_shape(t, sizes), dtype=t.dtype) for t in self.state_inputs}

    def feed(self, ids: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """ids (B, T) -> log-probabilities or logits (B, T, V) of the next token at each position, new state."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self.kind == "cache":
            # A backend that can keep outputs in its own memory (ONNX Runtime) hands the cache
            # from one step to the next without copying it.
            run_values = getattr(self.backend, "run_values", None)
            feeds = {"input_ids": ids, **state}
            outputs = run_values(feeds, keep=self.state_outputs) if run_values else self.backend.run(feeds)
            return outputs["logits"], {t.name: outputs[o] for t, o in zip(self.state_inputs, self.state_outputs)}
        steps = []
        for position in range(ids.shape[1]):
            token = ids[:, position : position + 1]
            if self.kind == "ngram":
                context = np.concatenate([state["context"][:, 1:], token], axis=1) if self.context else state["context"]
                state = {"context": context}
                probs = self.backend.run(state)["probs"]
                steps.append(np.log(np.maximum(probs, 1e-30)))
            else:
                outputs = self.backend.run({"input_ids": token, **state})
                state = {t.name: outputs[o] for t, o in zip(self.state_inputs, self.state_outputs)}
                steps.append(outputs["logits"])
        return np.stack(steps, axis=1), state


def choose(logits: np.ndarray, temperature: float, top_k: int, rng: np.random.Generator) -> np.ndarray:
    """Next token per row: argmax when temperature is 0, else a top-k sample."""
    if temperature <= 0:
        return logits.argmax(axis=-1)
    scaled = logits.astype(np.float64) / temperature
    if 0 < top_k < scaled.shape[-1]:
        kth = np.partition(scaled, -top_k, axis=-1)[:, -top_k][:, None]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    probs = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    return np.array([rng.choice(len(p), p=p) for p in probs])


def generate(backend: Backend, prompt: list[int], max_new_tokens: int, temperature: float = 0.0, top_k: int = 0,
             seed: int = 0, batch: int = 1, on_token: Callable[[np.ndarray], None] | None = None) -> np.ndarray:
    """Token ids (batch, max_new_tokens) continuing `prompt`, one graph call per new token.

    A KV-cache decoder reads at most `max_positions` tokens (the checkpoint's
    context): a longer prompt keeps its last `max_positions`, and when the
    context fills up the window slides: the decoder re-reads the last half of
    it and continues (`context_note` says so to the user)."""
    if not prompt:
        raise ZooError("the prompt is empty; pass --prompt with at least one character")
    decoder = Decoder(backend)
    rng = np.random.default_rng(seed)
    history = np.tile(np.array(prompt, dtype=np.int64), (batch, 1))
    state = decoder.initial_state(batch)
    window = history
    if decoder.max_positions and window.shape[1] > decoder.max_positions:
        window = window[:, -decoder.max_positions :]
    logits, state = decoder.feed(window, state)
    cached = window.shape[1]
    new = []
    for _ in range(max_new_tokens):
        token = choose(logits[:, -1], temperature, top_k, rng)
        new.append(token)
        if on_token:
            on_token(token)
        history = np.concatenate([history, token[:, None]], axis=1)
        if decoder.max_positions and cached + 1 > decoder.max_positions:
            keep = decoder.max_positions // 2
            logits, state = decoder.feed(history[:, -keep:], decoder.initial_state(batch))
            cached = keep
        else:
            logits, state = decoder.feed(token[:, None], state)
            cached += 1
    return np.stack(new, axis=1) if new else np.zeros((batch, 0), dtype=np.int64)


GREEDY_TRACE_STEPS = 32


def greedy_trace(backend: Backend, steps: int = GREEDY_TRACE_STEPS, prompt_length: int = 8, seed: int = 0) -> dict[str, Any]:
    """A greedy generation a program without Python can replay against an exported
    step graph: random prompt ids (batch 1), then the argmax tokens it must produce,
    all within the model's context."""
    first = backend.graph.inputs[0]
    vocab = backend.graph.outputs[0].shape[-1]
    high = vocab if isinstance(vocab, int) else first.high
    limit = Decoder(backend).max_positions
    if limit:  # stay inside the context, so a replay needs no window sliding
        prompt_length = min(prompt_length, limit // 2)
        steps = min(steps, limit - prompt_length)
    prompt = np.random.default_rng(seed).integers(0, high, prompt_length).tolist()
    generated = generate(backend, prompt, steps, temperature=0.0)
    return {
        "graph": backend.graph.name,
        "prompt_ids": [prompt],
        "generated_ids": generated.tolist(),
        "decoding": "greedy: argmax of the last position's logits; the prompt goes in with an empty state, "
                    "then each chosen token alone with the state the previous call returned",
    }


def context_note(backend: Backend, prompt_length: int, max_new_tokens: int) -> str | None:
    """What `generate` will do about the context window, when it has to do anything."""
    limit = Decoder(backend).max_positions
    if not limit or prompt_length + max_new_tokens <= limit:
        return None
    dropped = f"the prompt's first {prompt_length - limit} tokens are dropped; " if prompt_length > limit else ""
    return (f"the model reads at most {limit} positions: {dropped}when they are full the window slides "
            f"(generation re-reads the last {limit // 2} tokens and continues)")


def model_tokenizer(options: dict[str, Any]) -> Tokenizer:
    from zoo.api import resolve_weights

    resolved = resolve_weights(options["model"], options.get("weights"))
    return load_tokenizer(tokenizer_path(resolved.path))


def heldout_nats(backend: Backend, ids: list[int], streams: int = 16) -> tuple[float, int]:
    """Summed next-token cross-entropy (nats) and the number of scored tokens.

    Recurrent and n-gram models read the held-out ids as `streams` contiguous
    rows, carrying the state; KV-cache decoders read windows of `max_positions`
    that overlap by half, scoring each token once with at least half a window of context."""
    decoder = Decoder(backend)
    array = np.array(ids, dtype=np.int64)
    if decoder.kind == "cache":
        # A text shorter than the context is read as one window of its own length.
        window = min(decoder.max_positions or 128, len(array))
        stride = max(window // 2, 1)
        vocab = backend.graph.outputs[0].shape[-1]
        per_call = max(1, min(16, LOGITS_PER_CALL // (window * (vocab if isinstance(vocab, int) else 1024))))
        total, count = 0.0, 0
        starts = list(range(0, max(len(array) - window, 0) + 1, stride))
        if starts[-1] + window < len(array):
            starts.append(len(array) - window)
        scored_until = 0
        for chunk in range(0, len(starts), per_call):
            group = starts[chunk : chunk + per_call]
            windows = np.stack([array[s : s + window] for s in group])
            logits, _ = decoder.feed(windows[:, :-1], decoder.initial_state(len(group)))
            logprobs = _log_softmax(logits)
            for row, start in enumerate(group):
                first = max(scored_until, start + 1)  # absolute index of the first target not yet scored
                targets = np.arange(first, start + window)
                total -= float(logprobs[row, targets - start - 1, array[targets]].sum())
                count += len(targets)
                scored_until = start + window
        return total, count
    length = (len(array) - 1) // streams
    rows = np.stack([array[i * length : i * length + length + 1] for i in range(streams)])
    logits, _ = decoder.feed(rows[:, :-1], decoder.initial_state(streams))
    logprobs = _log_softmax(logits)
    picked = np.take_along_axis(logprobs, rows[:, 1:, None], axis=-1)
    return -float(picked.sum()), picked.size


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def heldout_metrics(backend: Backend, tokenizer: Tokenizer, data: Path, streams: int = 16) -> dict[str, float]:
    """Bits per character and per-character perplexity on the held-out 10%."""
    return text_metrics(backend, tokenizer, read_text(data, "heldout"), streams)


def text_metrics(backend: Backend, tokenizer: Tokenizer, text: str, streams: int = 16) -> dict[str, float]:
    """Bits per character and per-character perplexity of `text`, scored as the held-out split is."""
    ids = tokenizer.encode(text)
    total, scored = heldout_nats(backend, ids, streams)
    # Characters covered by the scored tokens: the whole text less the first token, and for
    # recurrent models less the tail that did not fill the last stream.
    unscored = len(ids) - 1 - scored
    covered = len(text) - len(tokenizer.decode(ids[:1])) - (len(tokenizer.decode(ids[len(ids) - unscored :])) if unscored else 0)
    return bits_per_char(total, covered)


def quality(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> Quality:
    """Bits per character on the first `options["examples"]` x 64 held-out characters: the metric
    reduced precisions must keep. The tokenizer is the one beside `options["weights"]` (or the
    variant `options["model"]` names)."""
    text = read_text(Path(options["data"]), "heldout")[: options["examples"] * QUALITY_CHARACTERS_PER_EXAMPLE]
    tokenizer = model_tokenizer({"model": options.get("model", spec.name), "weights": options.get("weights")})
    value = text_metrics(backend, tokenizer, text)["heldout_bits_per_char"]
    description = f"bits per character on the first {len(text):,} characters of held-out Tiny Shakespeare"
    return Quality("heldout_bits_per_char", value, higher_is_better=False, examples=len(text), description=description)


class _Streamer:
    """Prints the first row's text as tokens arrive; holds back an unfinished UTF-8 sequence."""

    def __init__(self, tokenizer: Tokenizer, prompt: list[int], out=sys.stdout):
        self.tokenizer, self.ids, self.out = tokenizer, list(prompt), out
        self.printed = len(tokenizer.decode(self.ids))
        out.write(tokenizer.decode(self.ids))
        out.flush()

    def __call__(self, token: np.ndarray) -> None:
        self.ids.append(int(token[0]))
        text = self.tokenizer.decode(self.ids)
        if not text.endswith("\ufffd"):
            self.out.write(text[self.printed :])
            self.out.flush()
            self.printed = len(text)


def run(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> RunResult:
    """Continue the prompt, printing the text as it is generated (with `--json`: once, as JSON)."""
    if options.get("max_new_tokens", 200) < 0:
        raise ZooError(f"--max-new-tokens {options['max_new_tokens']} is negative; pass 0 or more")
    if options.get("temperature", 0.8) < 0:
        raise ZooError(f"--temperature {options['temperature']} is negative; pass 0 (greedy) or more")
    tokenizer = model_tokenizer(options)
    text = options.get("prompt") or "\n"
    unknown = tokenizer.unknown_characters(text) if hasattr(tokenizer, "unknown_characters") else []
    if unknown:
        raise ZooError(
            f"--prompt has characters {spec.name} never saw in training ({''.join(unknown)!r}); it knows only the "
            f"{tokenizer.vocab_size} characters of its training text: replace or drop them"
        )
    prompt = tokenizer.encode(text)
    note = context_note(backend, len(prompt), options.get("max_new_tokens", 200))
    if note:
        print(f"zoo: note: {note}", file=sys.stderr)
    streamer = None if options.get("json") else _Streamer(tokenizer, prompt)
    seed = options.get("seed", 0)
    tokens = generate(backend, prompt, options.get("max_new_tokens", 200), options.get("temperature", 0.8),
                      options.get("top_k", 40), seed, on_token=streamer)
    generated = [int(token) for token in tokens[0]]
    return RunResult(
        data={"prompt": text, "text": tokenizer.decode(generated), "prompt_tokens": len(prompt),
              "new_tokens": len(generated), "seed": seed},
        note=f"\n[{tokens.shape[1]} tokens from {spec.name} ({backend.name}, seed {seed})]",
    )


def evaluate(spec: ModelSpec, backend: Backend, options: dict[str, Any]) -> dict[str, float]:
    return heldout_metrics(backend, model_tokenizer(options), Path(options["data"]))
