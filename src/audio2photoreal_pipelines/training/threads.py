"""How many intra-op threads torch uses: the CPUs this process may run on, shared fairly.

Torch's default is the machine's physical core count, which ignores CPU affinity (containers,
``taskset``) and the other processes on the same CPUs: two processes with 2 threads each on 2
cores run a training step 10x or more slower than one. ``OMP_NUM_THREADS`` always wins.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import torch

logger = logging.getLogger(__name__)

# torchrun sets this for every process it starts on one machine.
LOCAL_PROCESSES_VARIABLE = "LOCAL_WORLD_SIZE"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def choose_thread_count(
    environ: Mapping[str, str] = os.environ, cpus: int | None = None
) -> tuple[int, str]:
    """(threads, why): OMP_NUM_THREADS if set, else usable CPUs // local processes, at least 1."""
    requested = environ.get("OMP_NUM_THREADS", "").strip()
    if requested:
        try:
            threads = int(requested)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ValueError(f"OMP_NUM_THREADS must be a positive integer, got {requested!r}")
        return threads, "OMP_NUM_THREADS"
    cpus = usable_cpus() if cpus is None else cpus
    processes_text = environ.get(LOCAL_PROCESSES_VARIABLE, "").strip() or "1"
    processes = int(processes_text) if processes_text.isdigit() and int(processes_text) else 1
    threads = max(1, cpus // processes)
    return threads, f"{cpus} usable CPU(s) shared by {processes} local process(es)"


_configured: int | None = None


def configure_torch_threads(environ: Mapping[str, str] = os.environ) -> int:
    """Set torch's intra-op thread count by `choose_thread_count`; log the choice once."""
    global _configured
    threads, why = choose_thread_count(environ)
    torch.set_num_threads(threads)
    if _configured != threads:
        logger.info("torch uses %d intra-op thread(s) (%s)", threads, why)
        _configured = threads
    return threads
