"""The sampler sweep's choice of samplers and its recommendation rule (no trained run needed)."""

from __future__ import annotations

import pytest

from tests.benchmarks.benchmark_import import import_benchmark

sweep = import_benchmark("bench_sampler_sweep")
REFERENCE = {"FD_g": 1.0, "FD_k": 0.002, "face_L2": 5.0, "lip_corr": 0.9, "stroke_resp": 1.7}


def row(evals: int, **changes: float) -> dict:
    return {**REFERENCE, **changes, "denoiser_evals": evals}


def test_upstreams_reference_sweeps_every_sampler_the_issue_names_once():
    ddim = [("ddim", steps) for steps in (500, 100, 50, 25, 10)]
    assert sweep.sweep_samplers(500) == ddim + [("dpmsolver", 20), ("dpmsolver", 10)]
    default = sweep.sweep_samplers(100)
    assert default[0] == ("ddim", 100) and default.count(("ddim", 100)) == 1


@pytest.mark.parametrize(
    ("changes", "within"),
    [
        ({"FD_g": 1.09}, True),
        ({"FD_k": 0.00222}, False),
        ({"face_L2": 4.0}, True),
        ({"lip_corr": 0.82}, True),
        ({"stroke_resp": 1.52}, False),
    ],
)
def test_within_ten_percent_of_the_reference_in_each_metrics_worse_direction(changes, within):
    assert sweep.within_tolerance(row(10, **changes), REFERENCE) is within


def test_the_cheapest_sampler_within_tolerance_is_recommended():
    cheap_bad = row(10, FD_g=1.2)
    cheap_good = row(20)
    dear_good = row(50)
    assert sweep.recommend(row(500), [dear_good, cheap_bad, cheap_good]) is cheap_good
    reference = row(500)
    assert sweep.recommend(reference, [cheap_bad]) is reference
