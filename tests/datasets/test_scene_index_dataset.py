"""SceneIndexDataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from kedro.io import DatasetError

from audio2photoreal_pipelines.data.scenes import discover_scenes
from audio2photoreal_pipelines.datasets import SceneIndexDataset


def test_index_holds_absolute_paths_and_frame_counts(tmp_path, scene_dir, monkeypatch):
    monkeypatch.chdir(scene_dir.parent)
    scenes = discover_scenes("person")  # relative on purpose
    path = tmp_path / "index.json"

    SceneIndexDataset(filepath=str(path)).save(scenes)

    index = json.loads(path.read_text())
    assert sorted(index) == ["scene01", "scene02"]
    entry = index["scene01"]
    assert entry["num_frames"] == 60
    assert entry["body_pose_path"] == str((scene_dir / "scene01_body_pose.npy").resolve())
    assert set(entry) == {
        "audio_path",
        "body_pose_path",
        "face_expression_path",
        "missing_face_frames_path",
        "num_frames",
    }


def test_load_reopens_memory_mapped_scenes(tmp_path, scene_dir):
    scenes = discover_scenes(scene_dir)
    dataset = SceneIndexDataset(filepath=str(tmp_path / "index.json"))
    dataset.save(scenes)

    loaded = dataset.load()

    assert list(loaded) == list(scenes)
    for name, scene in loaded.items():
        assert isinstance(scene.face_expression, np.memmap)
        np.testing.assert_array_equal(scene.body_pose, scenes[name].body_pose)
        np.testing.assert_array_equal(scene.missing_face_frames, scenes[name].missing_face_frames)
        assert scene.read_audio(0, 2).shape == (3200, 2)


def test_a_scene_that_changed_length_is_reported(tmp_path, scene_dir):
    dataset = SceneIndexDataset(filepath=str(tmp_path / "index.json"))
    dataset.save(discover_scenes(scene_dir))
    np.save(scene_dir / "scene02_body_pose.npy", np.zeros((59, 104), np.float32))

    with pytest.raises(DatasetError, match="scene02_body_pose.npy: has 59 frames.* says 60"):
        dataset.load()
