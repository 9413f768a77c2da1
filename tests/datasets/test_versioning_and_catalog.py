"""All five datasets: versioned saves and construction from catalog config."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io import DataCatalog

from audio2photoreal_pipelines.data.scenes import discover_scenes
from audio2photoreal_pipelines.data.stats import REQUIRED_SHAPES


def _stats():
    return {key: np.ones(shape) for key, shape in REQUIRED_SHAPES.items()}


CASES = {
    "NpyDataset": ("x.npy", lambda _: np.arange(5.0), lambda a, b: np.array_equal(a, b)),
    "NpzDataset": (
        "x.npz",
        lambda _: {"a": np.arange(3)},
        lambda a, b: np.array_equal(a["a"], b["a"]),
    ),
    "WavDataset": (
        "x.wav",
        lambda _: (np.full((10, 2), 0.25, np.float32), 48_000),
        lambda a, b: np.array_equal(a[0], b[0]) and a[1] == b[1],
    ),
    "DataStatsDataset": (
        "x.pth",
        lambda _: _stats(),
        lambda a, b: all(np.array_equal(a[k], b[k]) for k in REQUIRED_SHAPES),
    ),
    "SceneIndexDataset": (
        "x.json",
        discover_scenes,
        lambda a, b: (
            list(a) == list(b) and all(a[k].body_pose_path == b[k].body_pose_path for k in a)
        ),
    ),
}


@pytest.mark.parametrize("type_name", list(CASES))
def test_versioned_catalog_entry_saves_under_a_timestamp(tmp_path, scene_dir, type_name):
    file_name, make, same = CASES[type_name]
    filepath = tmp_path / "out" / file_name
    catalog = DataCatalog.from_config(
        {
            "thing": {
                "type": f"audio2photoreal_pipelines.datasets.{type_name}",
                "filepath": str(filepath),
                "versioned": True,
            }
        }
    )
    data = make(scene_dir)

    catalog.save("thing", data)

    saved = list(filepath.glob(f"*/{file_name}"))
    assert len(saved) == 1 and saved[0].is_file()
    assert saved[0].parent.parent == filepath and filepath.is_dir()
    assert same(catalog.load("thing"), data)
