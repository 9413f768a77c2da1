"""normalise / denormalise for numpy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audio2photoreal_pipelines.data.normalise import (
    audio_mean_std,
    denormalise,
    motion_mean_std,
    normalise,
)


def test_numpy_round_trip_and_standardisation():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(1000, 4))
    mean, std = x.mean(0), x.std(0)

    z = normalise(x, mean, std)

    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-12)
    np.testing.assert_allclose(denormalise(z, mean, std), x, atol=1e-12)


def test_torch_keeps_type_and_dtype():
    x = torch.randn(2, 3, 4)
    mean, std = np.arange(4, dtype=np.float64), np.full(4, 2.0)

    z = normalise(x, mean, std)

    assert isinstance(z, torch.Tensor) and z.dtype == torch.float32
    torch.testing.assert_close(z, (x - torch.arange(4.0)) / 2.0)
    torch.testing.assert_close(denormalise(z, mean, std), x)


def test_zero_std_gives_finite_values():
    x = np.ones((5, 2))

    z = normalise(x, np.ones(2), np.zeros(2))

    assert np.isfinite(z).all() and (z == 0).all()


def test_stats_keys_by_kind():
    stats = {
        k: np.full(1, i)
        for i, k in enumerate(
            ["pose_mean", "pose_std", "code_mean", "code_std", "audio_mean", "audio_std_flat"]
        )
    }

    assert [v[0] for v in motion_mean_std(stats, "body")] == [0, 1]
    assert [v[0] for v in motion_mean_std(stats, "face")] == [2, 3]
    assert [v[0] for v in audio_mean_std(stats)] == [4, 5]
    with pytest.raises(ValueError, match="kind"):
        motion_mean_std(stats, "hands")
