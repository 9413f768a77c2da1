"""Smoke test of the speed benchmarks at tiny sizes: JSON layout and cache equivalence only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from tests.benchmarks.benchmark_import import BENCHMARKS_DIR, import_benchmark


@pytest.fixture(scope="module")
def results():
    """run_all.main(quick=True), imported the way `python benchmarks/run_all.py` imports it.

    One torch thread: two threads on shared, busy cores run these tiny models ~10x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return import_benchmark("run_all").main(quick=True)
    finally:
        torch.set_num_threads(threads)


def test_results_are_one_json_object_per_benchmark(results):
    benchmarks = {"guide_sampling", "diffusion_sampling", "windows", "training_mfu", "synthetic"}
    assert set(results) == benchmarks | {"sampler", "targets"}
    assert list(results)[-1] == "targets"
    assert json.loads(json.dumps(results)) == results
    for name in benchmarks:
        bench = results[name]
        assert bench["machine"]["torch_threads"] >= 1
        assert bench["wall_s"] >= 0


def test_synthetic_person_generation_is_timed(results):
    synthetic = results["synthetic"]
    assert synthetic["scenes"] == 2 and synthetic["megabytes"] > 0  # the quick person
    assert synthetic["minute_over_seconds"] == pytest.approx(60.0 / synthetic["seconds"], rel=0.05)


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


def test_training_mfu_counts_flops_against_the_measured_peak(results):
    mfu = results["training_mfu"]
    assert mfu["matmul_peak"]["gflop_s"] > 0
    for kind in ("face", "body"):
        model = mfu[kind]
        assert model["gflop_per_step"] > 0 and model["s_per_step"] > 0
        expected = model["achieved_gflop_s"] / mfu["matmul_peak"]["gflop_s"]
        assert model["mfu"] == pytest.approx(expected, rel=0.05, abs=1e-3)


def test_targets_list_every_goal_with_its_value(results):
    entries = {entry["name"]: entry for entry in results["targets"]}
    assert set(entries) == {name for name, _, _ in import_benchmark("run_all").TARGETS}
    for entry in entries.values():
        assert set(entry) == {"name", "value", "goal", "met"}
        assert entry["goal"].startswith(">= ")
    # Quick runs skip the paper-size guide: not measured, so neither met nor failed.
    guide = entries["guide_paper_cached_speedup_over_upstream_like"]
    assert guide["value"] is None and guide["met"] is None
    calls = entries["sampler_calls_ddim500_over_default"]
    assert calls["value"] == 500 / results["sampler"]["steps"]
    assert calls["met"] == (calls["value"] >= 10)


def test_a_target_is_met_only_at_or_above_its_goal():
    run_all = import_benchmark("run_all")
    name, path, goal = run_all.TARGETS[0]

    def nested(value):
        out = value
        for key in reversed(path):
            out = {key: out}
        return out

    def entry(value):
        return next(e for e in run_all.targets(nested(value)) if e["name"] == name)

    assert entry(goal)["met"] is True
    assert entry(goal * 0.99)["met"] is False
    assert entry(None)["met"] is None


def test_sampling_rtf_times_face_and_body_for_every_sampler():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = import_benchmark("bench_sampling_rtf").main(size="base", quick=True)
    finally:
        torch.set_num_threads(threads)
    assert result["repetitions"] == 5 and result["clip_s"] == 20
    timing = result["ddim5"]
    assert timing["face_s"] > 0 and timing["body_s"] > 0
    expected = 20 / (timing["face_s"] + timing["body_s"])
    assert timing["real_time_factor"] == pytest.approx(expected, rel=0.02)


def test_training_flops_count_the_fused_cpu_attention_kernel():
    """Forward: query · key and weights · value, 2·B·H·L·S·D FLOPs each; backward: twice that."""
    bench = import_benchmark("bench_training_mfu")
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, length, 4, generator=g) for length in (5, 7, 7))
    for tensor in (q, k, v):
        tensor.requires_grad_(True)
    counter = bench.attention_counting_flop_counter()
    with counter, sdpa_kernel(SDPBackend.FLASH_ATTENTION):  # the kernel CPU training runs
        F.scaled_dot_product_attention(q, k, v).sum().backward()
    forward = 2 * (2 * 2 * 3 * 5 * 7 * 4)
    assert counter.get_total_flops() == 3 * forward


def test_a_benchmark_prints_only_json_on_stdout():
    """`python benchmarks/<name>.py > out.json` gives JSON: the project's logs go to stderr."""
    env = {key: value for key, value in os.environ.items() if key != "KEDRO_LOGGING_CONFIG"}
    script = "import _timing; _timing.print_json({'ok': True})"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BENCHMARKS_DIR.parent,  # the project root, where conf/logging.yml logs to stdout
        env={**env, "PYTHONPATH": str(BENCHMARKS_DIR)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == {"ok": True}


def test_make_benchmark_prints_only_json_even_when_it_installs_first(tmp_path):
    """On a fresh clone `make benchmark` installs first; make's echo of that must not reach stdout.

    A stand-in interpreter makes the venv, ignores the install commands and prints the benchmarks'
    JSON, so the Makefile's own recipes run without installing anything.
    """
    fake_python = tmp_path / "python"
    fake_python.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        "  *run_all.py*) echo '{\"targets\": []}' ;;\n"
        '  "-m venv "*) mkdir -p "$3/bin" && cp "$0" "$3/bin/python" ;;\n'
        '  *) echo "installing: $*" ;;\n'
        "esac\n"
    )
    fake_python.chmod(0o755)
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["make", "--no-print-directory", "benchmark", f"VENV={venv}", f"PYTHON={fake_python}"],
        cwd=BENCHMARKS_DIR.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert (venv / ".installed").is_file()  # the install did run
    assert "installing: -m pip install" in result.stderr
    assert json.loads(result.stdout) == {"targets": []}
