"""DataStatsDataset."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io import DatasetError

from audio2photoreal_pipelines.data.stats import REQUIRED_SHAPES, load_data_stats
from audio2photoreal_pipelines.datasets import DataStatsDataset


def _stats():
    rng = np.random.default_rng(0)
    return {
        key: rng.uniform(0.1, 1, shape).astype(
            np.float32 if key.startswith("audio") else np.float64
        )
        for key, shape in REQUIRED_SHAPES.items()
    }


def test_round_trip_in_the_upstream_format(tmp_path):
    path = tmp_path / "data_stats.pth"
    stats = _stats()

    DataStatsDataset(filepath=str(path)).save(stats)
    loaded = DataStatsDataset(filepath=str(path)).load()

    assert set(loaded) == set(stats)
    for key, value in stats.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)
    np.testing.assert_array_equal(load_data_stats(path)["code_std"], stats["code_std"])


def test_loads_an_upstream_file_with_its_extra_keys(upstream_stats_dir):
    stats = DataStatsDataset(filepath=str(upstream_stats_dir / "PXB184" / "data_stats.pth")).load()

    assert stats["facekp_mean"].shape == (274, 3)
    assert stats["pose_std_flat"][0] == pytest.approx(2.946, abs=1e-3)


def test_incomplete_stats_are_refused_on_save(tmp_path):
    stats = _stats()
    del stats["audio_std_flat"]

    with pytest.raises(DatasetError, match="audio_std_flat"):
        DataStatsDataset(filepath=str(tmp_path / "s.pth")).save(stats)
