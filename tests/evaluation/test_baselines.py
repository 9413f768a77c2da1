"""Baseline predictors: shapes, determinism, and KNN picking the exact nearest chunks."""

import numpy as np
import pytest

from audio2photoreal_pipelines.evaluation import baselines, metrics


def _constant_chunks(values, frames=4, dims=2):
    """Chunk k is filled with values[k]: (M, frames, dims)."""
    return np.asarray(values, dtype=float)[:, None, None] * np.ones((1, frames, dims))


def test_gt_baseline_repeats_gt():
    gt = np.random.default_rng(0).normal(size=(3, 5, 2))
    pred = baselines.gt_baseline(gt, reps=2)
    assert pred.shape == (2, 3, 5, 2)
    np.testing.assert_array_equal(pred[1], gt)


def test_random_baseline_draws_distinct_train_chunks_per_sample():
    train = _constant_chunks(np.arange(10.0))
    pred = baselines.random_baseline(train, num_test=6, reps=4, seed=1)
    assert pred.shape == (4, 6, 4, 2)
    picked = pred[:, :, 0, 0]  # chunk id of every (rep, sample)
    assert all(len(set(picked[:, s])) == 4 for s in range(6))
    np.testing.assert_array_equal(pred, train[picked.astype(int)])


def test_random_baseline_is_seeded():
    train = np.random.default_rng(2).normal(size=(8, 5, 3))
    a = baselines.random_baseline(train, 3, 2, seed=7)
    np.testing.assert_array_equal(a, baselines.random_baseline(train, 3, 2, seed=7))
    assert not np.array_equal(a, baselines.random_baseline(train, 3, 2, seed=8))


def test_random_baseline_needs_enough_chunks():
    with pytest.raises(ValueError, match="fewer than reps"):
        baselines.random_baseline(np.zeros((2, 4, 1)), 1, 3)


def test_knn_takes_the_nearest_chunks_in_order():
    train_feats = _constant_chunks([0.0, 1.0, 2.0, 3.0, 10.0], frames=6, dims=3)
    train_motion = _constant_chunks([100.0, 101.0, 102.0, 103.0, 110.0])
    test_feats = _constant_chunks([2.2, 9.0], frames=6, dims=3)
    pred = baselines.knn_baseline(train_feats, train_motion, test_feats, reps=3)
    assert pred.shape == (3, 2, 4, 2)
    # 2.2 is nearest to 2, then 3, then 1; 9.0 to 10, then 3, then 2.
    np.testing.assert_array_equal(pred[:, 0, 0, 0], [102.0, 103.0, 101.0])
    np.testing.assert_array_equal(pred[:, 1, 0, 0], [110.0, 103.0, 102.0])


def test_knn_unpooled_matches_frame_by_frame():
    # Chunks A and B have the same mean feature; only the frame-wise distance tells them apart.
    a, b = np.array([[1.0], [0.0]]), np.array([[0.0], [1.0]])
    train_feats, train_motion = np.stack([a, b]), _constant_chunks([5.0, 6.0])
    pred = baselines.knn_baseline(train_feats, train_motion, b[None], reps=1, pooled=False)
    assert pred[0, 0, 0, 0] == 6.0


def test_knn_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="train motion"):
        baselines.knn_baseline(np.zeros((3, 4, 2)), np.zeros((2, 4, 1)), np.zeros((1, 4, 2)), 1)


def test_mean_baseline_repeats_the_mean_and_has_no_diversity():
    mean = np.array([1.0, -2.0, 3.0])
    pred = baselines.mean_baseline(mean, (2, 3, 5, 3))
    assert pred.shape == (2, 3, 5, 3)
    np.testing.assert_array_equal(pred[1, 2, 4], mean)
    assert metrics.div_sample(pred) == 0.0 and metrics.div_k(pred) == 0.0
