"""Overfitting check for the language models: bits per character on a slice of
the training split (as long as the held-out split, taken from its end) next to
the held-out figure, both scored exactly as `zoo eval` scores the held-out 10%.

    python benchmarks/lm_overfit.py --data ../shared/data --models lstm,gpt2

A model may name a local weights file (`gpt2=old/default.safetensors`, its
tokenizer beside it) instead of its shipped weights.

A training figure far below the held-out one means the weights memorised the
training text rather than learning what carries over to unseen text.
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="rnn,lstm,gpt2", help="NAME or NAME=WEIGHTS_FILE, comma-separated")
    parser.add_argument("--data", required=True, help="Tiny Shakespeare folder")
    parser.add_argument("--backend", default="torch")
    args = parser.parse_args()

    import zoo.api
    from zoo.runtime import open_backend
    from zoo.tasks.text_generation import text_metrics
    from zoo.text import load_tokenizer, read_text, tokenizer_path

    heldout = read_text(args.data, "heldout")
    train_slice = read_text(args.data, "train")[-len(heldout):]
    print("| model | training-split slice, bits/char | held-out, bits/char | gap |")
    print("| --- | --- | --- | --- |")
    for entry in args.models.split(","):
        name, _, weights = entry.partition("=")
        backend = open_backend(name, args.backend, weights=weights or None)
        tokenizer = load_tokenizer(tokenizer_path(zoo.api.resolve_weights(name, weights or None).path))
        train_bits = text_metrics(backend, tokenizer, train_slice)["heldout_bits_per_char"]
        heldout_bits = text_metrics(backend, tokenizer, heldout)["heldout_bits_per_char"]
        print(f"| {entry} | {train_bits:.4f} | {heldout_bits:.4f} | {heldout_bits - train_bits:.4f} |", flush=True)


if __name__ == "__main__":
    main()
