"""Smoke test of the speed benchmarks at tiny sizes: JSON layout and cache equivalence only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def results():
    """run_all.main(quick=True), imported the way `python benchmarks/run_all.py` imports it.

    One torch thread: two threads on shared, busy cores run these tiny models ~10x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    sys.path.insert(0, str(BENCHMARKS_DIR))
    try:
        import run_all

        return run_all.main(quick=True)
    finally:
        sys.path.remove(str(BENCHMARKS_DIR))
        torch.set_num_threads(threads)


def test_results_are_one_json_object_per_benchmark(results):
    assert set(results) == {"guide_sampling", "diffusion_sampling", "windows"}
    assert json.loads(json.dumps(results)) == results
    for bench in results.values():
        assert bench["machine"]["torch_threads"] >= 1
        assert bench["wall_s"] >= 0


def test_guide_cached_and_uncached_sampling_agree(results):
    base = results["guide_sampling"]["base"]
    assert base["tokens_identical"] is True
    assert base["cached_s_per_call"] > 0 and base["uncached_s_per_call"] > 0
    assert base["cache_speedup"] > 0


def test_diffusion_cached_and_uncached_sampling_agree(results):
    for kind in ("face", "body"):
        model = results["diffusion_sampling"][kind]
        assert model["cached_equals_uncached"] is True
        assert model["ddim5_cached"]["s_per_clip"] > 0
        assert model["dpmsolver4"]["real_time_factor"] > 0
        assert model["cache_speedup"] > 0


def test_window_loaders_return_identical_batches(results):
    for kind in ("face", "body"):
        setup = results["windows"][kind]
        assert setup["batches_identical"] is True
        assert setup["mmap_batches_per_s"] > 0 and setup["whole_file_batches_per_s"] > 0
