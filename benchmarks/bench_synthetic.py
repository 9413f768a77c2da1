"""Generating the default synthetic person, the first thing a clean `make run` does.

The whole default person (SyntheticConfig()) is written into a temporary folder and timed once:
the project aims to generate it within a minute on 2 CPU cores. `minute_over_seconds` is 60 s
over the measured time, so the goal is met at 1 or more.
Run: python benchmarks/bench_synthetic.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _timing import machine_info, print_json

from audio2photoreal_pipelines.data.synthetic import SyntheticConfig, generate_person


def main(*, quick: bool = False) -> dict[str, Any]:
    """Seconds to generate the default person (quick: a 2-scene person, for the smoke test)."""
    config = (
        SyntheticConfig(num_scenes=2, min_seconds=21, max_seconds=22, faceless_scene=None)
        if quick
        else SyntheticConfig()
    )
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        scenes = generate_person(Path(folder), config)
        seconds = time.perf_counter() - start
        megabytes = sum(p.stat().st_size for p in Path(folder).iterdir()) / 2**20
    return {
        "machine": machine_info(torch.device("cpu")),
        "scenes": len(scenes),
        "megabytes": round(megabytes, 1),
        "seconds": round(seconds, 2),
        "minute_over_seconds": round(60.0 / seconds, 2),
    }


if __name__ == "__main__":
    print_json(main())
