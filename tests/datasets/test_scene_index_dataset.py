"""SceneIndexDataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from kedro.io import DatasetError

from audio2photoreal_pipelines.data.scenes import discover_scenes
from audio2photoreal_pipelines.datasets import SceneIndexDataset


def test_index_holds_paths_relative_to_itself_and_frame_counts(scene_dir, monkeypatch):
    monkeypatch.chdir(scene_dir.parent)
    scenes = discover_scenes("person")  # relative to the working directory on purpose
    path = scene_dir.parent / "data" / "02_intermediate" / "person" / "index.json"

    SceneIndexDataset(filepath=str(path)).save(scenes)

    index = json.loads(path.read_text())
    assert sorted(index) == ["scene01", "scene02"]
    entry = index["scene01"]
    assert entry["num_frames"] == 60
    assert entry["body_pose_path"] == f"../../../{scene_dir.name}/scene01_body_pose.npy"
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


def test_a_moved_project_still_finds_its_scenes(tmp_path, scene_dir):
    project = scene_dir.parent
    index = project / "data" / "02_intermediate" / "person" / "index.json"
    SceneIndexDataset(filepath=str(index)).save(discover_scenes(scene_dir))

    moved = tmp_path.parent / f"{tmp_path.name}_moved"
    project.rename(moved)
    loaded = SceneIndexDataset(
        filepath=str(moved / "data" / "02_intermediate" / "person" / "index.json")
    ).load()

    assert loaded["scene01"].body_pose_path == (moved / scene_dir.name / "scene01_body_pose.npy")
    assert loaded["scene01"].num_frames == 60


def test_scenes_outside_the_project_keep_absolute_paths(tmp_path, scene_dir):
    index = tmp_path / "a" / "b" / "c" / "d" / "e" / "index.json"
    SceneIndexDataset(filepath=str(index)).save(discover_scenes(scene_dir))

    entry = json.loads(index.read_text())["scene01"]
    assert entry["body_pose_path"] == str((scene_dir / "scene01_body_pose.npy").resolve())
    assert SceneIndexDataset(filepath=str(index)).load()["scene01"].num_frames == 60
