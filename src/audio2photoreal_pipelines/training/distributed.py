"""Data-parallel training: N processes on this machine joined by one torch.distributed group.

`run_local_processes(worker, N)` forks N processes, joins them in a gloo (CPU) or NCCL (one GPU
per process) group and calls ``worker(rank, N)`` in each; `train` then wraps the model in
`DistributedDataParallel`. The processes are forked, not spawned, because the workers are
closures over a pipeline's loss function and window sampler, which do not pickle. A failure in
any process is raised in the caller with that process's traceback.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

from audio2photoreal_pipelines.training.threads import (
    LOCAL_PROCESSES_VARIABLE,
    configure_torch_threads,
)

Worker = Callable[[int, int], None]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, for the group's rendezvous."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_local_processes(worker: Worker, processes: int, *, device: torch.device) -> None:
    """Call ``worker(rank, processes)`` in `processes` forked processes joined in one group."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if device.type == "cuda" and torch.cuda.device_count() < processes:
        raise ValueError(
            f"{processes} processes need one GPU each; this machine has {torch.cuda.device_count()}"
        )
    backend = "nccl" if device.type == "cuda" else "gloo"
    mp.start_processes(
        _process_main,
        args=(worker, processes, free_port(), backend),
        nprocs=processes,
        join=True,
        start_method="fork",
    )


def _process_main(rank: int, worker: Worker, world_size: int, port: int, backend: str) -> None:
    # The processes share this machine's CPUs: each takes its share of the threads.
    os.environ[LOCAL_PROCESSES_VARIABLE] = str(world_size)
    configure_torch_threads()
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(
        backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        worker(rank, world_size)
    finally:
        dist.destroy_process_group()


def joined_group() -> tuple[int, int] | None:
    """(rank, world size) when this process already belongs to a group, as a torchrun job's
    processes do (`torchrun_train`); None otherwise."""
    if not dist.is_initialized():
        return None
    return dist.get_rank(), dist.get_world_size()


def check_group(rank: int, world_size: int) -> None:
    """Raise unless this process is `rank` of an initialised group of `world_size`."""
    if world_size == 1:
        return
    if not dist.is_initialized():
        raise RuntimeError(
            f"world_size={world_size} needs an initialised torch.distributed group "
            "(use training.distributed.run_local_processes)"
        )
    if (dist.get_rank(), dist.get_world_size()) != (rank, world_size):
        raise RuntimeError(
            f"rank {rank} of {world_size} given, but this process is rank {dist.get_rank()} "
            f"of {dist.get_world_size()}"
        )


def mean_over_ranks(values: Mapping[str, float], device: torch.device) -> dict[str, float]:
    """Each value averaged over the ranks (one all-reduce); unchanged without a group."""
    if not dist.is_initialized() or not values:
        return dict(values)
    names = sorted(values)
    stacked = torch.tensor([float(values[n]) for n in names], dtype=torch.float64, device=device)
    dist.all_reduce(stacked)
    stacked /= dist.get_world_size()
    return dict(zip(names, stacked.tolist(), strict=True))


def all_ranks_true(flag: bool, device: torch.device) -> bool:
    """True when `flag` holds on every rank (one all-reduce), so all ranks take the same branch."""
    if not dist.is_initialized():
        return flag
    failed = torch.tensor([0 if flag else 1], device=device)
    dist.all_reduce(failed, op=dist.ReduceOp.MAX)
    return not bool(failed.item())


def gather_by_rank(value: Any) -> dict[int, Any]:
    """{rank: value} of every rank's picklable `value`; {0: value} without a group."""
    if not dist.is_initialized():
        return {0: value}
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, _to_cpu(value))
    return dict(enumerate(gathered))


def _to_cpu(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.cpu()
    if isinstance(value, Mapping):
        return {k: _to_cpu(v) for k, v in value.items()}
    return value
