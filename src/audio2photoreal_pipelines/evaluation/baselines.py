"""Reference methods scored in the same table as ours; each returns predictions (R, S, T, F).

- GT: the test motion itself (sanity row, FD ≈ 0).
- Random: each (repetition, sample) is a random train chunk; the R chunks of a sample differ.
- KNN: the R train chunks nearest in audio features, nearest first. Taking the R nearest rather
  than R copies of the nearest gives the baseline a fair, non-zero Div_sample.
  Distance: Euclidean between chunk features mean-pooled over time (``pooled=True``; robust to
  where in the chunk the speech falls), or between the whole frame-by-frame feature sequences.
- Mean pose: the train mean, repeated.
"""

from __future__ import annotations

import numpy as np


def gt_baseline(gt: np.ndarray, reps: int = 1) -> np.ndarray:
    """GT (S, T, F) as predictions (reps, S, T, F)."""
    return np.repeat(gt[None], reps, axis=0)


def random_baseline(
    train_motion_chunks: np.ndarray, num_test: int, reps: int, seed: int = 0
) -> np.ndarray:
    """Random train chunks (M, T, F) -> (reps, num_test, T, F); distinct chunks across reps."""
    m = train_motion_chunks.shape[0]
    if m < reps:
        raise ValueError(f"random_baseline: {m} train chunks, fewer than reps={reps}")
    rng = np.random.default_rng(seed)
    idx = np.stack([rng.choice(m, reps, replace=False) for _ in range(num_test)], axis=1)
    return train_motion_chunks[idx]


def knn_baseline(
    train_audio_feats: np.ndarray,
    train_motion: np.ndarray,
    test_audio_feats: np.ndarray,
    reps: int,
    *,
    pooled: bool = True,
) -> np.ndarray:
    """Motion of the ``reps`` train chunks nearest in audio features: (reps, S, T, F).

    Features: train (M, La, C), test (S, La, C); motion: train (M, T, F).
    """
    m = train_audio_feats.shape[0]
    if train_motion.shape[0] != m:
        raise ValueError(
            f"knn_baseline: {m} train feature chunks but {train_motion.shape[0]} "
            "train motion chunks"
        )
    if m < reps:
        raise ValueError(f"knn_baseline: {m} train chunks, fewer than reps={reps}")
    train_vec, test_vec = (_audio_vector(f, pooled) for f in (train_audio_feats, test_audio_feats))
    if train_vec.shape[1] != test_vec.shape[1]:
        raise ValueError(
            f"knn_baseline: train features {train_audio_feats.shape[1:]} and test "
            f"features {test_audio_feats.shape[1:]} differ"
        )
    dist = ((test_vec[:, None, :] - train_vec[None, :, :]) ** 2).sum(axis=-1)
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :reps]
    return train_motion[nearest.T]


def mean_baseline(mean: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The train mean pose (F,) repeated to ``shape`` (R, S, T, F)."""
    return np.broadcast_to(np.asarray(mean), shape).copy()


def _audio_vector(feats: np.ndarray, pooled: bool) -> np.ndarray:
    """One vector per chunk (N, La, C) -> (N, C) mean over time, or (N, La * C) flattened.

    The mean accumulates in float64 without a float64 copy of the features: the default
    person's 206 train chunks of (2000, 80) made that copy 250 MB of evaluate's peak memory.
    """
    feats = np.asarray(feats)
    if pooled:
        return feats.mean(axis=1, dtype=np.float64)
    return feats.reshape(feats.shape[0], -1).astype(np.float64)
