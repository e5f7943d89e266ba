"""GPT-2 at the real 124M shape (12 layers, 12 heads, 768 wide, 1024 positions,
vocab 50257; random weights saved by transformers' save_pretrained) on CPU, in
one run: greedy tokens/s of transformers' generate() with its KV cache, of the
zoo's PyTorch backend and of its ONNX Runtime backend (fp32, and int8 with
dynamic MatMul/Gemm quantization), and the first-token latency of a 512-token
prompt; then the int8 export's held-out bits-per-character change on the
zoo's own Shakespeare gpt2 (trained weights, so the change means something).

    python benchmarks/gpt2_124m.py --data ../shared/data/tinyshakespeare --threads 1

Batch 1, a 32-token random prompt, 128 new tokens; tokens/s = 128 / seconds for
the whole generation (prompt included), median of --runs after a warm-up. All
three use --threads intra-op threads. The exports go to a temporary cache.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="Tiny Shakespeare folder (int8 validation and the bits-per-character change)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--latency-prompt", type=int, default=512)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="zoo-gpt2-124m-"))
    os.environ.update({"ZOO_CACHE_DIR": str(work / "cache"), "ZOO_RUN_ONNX_THREADS": str(args.threads),
                       "ZOO_EXPORT_INT8_MODE": "dynamic"})
    try:
        results = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))


def run(args, work: Path) -> dict:
    import numpy as np
    import torch
    import transformers

    import zoo.api
    from zoo.runtime import open_backend
    from zoo.tasks.text_generation import generate, heldout_metrics
    from zoo.text import load_tokenizer, tokenizer_path

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    folder = work / "gpt2-124m"
    reference = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()
    reference.save_pretrained(folder)
    # Any byte-level BPE will do for the int8 export's quality check; the shipped gpt2's is at hand.
    shutil.copy(tokenizer_path(zoo.api.resolve_weights("gpt2").path), folder / "tokenizer.json")

    rng = np.random.default_rng(0)
    prompt = rng.integers(0, 50257, args.prompt_tokens).tolist()
    long_prompt = rng.integers(0, 50257, args.latency_prompt).tolist()
    weights = str(folder)
    backends = {
        "zoo torch": open_backend("gpt2", "torch", weights=weights),
        "zoo onnx": open_backend("gpt2", "onnx", weights=weights),
        "zoo onnx-int8": open_backend("gpt2", "onnx-int8", weights=weights, data=args.data),
    }

    def hf_generate(ids: list[int], steps: int):
        with torch.inference_mode():
            out = reference.generate(torch.tensor([ids]), max_new_tokens=steps, min_new_tokens=steps, do_sample=False,
                                     use_cache=True, pad_token_id=reference.config.eos_token_id)
        return out[0, len(ids):].tolist()

    generators = {"transformers generate": hf_generate}
    for label, backend in backends.items():
        generators[label] = lambda ids, steps, backend=backend: generate(backend, ids, steps, temperature=0)[0].tolist()

    def median_seconds(function) -> float:
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    rows, expected = [], None
    for label, function in generators.items():
        function(prompt, 8)  # warm-up
        tokens = function(prompt, args.new_tokens)
        expected = expected or tokens
        seconds = median_seconds(lambda: function(prompt, args.new_tokens))
        first = median_seconds(lambda: function(long_prompt, 1))
        rows.append({"backend": label, "tokens_per_s": round(args.new_tokens / seconds, 2),
                     "first_token_ms_512": round(first * 1000, 1),
                     "same_tokens_as_transformers": tokens == expected})
    baseline = rows[0]["tokens_per_s"]
    for row in rows:
        row["speedup"] = round(row["tokens_per_s"] / baseline, 2)

    tokenizer = load_tokenizer(tokenizer_path(zoo.api.resolve_weights("gpt2").path))
    bpc = {precision: heldout_metrics(open_backend("gpt2", backend, data=args.data), tokenizer, Path(args.data))["heldout_bits_per_char"]
           for precision, backend in (("fp32", "onnx"), ("int8", "onnx-int8"))}
    results = {"threads": args.threads, "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
               "rows": rows, "shakespeare_gpt2_heldout_bits_per_char": bpc,
               "int8_change": round(bpc["int8"] - bpc["fp32"], 4)}
    if not args.json:
        print(f"124M shape, batch 1, {args.prompt_tokens}-token prompt, {args.new_tokens} new tokens, greedy, {args.threads} thread(s)")
        print("| backend | tokens/s | vs transformers | first token, 512-token prompt (ms) | same tokens as transformers |")
        print("| --- | --- | --- | --- | --- |")
        for row in rows:
            print(f"| {row['backend']} | {row['tokens_per_s']} | {row['speedup']}x | {row['first_token_ms_512']} | "
                  f"{'yes' if row['same_tokens_as_transformers'] else 'no'} |")
        print(f"Shakespeare gpt2 held-out bits/char: fp32 {bpc['fp32']}, int8 {bpc['int8']} (change {results['int8_change']:+})")
    return results


if __name__ == "__main__":
    main()
