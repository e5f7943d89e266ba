"""Weights and cards: safetensors files that describe themselves.

A weights file stores the model name and config in its safetensors metadata;
its card (TOML) records the data, the exact training command, the metrics
and the sha256 that every load verifies. Nothing here unpickles, and reading
headers, checksums and cards needs no torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from zoo.config import read_toml
from zoo.errors import UnknownNameError, WeightsError
from zoo.specs import ModelSpec, WeightsSpec

FORMAT_VERSION = "1"
_MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class ResolvedWeights:
    """A weights variant located on disk."""

    model: str
    variant: str
    path: Path
    sha256: str | None
    card: dict[str, Any]


def package_path(spec: ModelSpec, relative: str) -> Path:
    with resources.as_file(resources.files(spec.package).joinpath(relative)) as path:
        return Path(path)


def split_reference(name: str) -> tuple[str, str | None]:
    """'name:variant' -> ('name', 'variant'); 'name' -> ('name', None)."""
    model, _, variant = name.partition(":")
    return model, variant or None


def variant_spec(spec: ModelSpec, variant: str | None) -> tuple[str, WeightsSpec]:
    variant = variant or spec.default_variant
    if variant is None:
        raise WeightsError(f"model '{spec.name}' ships no weights; train some with `zoo train {spec.name}` and pass --weights")
    if variant not in spec.weights:
        known = ", ".join(f"{spec.name}:{v}" for v in spec.weights)
        raise UnknownNameError(f"unknown weights variant '{spec.name}:{variant}'; available: {known}")
    return variant, spec.weights[variant]


def rounded_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Card figures to 4 decimals (3 significant digits below 0.01): 0.483, not 0.4830000102519989."""
    return {k: _rounded(v) if isinstance(v, float) else v for k, v in metrics.items()}


def _rounded(value: float) -> float:
    return round(value, 4) if abs(value) >= 0.01 else float(f"{value:.3g}")


def read_card(spec: ModelSpec, weights: WeightsSpec) -> dict[str, Any]:
    if weights.card is None:
        return {}
    path = package_path(spec, weights.card)
    if not path.is_file():
        return {}
    return read_toml(path, "model card")


def resolve(spec: ModelSpec, variant: str | None = None, download: bool = True) -> ResolvedWeights:
    """Locate a variant's file. hf:// files come from huggingface_hub's cache
    (downloaded when `download` and the network allows; HF_HUB_OFFLINE=1 is honoured)."""
    variant, weights = variant_spec(spec, variant)
    card = read_card(spec, weights)
    sha256 = weights.sha256 or card.get("sha256")
    if weights.uri.startswith(HUB_SCHEME):
        path = _resolve_hub(weights.uri, download)
    elif weights.uri.startswith(("/", "~")):
        path = Path(weights.uri).expanduser()
    else:
        path = package_path(spec, weights.uri)
    return ResolvedWeights(spec.name, variant, path, sha256, card)


def resolve_file(model: str, weights: str | os.PathLike, download: bool = True) -> ResolvedWeights:
    """Weights the user names (`--weights`): a safetensors file, a folder in the hub's
    layout (its model.safetensors, config.json and tokenizer beside it), or
    `hf://owner/repo[/file][@revision]` from huggingface_hub's cache."""
    text = str(weights)
    if text.startswith(HUB_SCHEME):
        path = _resolve_hub(text, download)
    else:
        path = Path(text).expanduser()
        if path.is_dir():
            path = _checkpoint_in(path)
    refuse_pickle(path)
    return ResolvedWeights(model, "custom", path, None, {})


HUB_SCHEME = "hf://"
HUB_WEIGHTS = "model.safetensors"
# The files a foreign checkpoint needs beside it (its config, its tokenizer in either form), where the repo has them.
HUB_SIBLINGS = ("config.json", "tokenizer.json", "vocab.json", "merges.txt")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def _pickle_error(path: str | Path) -> WeightsError:
    return WeightsError(
        f"{path} is a PyTorch pickle checkpoint, and the zoo never unpickles files (loading a pickle can run any code); "
        f"convert it once where you trust it, e.g. `transformers.AutoModelForCausalLM.from_pretrained(FOLDER)"
        f".save_pretrained(FOLDER, safe_serialization=True)` writes model.safetensors, then pass that"
    )


