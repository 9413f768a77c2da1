"""Scene discovery, memory-mapped access and validation."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import soundfile as sf

from audio2photoreal_pipelines.data import scenes as scenes_module
from audio2photoreal_pipelines.data.scenes import (
    SceneValidationError,
    check_person,
    discover_scenes,
    face_valid_mask,
    validate_scene,
)


def test_discover_sorts_scenes_and_ignores_extra_files(make_scenes):
    person = make_scenes(3)
    (person / "scene02_synthetic_truth.npz").write_bytes(b"x")
    (person / "data_stats.pth").write_bytes(b"x")
    (person / "README.txt").write_text("x")

    scenes = discover_scenes(person)

    assert list(scenes) == ["scene01", "scene02", "scene03"]
    assert all(s.name == n for n, s in scenes.items())


def test_scene_motion_is_memory_mapped_read_only(scene_dir):
    scene = discover_scenes(scene_dir)["scene01"]

    assert isinstance(scene.body_pose, np.memmap)
    assert isinstance(scene.face_expression, np.memmap)
    assert not scene.body_pose.flags.writeable
    assert scene.num_frames == 90
    assert scene.body_pose.shape == (90, 104) and scene.face_expression.shape == (90, 256)


def test_discover_names_scene_and_missing_file(scene_dir):
    (scene_dir / "scene02_face_expression.npy").unlink()

    with pytest.raises(SceneValidationError, match="scene02.*scene02_face_expression.npy"):
        discover_scenes(scene_dir)


def test_discover_rejects_empty_and_absent_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no sceneXX"):
        discover_scenes(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover_scenes(tmp_path / "absent")


def test_read_audio_returns_exactly_the_frame_slice(scene_dir):
    scene = discover_scenes(scene_dir)["scene02"]
    full, _ = sf.read(scene.audio_path, dtype="float32", always_2d=True)

    part = scene.read_audio(10, 5)

    assert part.shape == (5 * 1600, 2) and part.dtype == np.float32
    np.testing.assert_array_equal(part, full[10 * 1600 : 15 * 1600])
    with pytest.raises(ValueError, match="outside"):
        scene.read_audio(88, 5)


def test_valid_scenes_pass_validation(scene_dir):
    for scene in discover_scenes(scene_dir).values():
        assert validate_scene(scene) is None


def test_face_valid_mask_is_false_exactly_at_missing_frames(scene_dir):
    scene = discover_scenes(scene_dir)["scene01"]

    mask = face_valid_mask(scene)

    assert mask.shape == (90,) and mask.dtype == bool
    assert set(np.flatnonzero(~mask)) == set(scene.missing_face_frames.tolist())


def test_copies_share_and_pickles_reopen_the_scene(scene_dir):
    scene = discover_scenes(scene_dir)["scene01"]

    assert copy.deepcopy(scene) is scene
    reopened = pickle.loads(pickle.dumps(scene))
    assert isinstance(reopened.body_pose, np.memmap)
    np.testing.assert_array_equal(reopened.face_expression, scene.face_expression)
    assert len(pickle.dumps(scene)) < 2000  # paths, not arrays


def _rewrite(path, array):
    np.save(path, array)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (
            lambda d: _rewrite(d / "scene03_body_pose.npy", np.zeros((90, 100), np.float32)),
            r"^scene03_body_pose\.npy: expected shape \(T, 104\), got \(90, 100\)",
        ),
        (
            lambda d: _rewrite(d / "scene03_face_expression.npy", np.zeros((90,), np.float32)),
            r"^scene03_face_expression\.npy: expected shape \(T, 256\), got \(90,\)",
        ),
        (
            lambda d: _rewrite(d / "scene03_face_expression.npy", np.zeros((89, 256), np.float32)),
            r"^scene03_face_expression\.npy: has 89 frames but scene03_body_pose\.npy has 90",
        ),
        (
            lambda d: sf.write(d / "scene03_audio.wav", np.zeros((90 * 1600, 2)), 16000),
            r"^scene03_audio\.wav: expected 48000 Hz, got 16000 Hz",
        ),
        (
            lambda d: sf.write(d / "scene03_audio.wav", np.zeros((90 * 1600, 1)), 48000),
            r"^scene03_audio\.wav: expected 2 channels, got 1",
        ),
        (
            lambda d: sf.write(d / "scene03_audio.wav", np.zeros((90 * 1600 - 7, 2)), 48000),
            r"^scene03_audio\.wav: expected 144000 samples .* got 143993",
        ),
        (
            lambda d: (d / "scene03_audio.wav").write_bytes(b"not a wav file" * 10),
            r"^scene03_audio\.wav: unreadable audio file",
        ),
        (
            lambda d: _rewrite(d / "scene03_missing_face_frames.npy", np.array([3, 90])),
            r"^scene03_missing_face_frames\.npy: indices must lie in \[0, 90\)",
        ),
        (
            lambda d: _rewrite(d / "scene03_missing_face_frames.npy", np.array([1.0, 2.0])),
            r"^scene03_missing_face_frames\.npy: expected integer indices, got float64",
        ),
    ],
    ids=[
        "body-dim",
        "face-1d",
        "face-length",
        "sample-rate",
        "channels",
        "audio-length",
        "corrupt-wav",
        "missing-range",
        "missing-dtype",
    ],
)
def test_validation_names_the_file_and_problem(scene_dir, corrupt, message):
    corrupt(scene_dir)
    scene = discover_scenes(scene_dir)["scene03"]

    with pytest.raises(SceneValidationError, match=message):
        validate_scene(scene)


def test_non_finite_values_are_found_past_the_first_chunk(scene_dir, monkeypatch):
    monkeypatch.setattr(scenes_module, "_FINITE_CHUNK_ROWS", 16)
    face = np.load(scene_dir / "scene01_face_expression.npy")
    face[57, 3] = np.nan
    np.save(scene_dir / "scene01_face_expression.npy", face)

    with pytest.raises(
        SceneValidationError, match="^scene01_face_expression.npy: non-finite .* 57"
    ):
        validate_scene(discover_scenes(scene_dir)["scene01"])


def test_corrupt_npy_is_reported_as_the_file(scene_dir):
    (scene_dir / "scene02_body_pose.npy").write_bytes(b"\x00garbage" * 20)

    with pytest.raises(SceneValidationError, match=r"^scene02_body_pose\.npy: unreadable \.npy"):
        discover_scenes(scene_dir)


def test_truncated_npy_is_reported_as_the_file(scene_dir):
    path = scene_dir / "scene01_face_expression.npy"
    path.write_bytes(path.read_bytes()[:-1000])

    with pytest.raises(SceneValidationError, match=r"^scene01_face_expression\.npy: unreadable"):
        discover_scenes(scene_dir)


def test_pickled_npy_is_refused(scene_dir):
    np.save(scene_dir / "scene01_missing_face_frames.npy", np.array([{"a": 1}]), allow_pickle=True)

    with pytest.raises(SceneValidationError, match=r"^scene01_missing_face_frames\.npy"):
        discover_scenes(scene_dir)


def test_scenes_of_another_person_are_refused_naming_the_file(make_scenes):
    scenes = discover_scenes(make_scenes(2))  # in a folder named person0
    check_person(scenes, "person0")
    with pytest.raises(ValueError, match=r"scene01_body_pose.npy: .* belongs to person 'person0'"):
        check_person(scenes, "SYN001")
