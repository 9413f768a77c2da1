"""Metrics against values computed by hand on small arrays."""

import math

import numpy as np
import pytest
from scipy import linalg

from audio2photoreal_pipelines.evaluation import metrics


def _fd_with_sqrtm(x: np.ndarray, y: np.ndarray) -> float:
    """The textbook formula with scipy's matrix square root, as an independent reference."""
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    diff = x.mean(axis=0) - y.mean(axis=0)
    tr_covmean = np.trace(linalg.sqrtm(s1 @ s2).real)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def test_fd_two_point_sets_by_hand():
    # x: mean 1, var 2 (ddof 1); y: mean 5, var 4 -> (5 - 1)^2 + (sqrt 2 - 2)^2
    x, y = np.array([[0.0], [2.0]]), np.array([[3.0], [5.0], [7.0]])
    assert metrics.frechet_distance(x, y) == pytest.approx(16 + (math.sqrt(2) - 2) ** 2)


def test_fd_of_1d_gaussians_is_mean_and_std_gap():
    rng = np.random.default_rng(0)
    x, y = rng.normal(1.0, 2.0, (500, 1)), rng.normal(-0.5, 0.7, (400, 1))
    expected = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert metrics.frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)


def test_fd_identical_sets_is_zero():
    x = np.random.default_rng(1).normal(size=(200, 6)) @ np.diag([1, 2, 3, 0.1, 5, 1])
    assert abs(metrics.frechet_distance(x, x.copy())) < 1e-8


def test_fd_matches_scipy_sqrtm_on_correlated_data():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    y = rng.normal(size=(250, 5)) @ rng.normal(size=(5, 5)) + 0.3
    assert metrics.frechet_distance(x, y) == pytest.approx(_fd_with_sqrtm(x, y), rel=1e-7)


def test_fd_singular_covariance_stays_finite():
    x = np.random.default_rng(3).normal(size=(50, 3))
    x[:, 1] = 4.0  # a constant dim: singular covariance
    assert abs(metrics.frechet_distance(x, x.copy())) < 1e-8


def test_fd_rejects_non_finite_input():
    x = np.ones((4, 2))
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metrics.frechet_distance(x, np.ones((4, 2)))


def test_fd_g_pools_reps_samples_and_time():
    rng = np.random.default_rng(4)
    pred, gt = rng.normal(size=(2, 3, 10, 4)), rng.normal(size=(3, 10, 4)) + 1
    expected = metrics.frechet_distance(gt.reshape(-1, 4), pred.reshape(-1, 4))
    assert metrics.fd_g(pred, gt) == pytest.approx(expected)


def test_fd_k_uses_frame_differences_along_time():
    # Ramps with per-frame slopes (1, 2) vs (3, 2): constant velocities, FD_k = (3 - 1)^2 = 4.
    t = np.arange(8.0)[:, None]
    gt = np.stack([t * [1.0, 2.0], t * [1.0, 2.0] + 5])
    pred = (t * [3.0, 2.0])[None, None].repeat(2, axis=1)
    assert metrics.fd_k(pred, gt) == pytest.approx(4.0)


def test_div_g_constant_frames_is_zero():
    assert metrics.div_g(np.full((2, 3, 40, 5), 2.5)) == 0.0


def test_div_g_of_unit_gaussian_frames_is_mean_pair_distance():
    # |X - Y| for X, Y ~ N(0, 1) has mean sqrt(2) * sqrt(2 / pi) = 2 / sqrt(pi).
    frames = np.random.default_rng(5).normal(size=(1, 50, 1000, 1))
    expected = 2 / math.sqrt(math.pi)
    assert metrics.div_g(frames, num_pairs=10_000) == pytest.approx(expected, abs=0.03)


def test_div_g_is_seeded_and_clamps_pairs_to_frame_count():
    frames = np.random.default_rng(6).normal(size=(3, 30, 2))  # 90 frames < 10 000 pairs
    first = metrics.div_g(frames, seed=3)
    assert first == metrics.div_g(frames, seed=3)
    assert first != metrics.div_g(frames, seed=4)


def test_div_k_by_hand():
    # dim 0 over time: var([0, 2, 4]) = 8/3; dim 1 constant: 0 -> mean 4/3.
    clip = np.array([[[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]]])
    assert metrics.div_k(clip) == pytest.approx(4 / 3)


def test_div_sample_by_hand():
    # Two reps differing by d: variance (d / 2)^2 -> d = 2, 4, 6 gives 1, 4, 9; mean 14/3.
    pred = np.zeros((2, 1, 3, 1))
    pred[1, 0, :, 0] = [2.0, 4.0, 6.0]
    assert metrics.div_sample(pred) == pytest.approx(14 / 3)


def test_div_sample_needs_repetitions_axis():
    with pytest.raises(ValueError, match="R, S, T, F"):
        metrics.div_sample(np.zeros((3, 4, 2)))


