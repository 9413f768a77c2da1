"""Run every benchmark and print one JSON object {benchmark name: results} (`make benchmark`)."""

from __future__ import annotations

import time
from typing import Any

import bench_diffusion_sampling
import bench_guide_sampling
import bench_windows
from _timing import print_json

BENCHMARKS = {
    "guide_sampling": bench_guide_sampling.main,
    "diffusion_sampling": bench_diffusion_sampling.main,
    "windows": bench_windows.main,
}


def main(*, quick: bool = False) -> dict[str, Any]:
    """Results of every benchmark, each with the wall seconds it took."""
    results: dict[str, Any] = {}
    for name, bench in BENCHMARKS.items():
        start = time.perf_counter()
        results[name] = bench(quick=quick)
        results[name]["wall_s"] = round(time.perf_counter() - start, 1)
    return results


if __name__ == "__main__":
    print_json(main())