def refuse_pickle(path: Path) -> None:
    """A pickle (torch.save's zip or a raw pickle stream) is refused before anything reads it as safetensors."""
    if not path.is_file():
        return
    with open(path, "rb") as handle:
        head = handle.read(9)
    if head[8:9] == b"{":  # a safetensors header starts at byte 8
        return
    if head.startswith(b"PK\x03\x04") or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) \
            or path.suffix in PICKLE_SUFFIXES:
        raise _pickle_error(path)


def _checkpoint_in(folder: Path) -> Path:
    """The weights file of a folder in the hub's layout."""
    if (folder / HUB_WEIGHTS).is_file():
        return folder / HUB_WEIGHTS
    if (folder / "pytorch_model.bin").is_file():
        raise _pickle_error(folder / "pytorch_model.bin")
    raise WeightsError(f"{folder} is a folder without {HUB_WEIGHTS}; pass the safetensors file itself or a folder "
                       f"saved by save_pretrained(safe_serialization=True)")


def _resolve_hub(uri: str, download: bool) -> Path:
    """hf://owner/repo[/file][@revision] (file defaults to model.safetensors) through huggingface_hub's cache."""
    reference, _, revision = uri.removeprefix(HUB_SCHEME).partition("@")
    parts = reference.strip("/").split("/")
    if len(parts) < 2 or not all(parts):
        raise WeightsError(f"invalid hub reference {uri}: expected hf://owner/repo[/file.safetensors][@revision]")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:]) or HUB_WEIGHTS
    if filename.endswith(PICKLE_SUFFIXES):
        raise _pickle_error(uri)
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError

    def fetch(name: str) -> Path:
        return Path(hf_hub_download(repo_id, name, revision=revision or None, local_files_only=not download))

    try:
        path = fetch(filename)
    except (LocalEntryNotFoundError, EntryNotFoundError) as exc:
        pickled = Path(filename).with_name("pytorch_model.bin").as_posix()
        if isinstance(try_to_load_from_cache(repo_id, pickled, revision=revision or None), str):
            raise _pickle_error(f"{HUB_SCHEME}{repo_id}/{pickled}") from None
        if not isinstance(exc, LocalEntryNotFoundError):  # (a subclass of EntryNotFoundError)
            raise WeightsError(f"{uri}: the repo has no {filename}; name the safetensors file, e.g. hf://{repo_id}/{HUB_WEIGHTS}") from None
        raise WeightsError(
            f"{uri} is not in the Hugging Face cache and cannot be downloaded (offline or HF_HUB_OFFLINE=1); "
            f"download it once with network access (e.g. `hf download {repo_id}`), or pass a local file with --weights"
        ) from None
    except (RepositoryNotFoundError, HFValidationError) as exc:
        raise WeightsError(f"{uri} does not name a hub repo ({type(exc).__name__}); check owner/repo") from None
    for sibling in HUB_SIBLINGS:
        try:
            fetch(Path(filename).with_name(sibling).as_posix())
        except (LocalEntryNotFoundError, EntryNotFoundError):
            pass
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
def read_header(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The tensor table and metadata of a safetensors file, checked before anything is loaded:
    a JSON object whose byte ranges tile the data exactly, string metadata, no pickle."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; check the path or run `zoo train`")
    refuse_pickle(path)
    size = path.stat().st_size
    fix = "re-download or retrain it"
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise WeightsError(f"weights file {path} is truncated or not safetensors ({size} bytes); {fix}")
        (length,) = struct.unpack("<Q", head)
        if length > min(size - 8, _MAX_HEADER):
            raise WeightsError(f"weights file {path} is truncated or not safetensors (bad header length); {fix}")
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise WeightsError(f"weights file {path} is corrupt (unreadable header); {fix}") from None
    if not isinstance(header, dict):
        raise WeightsError(f"weights file {path} is corrupt (its header is JSON but not a table of tensors); {fix}")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WeightsError(f"weights file {path} is corrupt (its metadata is not a table of strings); {fix}")
    _check_byte_ranges(path, header, size - 8 - length, fix)
    return header, metadata