def test_masked_l2_by_hand():
    gt = np.zeros((2, 3, 2))
    pred = np.array([[[[3, 4], [0, 0], [6, 8]], [[1, 0], [0, 2], [100, 0]]]], dtype=float)
    valid = np.array([[True, True, True], [True, True, False]])
    # Per-frame norms 5, 0, 10 | 1, 2, (100 masked) -> 18 / 5.
    assert metrics.masked_l2(pred, gt, valid) == pytest.approx(18 / 5)


def test_face_fd_ignores_invalid_gt_frames():
    rng = np.random.default_rng(7)
    gt = rng.normal(size=(2, 20, 3))
    valid = np.ones((2, 20), dtype=bool)
    valid[1, 5:9] = False
    pred = gt[None].copy()
    gt[~valid] = 1e3  # garbage where the face code is missing
    assert abs(metrics.face_fd(pred, gt, valid)) < 1e-8
    assert metrics.face_fd(pred, gt) > 1.0


def test_lip_sync_scaled_copy_has_correlation_one():
    true = np.array([[0.0, 1.0, 2.0]])
    out = metrics.lip_sync(3 * true + 1, true)
    assert out["lip_corr"] == pytest.approx(1.0)
    assert out["lip_err"] == pytest.approx((1 + 3 + 5) / 3)  # |2 * true + 1|


def test_lip_sync_broadcasts_reps_and_scores_constant_as_zero():
    true = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0]])
    pred = np.stack([-true, np.ones_like(true)])  # rep 0 anti-correlated, rep 1 constant
    assert metrics.lip_sync(pred, true)["lip_corr"] == pytest.approx((-1 - 1 + 0 + 0) / 4)


def test_lip_sync_scores_a_constant_read_through_the_readout_as_zero():
    rng = np.random.default_rng(3)
    w, mean = rng.normal(size=256), rng.uniform(-1, 1, 256)
    # The mean face read through w: equal up to round-off, not exactly, across frames.
    pred = metrics.read_lip(np.broadcast_to(mean, (2, 90, 256)).copy(), w, 0.7)
    assert metrics.lip_sync(pred, rng.normal(size=(2, 90)))["lip_corr"] == 0


def test_lip_readout_recovers_a_linear_lip_direction():
    rng = np.random.default_rng(8)
    face, w_true = rng.normal(size=(60, 8)), rng.normal(size=8)
    lip = face @ w_true + 0.7
    w, b = metrics.fit_lip_readout(face, lip)
    np.testing.assert_allclose(w, w_true, atol=1e-9)
    assert b == pytest.approx(0.7)
    np.testing.assert_allclose(metrics.read_lip(face[None], w, b)[0], lip, atol=1e-9)


def _motion_with_beats(beat_frames, frames=300, drift=1.0, width=3.0):
    """2-d motion: constant drift in dim 0, Gaussian bumps in dim 1 whose peaks are speed minima."""
    t = np.arange(frames, dtype=float)
    bumps = sum(np.exp(-((t - f) ** 2) / (2 * width**2)) for f in beat_frames)
    return np.stack([drift * t, 5.0 * bumps], axis=1)


def test_mean_velocity_of_a_ramp_by_hand():
    motion = np.arange(20.0)[:, None] * [2.0]  # 2 units per frame at 30 fps = 60 per second
    assert metrics.mean_velocity(motion, fps=30) == pytest.approx(60.0)


def test_motion_beats_are_the_bump_peaks():
    motion = _motion_with_beats([90, 150, 210])
    beats = metrics.motion_beats(motion, mean_vel=metrics.mean_velocity(motion))
    np.testing.assert_allclose(beats, np.array([90, 150, 210]) / 30)


def test_bc_is_one_when_beats_sit_on_onsets():
    motion = _motion_with_beats([90, 150, 210])
    bc = metrics.beat_consistency(
        motion, np.array([3.0, 5.0, 7.0]), mean_vel=metrics.mean_velocity(motion)
    )
    assert bc == pytest.approx(1.0)


def test_bc_is_near_zero_when_beats_are_far_from_onsets():
    motion = _motion_with_beats([90])
    bc = metrics.beat_consistency(
        motion, np.array([6.5, 7.5]), mean_vel=metrics.mean_velocity(motion)
    )
    assert bc < 1e-8


def test_bc_kernel_and_dropped_edges():
    motion = _motion_with_beats([150])
    sigma = 0.3
    # The onset at 1.0 s lies in the dropped first 2 s; only 5.2 s counts (0.2 s from the beat).
    bc = metrics.beat_consistency(
        motion, np.array([1.0, 5.2]), sigma=sigma, mean_vel=metrics.mean_velocity(motion)
    )
    assert bc == pytest.approx(math.exp(-(0.2**2) / (2 * sigma**2)))


def test_bc_ignores_full_stops_below_threshold():
    motion = _motion_with_beats([150], drift=0.0)  # speed 0 at the peak: not a beat
    bc = metrics.beat_consistency(motion, np.array([5.0]), mean_vel=metrics.mean_velocity(motion))
    assert bc == 0.0


def test_bc_without_onsets_is_nan():
    motion = _motion_with_beats([150])
    assert math.isnan(metrics.beat_consistency(motion, np.array([0.5]), mean_vel=1.0))


