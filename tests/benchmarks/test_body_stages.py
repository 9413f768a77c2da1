"""The body stage benchmark's velocity diagnostics, on made-up motion with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from audio2photoreal_pipelines.models.generate import SamplingConfig
from tests.benchmarks.benchmark_import import import_benchmark


@pytest.fixture(scope="module")
def body_stages():
    return import_benchmark("bench_body_stages")


def random_walk(rng: np.random.Generator, shape: tuple[int, ...], scales: np.ndarray) -> np.ndarray:
    """Motion whose frame-to-frame steps have std `scales` per dim."""
    return np.cumsum(rng.standard_normal(shape) * scales, axis=-2)


def test_velocity_variance_along_gt_axes_is_one_for_gt_and_four_for_twice_its_speed(body_stages):
    rng = np.random.default_rng(0)
    scales = np.array([3.0, 2.0, 1.0, 0.5])
    gt = random_walk(rng, (6, 400, 4), scales)
    assert body_stages.velocity_variance_by_axis(gt, gt, num_axes=3) == [1.0, 1.0, 1.0]
    ratios = body_stages.velocity_variance_by_axis(2 * gt[None], gt, num_axes=3)
    assert ratios == [4.0, 4.0, 4.0]
    # Only the slowest axis sped up: the largest axes are untouched.
    faster = gt * np.array([1.0, 1.0, 1.0, 3.0])
    assert body_stages.velocity_variance_by_axis(faster, gt, num_axes=2) == [1.0, 1.0]


def test_seams_are_the_inpainted_overlaps_the_frames_after_them_and_the_clip_start(body_stages):
    config = SamplingConfig(body_window=150, body_overlap=30, window=600)
    seams = body_stages.seam_frames(599, config, after=15)
    expected = np.zeros(599, dtype=bool)
    for first, last in ((0, 15), (120, 165), (240, 285), (360, 405), (480, 525)):
        expected[first:last] = True
    np.testing.assert_array_equal(seams, expected)


def test_fd_k_at_seams_separates_motion_that_jumps_only_at_the_seams(body_stages):
    rng = np.random.default_rng(1)
    gt = random_walk(rng, (8, 300, 3), np.ones(3))
    seams = np.zeros(299, dtype=bool)
    seams[100:150] = True
    jumpy = np.diff(gt, axis=-2)
    jumpy[:, seams] *= 3
    pred = np.concatenate([gt[:, :1], gt[:, :1] + np.cumsum(jumpy, axis=-2)], axis=-2)
    scores = body_stages.fd_k_at_seams(pred, gt, seams)
    assert scores["between_seams"] == pytest.approx(0.0, abs=1e-9)
    assert scores["seams"] > 1.0
