"""NpzDataset."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io import DatasetError

from audio2photoreal_pipelines.datasets import NestedNpzDataset, NpzDataset


@pytest.mark.parametrize("compressed", [False, True])
def test_round_trip_keeps_every_array(tmp_path, compressed):
    data = {"scene01": np.array([True, False, True]), "scene02": np.ones((4, 6), np.float32)}
    dataset = NpzDataset(filepath=str(tmp_path / "m.npz"), save_args={"compressed": compressed})

    dataset.save(data)
    loaded = dataset.load()

    assert set(loaded) == set(data)
    for key, value in data.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)


def test_compression_shrinks_redundant_data(tmp_path):
    data = {"zeros": np.zeros(100_000, np.float32)}
    plain = NpzDataset(filepath=str(tmp_path / "plain.npz"))
    packed = NpzDataset(filepath=str(tmp_path / "packed.npz"), save_args={"compressed": True})

    plain.save(data)
    packed.save(data)

    assert (tmp_path / "packed.npz").stat().st_size < (tmp_path / "plain.npz").stat().st_size / 10


def test_non_dict_data_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="dict with string keys"):
        NpzDataset(filepath=str(tmp_path / "m.npz")).save([np.ones(2)])


def test_nested_npz_round_trips_per_scene_arrays_without_pickle(tmp_path):
    truth = {
        "scene01": {"lip": np.arange(5, dtype=np.float32), "stroke_frames": np.array([1, 3])},
        "scene02": {"lip": np.ones(2, dtype=np.float32), "stroke_frames": np.array([0])},
    }
    path = tmp_path / "truth.npz"
    NestedNpzDataset(filepath=str(path)).save(truth)

    loaded = NestedNpzDataset(filepath=str(path)).load()
    assert loaded.keys() == truth.keys()
    for scene, arrays in truth.items():
        assert loaded[scene].keys() == arrays.keys()
        for key, array in arrays.items():
            np.testing.assert_array_equal(loaded[scene][key], array)
    with np.load(path, allow_pickle=False) as archive:  # plain arrays: no pickle to execute
        assert sorted(archive.files)[0] == "scene01/lip"


def test_nested_npz_refuses_outer_keys_with_a_slash(tmp_path):
    with pytest.raises(DatasetError, match="without '/'"):
        NestedNpzDataset(filepath=str(tmp_path / "t.npz")).save({"a/b": {"x": np.zeros(1)}})


def test_a_save_that_fails_midway_leaves_the_previous_file_whole(tmp_path):
    path = tmp_path / "features.npz"
    dataset = NpzDataset(filepath=str(path))
    dataset.save({"scene01": np.arange(10.0)})
    before = path.read_bytes()

    # The first array is written, then the object array is refused: a partial archive.
    with pytest.raises(DatasetError):
        dataset.save({"a": np.ones(100_000), "b": np.array([object()], dtype=object)})

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.npz"], "no temporary left"
    np.testing.assert_array_equal(dataset.load()["scene01"], np.arange(10.0))
