"""Text data and tokenizers for language models (no torch).

Tiny Shakespeare is split by characters: the first 90% trains, the last 10%
is held out. Every language model ships a tokenizer beside its weights
(`<variant>.tokenizer.json`): either a character vocabulary written here or a
Hugging Face `tokenizers` file (byte-level BPE), told apart by their content.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Protocol

from zoo.errors import ZooError

TRAIN_FRACTION = 0.9
TRAINING_DESCRIPTION = "Tiny Shakespeare, first 90% of characters (training split); metrics on the last 10%"


def find_shakespeare(path: Path) -> Path:
    """input.txt under the data root (or the file itself)."""
    from zoo.data import SHAKESPEARE_FILE, dataset_dir

    path = Path(path).expanduser()
    if path.is_file():
        return path
    return dataset_dir(path, "tinyshakespeare") / SHAKESPEARE_FILE


def read_text(path: Path, split: str = "train") -> str:
    """The training split (first 90% of characters) or the held-out split (last 10%)."""
    text = find_shakespeare(path).read_text(encoding="utf-8")
    cut = int(len(text) * TRAIN_FRACTION)
    if split == "train":
        return text[:cut]
    if split == "heldout":
        return text[cut:]
    raise ZooError(f"unknown split '{split}'; use train or heldout")


class Tokenizer(Protocol):
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class CharTokenizer:
    """One token per character; characters outside the vocabulary map to `unknown`."""

    kind = "zoo-char"

    def __init__(self, chars: list[str], unknown: str = " "):
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}
        self.unknown = self.index.get(unknown, 0)
        self.vocab_size = len(self.chars)

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    def encode(self, text: str) -> list[int]:
        return [self.index.get(c, self.unknown) for c in text]

    def unknown_characters(self, text: str) -> list[str]:
        """The characters of `text` that `encode` would replace, each once, in order."""
        return list(dict.fromkeys(c for c in text if c not in self.index))

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"type": self.kind, "chars": self.chars}, ensure_ascii=False)


class HFTokenizer:
    """A `tokenizers` tokenizer.json (byte-level BPE for gpt2)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)


def tokenizer_path(weights: Path) -> Path:
    """Where the tokenizer of a weights file lives: `<stem>.tokenizer.json`, or in
    the hub's layout a `tokenizer.json` (else a `vocab.json` with `merges.txt`) in
    the same folder. The first is returned when none exists, for the error message."""
    weights = Path(weights)
    beside = weights.with_name(weights.name.removesuffix(".safetensors") + ".tokenizer.json")
    hub_json, hub_vocab = weights.parent / "tokenizer.json", weights.parent / HUB_VOCAB
    for candidate in (beside, hub_json):
        if candidate.is_file():
            return candidate
    return hub_vocab if hub_vocab.is_file() and (weights.parent / HUB_MERGES).is_file() else beside


HUB_VOCAB, HUB_MERGES = "vocab.json", "merges.txt"


def load_tokenizer(path: Path) -> Tokenizer:
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"no tokenizer at {path}; a language model's weights need their tokenizer.json beside them")
    if path.name == HUB_VOCAB:
        return HFTokenizer(byte_level_bpe(path, path.with_name(HUB_MERGES)))
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("type") == CharTokenizer.kind:
        return CharTokenizer(data["chars"])
    from tokenizers import Tokenizer as RustTokenizer

    return HFTokenizer(RustTokenizer.from_file(str(path)))


def byte_level_bpe(vocab: Path, merges: Path):
    """GPT-2's tokenizer from its two original files: byte-level BPE, no prefix space."""
    from tokenizers import Tokenizer as RustTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    tokenizer = RustTokenizer(models.BPE.from_file(str(vocab), str(merges)))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def write_tokenizer_json(text: str, path: Path) -> None:
    from zoo.files import atomic_file

    with atomic_file(Path(path), "--out") as temporary:
        Path(temporary).write_text(text, encoding="utf-8")


def bits_per_char(total_nats: float, characters: int) -> dict[str, float]:
    """Cross-entropy summed over tokens (nats), spread over the characters they cover."""
    bpc = total_nats / characters / math.log(2)
    return {"heldout_bits_per_char": round(bpc, 4), "heldout_char_perplexity": round(2**bpc, 4)}


METRIC_DESCRIPTIONS = {
    "heldout_bits_per_char": (
        "cross-entropy on the held-out last 10% of Tiny Shakespeare, summed over tokens and divided by "
        "the number of characters, in bits per character; lower is better"
    ),
    "heldout_char_perplexity": "2 ** heldout_bits_per_char: per-character perplexity",
}