def _check_byte_ranges(path: Path, header: dict[str, Any], data_size: int, fix: str) -> None:
    """Every tensor's byte range matches its shape and dtype, and the ranges tile the data with no gap or overlap."""
    ranges = []
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            valid = all(isinstance(d, int) and d >= 0 for d in shape) and isinstance(begin, int) and isinstance(end, int)
        except (KeyError, TypeError, ValueError):
            valid = False
        if not valid or not 0 <= begin <= end:
            raise WeightsError(f"weights file {path} is corrupt (tensor '{name}' has a malformed entry); {fix}")
        if dtype in _DTYPE_BYTES:
            count = 1
            for dim in shape:
                count *= dim
            if end - begin != count * _DTYPE_BYTES[dtype]:
                raise WeightsError(
                    f"weights file {path} is corrupt (tensor '{name}' {dtype}{list(shape)} needs "
                    f"{count * _DTYPE_BYTES[dtype]} bytes, its byte range holds {end - begin}); {fix}"
                )
        ranges.append((begin, end))
    position = 0
    for begin, end in sorted(ranges):
        if begin != position:
            raise WeightsError(f"weights file {path} is corrupt (tensor byte ranges overlap or leave gaps); {fix}")
        position = end
    if position != data_size:
        raise WeightsError(
            f"weights file {path} is truncated or corrupt ({data_size} bytes of tensor data, header promises {position}); {fix}"
        )


def parameter_count(path: Path) -> int:
    header, _ = read_header(path)
    count = 0
    for info in header.values():
        n = 1
        for dim in info["shape"]:
            n *= dim
        count += n
    return count


def verify(resolved: ResolvedWeights) -> dict[str, str]:
    """Check the file's integrity, checksum and model name; return its metadata."""
    _, metadata = read_header(resolved.path)
    if resolved.sha256:
        actual = file_sha256(resolved.path)
        if actual != resolved.sha256:
            raise WeightsError(
                f"checksum mismatch for {resolved.path}: sha256 {actual[:16]}..., card says {resolved.sha256[:16]}...; "
                f"the file is corrupt or was replaced: re-download or retrain it"
            )
    stored = metadata.get("zoo.model")
    if stored and stored != resolved.model:
        raise WeightsError(
            f"{resolved.path} holds weights for model '{stored}', not '{resolved.model}'; "
            f"pass weights trained for '{resolved.model}'"
        )
    return metadata


def stored_config(metadata: dict[str, str], path: Path | str = "the weights file") -> dict[str, Any]:
    """The model config a zoo-written file carries in its `zoo.config` metadata."""
    try:
        config = json.loads(metadata.get("zoo.config", "{}"))
    except json.JSONDecodeError:
        config = None
    if not isinstance(config, dict):
        raise WeightsError(f"{path} carries a zoo.config that is not a JSON object; re-download or retrain it")
    return config


def save(state_dict: dict, path: Path, model: str, config: dict[str, Any]) -> str:
    """Write weights atomically with their model name and config; return the sha256."""
    from safetensors.torch import save_file

    from zoo.files import atomic_file

    tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in state_dict.items()}
    metadata = {"zoo.model": model, "zoo.config": json.dumps(config, sort_keys=True), "zoo.format": FORMAT_VERSION}
    with atomic_file(Path(path), "--out") as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
        _sort_header(temporary)
        digest = file_sha256(temporary)
    return digest


def _sort_header(path: Path) -> None:
    """Rewrite the header with sorted keys, in place.

    safetensors writes the metadata in hash-map order, which changes from one
    process to the next, so equal weights would get different sha256s. Sorting
    keeps the header's length (the padding absorbs it) and every data offset.
    """
    with open(path, "r+b") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
        canonical = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if len(canonical) > length:
            return  # never grow the header: that would move every tensor
        handle.seek(8)
        handle.write(canonical.ljust(length, b" "))


def load_state_dict(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def human_size(path: Path) -> str:
    size = os.path.getsize(path)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""
