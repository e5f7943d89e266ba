"""Batch inference with Ray Data over an exported zoo bundle, on one machine or many.

    zoo export dcgan --target onnx -o out/
    python examples/ray_batch_inference.py out/dcgan --samples 100000 --out samples/ [--address auto]

Ray Data streams blocks of inputs (each drawn from its sample id) through one ONNX Runtime session per
actor (`zoo.bundles.BundleRunner`), so memory stays bounded whatever
--samples is, and `--address` joins an existing cluster (`ray start --head`
on one machine, `ray start --address HEAD:6379` on the others; the bundle
path must be readable on every node). Workers need onnxruntime and aigc-zoo,
not torch.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def run(bundle: Path, samples: int, out: Path | None, actors: int, batch_size: int, address: str | None):
    import ray

    from zoo.bundles import BundleRunner, graph_from_manifest, read_manifest, seeded_inputs

    graph, _ = graph_from_manifest(read_manifest(bundle))
    ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    # Ray Data starts the actor pool first and keeps no CPU back for the tasks that feed it: actors holding
    # every CPU wait forever for input. Leave one CPU of the cluster to those tasks.
    cpus = ray.cluster_resources().get("CPU", 0.0)
    if cpus < 2:
        raise SystemExit(f"the Ray cluster has {cpus:g} CPUs; this pipeline needs at least 2 (one feeds the actors)")
    cpus_per_actor = min(1.0, (cpus - 1.0) / actors)
    started = time.perf_counter()
    dataset = (
        ray.data.range(samples)
        # Inputs drawn from each sample's id, in light tasks (a function from the installed package, so
        # that workers import it rather than this script).
        .map_batches(seeded_inputs, fn_kwargs={"bundle": str(bundle)}, batch_size=batch_size)
        .map_batches(BundleRunner, fn_constructor_args=(str(bundle),), fn_constructor_kwargs={"threads": 1},
                     batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=cpus_per_actor)
    )
    if out is not None:
        dataset.select_columns(["id", graph.outputs[0].name]).write_numpy(str(out), column=graph.outputs[0].name)
        count = samples
    else:
        count = dataset.count()
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--out", type=Path, help="folder for .npy blocks of outputs (default: count only)")
    parser.add_argument("--actors", type=int, default=2, help="ONNX Runtime actors (one session each)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--address", help="an existing Ray cluster ('auto'); default: start a local one")
    args = parser.parse_args()
    count, seconds = run(args.bundle, args.samples, args.out, args.actors, args.batch_size, args.address)
    print(f"{count} samples in {seconds:.1f} s ({count / seconds:.0f} samples/s) with {args.actors} actors")


if __name__ == "__main__":
    main()
