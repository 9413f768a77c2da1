"""UpstreamResultsDataset: upstream's results.npy, and only that."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest
from kedro.io import DatasetError

from audio2photoreal_pipelines.datasets import UpstreamResultsDataset


def _results(n: int = 4, frames: int = 60, dim: int = 104) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "motions": rng.normal(size=(n, dim, 1, frames)).astype(np.float32),
        "audio": rng.normal(size=(n, frames * 1600, 2)).astype(np.float32),
        "gt": rng.normal(size=(n, dim, 1, frames)).astype(np.float32),
        "lengths": np.full(n, frames, dtype=np.int64),
        "keyframes": rng.normal(size=(n, frames // 30, dim)).astype(np.float32),
    }


def test_round_trip_keeps_every_array(tmp_path):
    data = _results()
    dataset = UpstreamResultsDataset(filepath=str(tmp_path / "results.npy"))

    dataset.save(data)
    loaded = dataset.load()

    assert set(loaded) == set(data)
    for key, value in data.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)


def test_the_file_reads_as_upstream_reads_it(tmp_path):
    path = tmp_path / "results.npy"
    UpstreamResultsDataset(filepath=str(path)).save(_results())

    # Upstream's renderer: np.load(path, allow_pickle=True).item()
    loaded = np.load(path, allow_pickle=True).item()

    assert loaded["motions"].shape == (4, 104, 1, 60)


def test_a_file_upstream_wrote_with_np_save_loads(tmp_path):
    path = tmp_path / "results.npy"
    data = _results()
    np.save(path, data, allow_pickle=True)

    loaded = UpstreamResultsDataset(filepath=str(path)).load()

    np.testing.assert_array_equal(loaded["audio"], data["audio"])


def test_save_writes_the_arrays_without_copying_them(tmp_path):
    data = _results(n=4, frames=600)  # 30 MB of audio
    dataset = UpstreamResultsDataset(filepath=str(tmp_path / "results.npy"))

    tracemalloc.start()
    try:
        dataset.save(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < data["audio"].nbytes / 4  # np.save's protocol 4 holds a copy of each array
    np.testing.assert_array_equal(dataset.load()["audio"], data["audio"])


def test_save_refuses_a_dict_missing_upstream_keys(tmp_path):
    data = _results()
    del data["keyframes"]

    with pytest.raises(DatasetError, match="keyframes"):
        UpstreamResultsDataset(filepath=str(tmp_path / "results.npy")).save(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": np.zeros(3)}, "not a results.npy with keys"),
        ({"lengths": np.array([{"frames": 60}], dtype=object)}, "must be numeric arrays"),
        ({"lengths": [60, 60, 60, 60]}, "must be numeric arrays"),
    ],
)
def test_load_refuses_extra_keys_and_non_numeric_values(tmp_path, change, message):
    path = tmp_path / "results.npy"
    np.save(path, {**_results(), **change}, allow_pickle=True)

    with pytest.raises(DatasetError, match=message):
        UpstreamResultsDataset(filepath=str(path)).load()


def test_load_never_runs_code_a_file_pickles(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "results.npy"
    np.save(path, np.array(Exploit(), dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match="refusing to unpickle"):
        UpstreamResultsDataset(filepath=str(path)).load()
    assert not marker.exists()
