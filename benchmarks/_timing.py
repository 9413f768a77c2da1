"""Helpers shared by the benchmarks: round-robin median timing, machine facts, YAML params.

Machines are noisy, so benchmarks compare variants by RATIOS of medians measured in one run,
with the variants' calls interleaved so that a slow spell hits every variant alike.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

# Before the first kedro import: the project's logging writes to stdout, which holds the JSON here.
os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(Path(__file__).with_name("logging.yml")))

from audio2photoreal_pipelines.parameters import load_parameters  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = PROJECT_ROOT / "conf"


def sync_device(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_medians(
    calls: Mapping[str, Callable[[], Any]], *, repeats: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call of each variant: one warm-up each, then `repeats` round-robin."""
    for call in calls.values():
        call()  # warm-up: lazy initialisation and allocator growth are not what we measure
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            sync_device(device)
            start = time.perf_counter()
            call()
            sync_device(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on (threads are torch's default, never forced)."""
    info: dict[str, Any] = {
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def model_params(env: str, file: str, section: str) -> dict[str, Any] | None:
    """`section.model` as `kedro run --env <env>` sees it, or None when conf/<env>/<file> does
    not exist."""
    if not (CONF_DIR / env / file).is_file():
        return None
    return load_parameters(CONF_DIR, env)[section]["model"]


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator rounded for the report."""
    return round(numerator / denominator, 3)


def print_json(results: Mapping[str, Any]) -> None:
    """Print results as indented JSON on stdout."""
    print(json.dumps(results, indent=2))
