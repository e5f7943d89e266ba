"""Greedy generation throughput of the language models: PyTorch eager vs ONNX
Runtime, both with their cache (recurrent state, KV cache, n-gram context).

    python benchmarks/lm_generation.py --data ../shared/data --batch 1,16 --threads 1

Prompt of 32 tokens, 128 new tokens, greedy; tokens/s = batch * 128 / seconds
for the whole generation (prompt included), median of --runs after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="ngram,rnn,lstm,gpt2")
    parser.add_argument("--batch", default="1,16")
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for both PyTorch and ONNX Runtime")
    parser.add_argument("--data", help="Tiny Shakespeare folder for the prompt (default: [data] root in zoo.toml)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    import zoo.api
    from zoo.exporting import cached_bundle
    from zoo.runtime import OnnxBackend, open_backend
    from zoo.tasks.text_generation import generate
    from zoo.text import load_tokenizer, read_text, tokenizer_path

    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models.split(","):
        resolved = zoo.api.resolve(name)
        graph = resolved.spec.graph()
        tokenizer = load_tokenizer(tokenizer_path(zoo.api.resolve_weights(name).path))
        prompt = tokenizer.encode(read_text(args.data or _data(), "heldout")[:400])[: args.prompt_tokens]
        bundle = cached_bundle(resolved)
        manifest = json.loads((bundle / "model.json").read_text())
        backends = {
            "torch": open_backend(resolved, "torch"),
            "onnx": OnnxBackend(bundle / manifest["graphs"][graph.name]["file"], graph, threads=args.threads),
        }
        for batch in [int(b) for b in args.batch.split(",")]:
            speeds = {}
            for label, backend in backends.items():
                generate(backend, prompt, 8, temperature=0, batch=batch)  # warm-up
                times = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    generate(backend, prompt, args.new_tokens, temperature=0, batch=batch)
                    times.append(time.perf_counter() - start)
                speeds[label] = batch * args.new_tokens / statistics.median(times)
            rows.append({"model": name, "batch": batch, "torch_tokens_per_s": round(speeds["torch"], 1),
                         "onnx_tokens_per_s": round(speeds["onnx"], 1),
                         "speedup": round(speeds["onnx"] / speeds["torch"], 2)})
            if not args.json:
                print(f"| {name} | {batch} | {rows[-1]['torch_tokens_per_s']} | {rows[-1]['onnx_tokens_per_s']} | {rows[-1]['speedup']}x |", flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))


def _data():
    from zoo.data import data_root

    return data_root()


if __name__ == "__main__":
    main()
