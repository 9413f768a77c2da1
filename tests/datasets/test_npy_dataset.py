"""NpyDataset."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io import DatasetError

from audio2photoreal_pipelines.datasets import NpyDataset


def test_round_trip_keeps_values_shape_and_dtype(tmp_path):
    data = np.arange(12, dtype=np.int16).reshape(3, 4)
    dataset = NpyDataset(filepath=str(tmp_path / "sub" / "a.npy"))

    dataset.save(data)
    loaded = dataset.load()

    assert loaded.dtype == np.int16
    np.testing.assert_array_equal(loaded, data)
    assert dataset.exists()


def test_object_arrays_are_refused(tmp_path):
    dataset = NpyDataset(filepath=str(tmp_path / "a.npy"))

    with pytest.raises(DatasetError, match="pickle"):
        dataset.save(np.array([{"a": 1}], dtype=object))