def test_bc_clips_average_over_reps_and_samples():
    on, off = _motion_with_beats([150]), _motion_with_beats([60])
    motion = np.stack([on, off])[None]  # (1, 2, T, F)
    onsets = [np.array([5.0]), np.array([8.0])]  # sample 1's beat is 6 s away
    bc = metrics.beat_consistency_clips(motion, onsets, mean_vel=metrics.mean_velocity(on))
    assert bc == pytest.approx(0.5)


@pytest.mark.slow  # ~1 s warm, ~20 s the first time librosa's numba kernels compile
def test_detect_audio_onsets_finds_tone_bursts():
    sr, times = 48_000, np.array([0.5, 1.3, 2.2, 3.1])
    wave = np.zeros(4 * sr)
    burst = np.sin(2 * np.pi * 300 * np.arange(4800) / sr) * np.exp(-np.arange(4800) / 1500)
    for s in times:
        wave[int(s * sr) : int(s * sr) + 4800] = burst
    found = metrics.detect_audio_onsets(wave, sample_rate=sr)
    assert np.abs(found[:, None] - times[None]).min(axis=0).max() < 0.06  # every burst found
    assert np.abs(found[:, None] - times[None]).min(axis=1).max() < 0.1  # nothing spurious


def test_fd_of_identical_ill_conditioned_sets_is_zero_to_rounding():
    # Random-walk poses with a few near-constant dims: traces ~1e5, condition number ~1e12.
    rng = np.random.default_rng(9)
    mix = rng.normal(size=(30, 30))
    mix[:, :4] *= 1e-4
    x = (np.cumsum(rng.normal(size=(10, 200, 30)), axis=1) @ mix).reshape(-1, 30)
    trace = np.trace(np.cov(x, rowvar=False))
    assert abs(metrics.frechet_distance(x, x.copy())) < 1e-12 * trace


def _bumps(frames: int, starts: list[int], width: int = 12) -> np.ndarray:
    """(frames, 2) motion at rest except a linear ramp of ``width`` frames after each start."""
    x = np.zeros((frames, 2))
    for s in starts:
        x[s : s + width] += np.linspace(0.0, 1.0, width)[:, None]
        x[s + width :] += 1.0
    return x


def test_stroke_response_by_hand():
    # Speed is constant inside each 12-frame ramp and zero elsewhere (central differences smear
    # one frame at each end): mean speed in the windows / mean speed over the clip.
    motion = _bumps(120, [20, 70])
    speed = metrics.pose_speed(motion)
    expected = np.mean([speed[s : s + 12].mean() for s in (20, 70)]) / speed.mean()
    assert metrics.stroke_response(motion[None], [np.array([20, 70])]) == pytest.approx(expected)
    assert expected > 4  # the motion happens only at the strokes


def test_stroke_response_separates_aligned_from_shifted_motion():
    rng = np.random.default_rng(0)
    starts = np.sort(rng.choice(np.arange(0, 560, 30), 12, replace=False)) + rng.integers(0, 10)
    aligned = _bumps(600, list(starts))
    shifted = _bumps(600, list(starts + 15))
    strokes = [starts]
    assert metrics.stroke_response(aligned[None], strokes) > 3
    assert metrics.stroke_response(shifted[None], strokes) < 1.5


def test_stroke_response_of_motion_unrelated_to_strokes_is_about_one():
    motion = np.cumsum(np.random.default_rng(1).normal(size=(4, 3000, 5)), axis=1)
    strokes = [np.arange(5, 2980, 37)] * 4
    assert metrics.stroke_response(motion, strokes) == pytest.approx(1.0, abs=0.05)


def test_stroke_response_skips_clips_without_strokes_and_averages_reps():
    motion = np.stack([_bumps(100, [10]), 2 * _bumps(100, [10])])[:, None]  # (R=2, S=1, T, F)
    two_clips = np.concatenate([motion, motion], axis=1)  # (2, 2, T, F)
    one = metrics.stroke_response(motion, [np.array([10])])
    assert metrics.stroke_response(two_clips, [np.array([10]), np.array([], int)]) == one
    assert np.isnan(metrics.stroke_response(motion, [np.array([95])]))  # window past the end
    with pytest.raises(ValueError, match="stroke lists"):
        metrics.stroke_response(two_clips, [np.array([10])])


def test_keyframe_error_averages_valid_keyframes_and_repetitions():
    keyframes = np.zeros((2, 3, 4))
    mask = np.array([[True, True, False], [True, False, False]])
    pred = np.zeros((2, 2, 3, 4))
    pred[0, 0, 0] = 2.0  # squared error 4 in every dim at one valid keyframe of repetition 0
    pred[:, :, 2] = 100.0  # padded keyframes do not count
    assert metrics.keyframe_error(pred, keyframes, mask) == pytest.approx(4.0 / 6)
    assert metrics.keyframe_error(pred[1], keyframes, mask) == 0.0
    with pytest.raises(ValueError, match="do not match"):
        metrics.keyframe_error(pred[:, :1], keyframes, mask)
