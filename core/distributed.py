"""Distributed data-parallel training through PyTorch's elastic launcher.

`zoo train NAME --nproc-per-node N` re-runs the same command under
`torch.distributed.run` (torchrun): one worker per process, rendezvous on
loopback (`--standalone`) or at `--rdzv-endpoint HOST:PORT` across `--nnodes`
machines. Each worker joins a process group (gloo on CPU, nccl on GPU); the
training loop wraps every network in DistributedDataParallel and shards the
data with a DistributedSampler.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from zoo.errors import ZooError


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_worker() -> bool:
    """True inside a process that torchrun started."""
    return "TORCHELASTIC_RUN_ID" in os.environ and "LOCAL_RANK" in os.environ


def launch(argv: list[str], nproc_per_node: int, nnodes: int = 1, rdzv_endpoint: str | None = None) -> None:
    """Run `zoo <argv>` in `nproc_per_node` workers per node; a failed worker is one clear error."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if nnodes > 1 and not rdzv_endpoint:
        raise ZooError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT of the rendezvous (any one node)")
    launcher = ["--nproc-per-node", str(nproc_per_node)]
    if rdzv_endpoint:
        launcher += ["--nnodes", str(nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint,
                     "--rdzv-id", "zoo-train"]
    else:
        launcher += ["--standalone"]
    try:
        run(get_args_parser().parse_args([*launcher, "--module", "zoo", *argv]))
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        ending = f"signal {failure.signal_name()}" if failure.exitcode < 0 else f"exit code {failure.exitcode}"
        raise ZooError(
            f"distributed training failed: worker rank {rank} (pid {failure.pid}) ended with {ending} and the "
            f"other workers were stopped; fix the cause and rerun with --resume to continue from the last checkpoint"
        ) from None


def join() -> Rank:
    """Join the process group torchrun set up (or stay a single process)."""
    if not is_worker():
        return Rank()
    import torch
    import torch.distributed as dist

    rank = Rank(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return rank


def barrier(rank: Rank) -> None:
    if rank.world_size > 1:
        import torch.distributed as dist

        dist.barrier()


def leave(rank: Rank) -> None:
    if rank.world_size > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
