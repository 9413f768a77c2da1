"""Run every speed benchmark and print one JSON object (`make benchmark`).

The object holds each benchmark's results, then `targets`: one entry per speed goal of the
project, with the measured `value`, the `goal` it is held to and whether it is `met` (None when
this run did not measure it, e.g. conf/paper is absent).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import bench_diffusion_sampling
import bench_guide_sampling
import bench_synthetic
import bench_training_mfu
import bench_windows
from _timing import CONF_DIR, print_json

from audio2photoreal_pipelines.parameters import load_parameters

BENCHMARKS = {
    "guide_sampling": bench_guide_sampling.main,
    "diffusion_sampling": bench_diffusion_sampling.main,
    "windows": bench_windows.main,
    "training_mfu": bench_training_mfu.main,
    "synthetic": bench_synthetic.main,
}
UPSTREAM_DDIM_STEPS = 500  # upstream README's sampler: one denoiser call per step
# (name, path into the results, goal); every goal is "at least".
TARGETS = (
    ("face_training_mfu_paper_size", ("training_mfu", "face", "mfu"), 0.35),
    ("body_training_mfu_paper_size", ("training_mfu", "body", "mfu"), 0.35),
    (
        "guide_paper_cached_speedup_over_upstream_like",
        ("guide_sampling", "paper", "upstream_like_over_cached"),
        50.0,
    ),
    ("sampler_calls_ddim500_over_default", ("sampler", "ddim500_over_default"), 10.0),
    ("windows_face_mmap_speedup_over_whole_file", ("windows", "face", "mmap_speedup"), 1.5),
    ("windows_body_mmap_speedup_over_whole_file", ("windows", "body", "mmap_speedup"), 1.0),
    # The default person within a minute: 60 s over the seconds its generation took.
    ("default_person_generated_within_a_minute", ("synthetic", "minute_over_seconds"), 1.0),
)


def default_sampler() -> dict[str, Any]:
    """The default sampler of conf/base and its denoiser calls against upstream's DDIM 500."""
    sample = load_parameters(CONF_DIR)["sample"]
    return {
        "sampler": sample["sampler"],
        "steps": sample["steps"],
        "ddim500_over_default": round(UPSTREAM_DDIM_STEPS / sample["steps"], 1),
    }


def targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value (None where not measured) and whether it is met."""
    out = []
    for name, path, goal in TARGETS:
        value: Any = results
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        met = None if value is None else bool(value >= goal)
        out.append({"name": name, "value": value, "goal": f">= {goal}", "met": met})
    return out


def main(*, quick: bool = False) -> dict[str, Any]:
    """Results of every benchmark, each with the wall seconds it took, then the targets."""
    results: dict[str, Any] = {}
    for name, bench in BENCHMARKS.items():
        start = time.perf_counter()
        results[name] = bench(quick=quick)
        results[name]["wall_s"] = round(time.perf_counter() - start, 1)
    results["sampler"] = default_sampler()
    results["targets"] = targets(results)
    return results


if __name__ == "__main__":
    print_json(main())
