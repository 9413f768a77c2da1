"""data_stats: streaming computation, the upstream .pth format, and its safe loading."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch

from audio2photoreal_pipelines.data import stats as stats_module
from audio2photoreal_pipelines.data.scenes import discover_scenes, face_valid_mask
from audio2photoreal_pipelines.data.stats import (
    REQUIRED_SHAPES,
    DataStatsError,
    compute_data_stats,
    load_data_stats,
    pooled_std,
    save_data_stats,
    summarise_stats,
)

PEOPLE = ["PXB184", "RLW104", "TXB805", "GQS883"]
CORE_DTYPES = {
    **{k: np.float64 for k in REQUIRED_SHAPES if not k.startswith("audio")},
    **{k: np.float32 for k in REQUIRED_SHAPES if k.startswith("audio")},
}


@pytest.fixture
def person(make_scenes):
    scenes = discover_scenes(make_scenes([60, 75, 90, 45]))
    masks = {name: face_valid_mask(scene) for name, scene in scenes.items()}
    return scenes, masks


def _stack(scenes, names, attr, masks=None):
    parts = []
    for name in names:
        values = np.asarray(getattr(scenes[name], attr), dtype=np.float64)
        parts.append(values[masks[name]] if masks is not None else values)
    return np.concatenate(parts)


def test_upstream_files_load_with_the_core_keys(upstream_stats_dir):
    for person_id in PEOPLE:
        stats = load_data_stats(upstream_stats_dir / person_id / "data_stats.pth")

        for key, shape in REQUIRED_SHAPES.items():
            assert stats[key].shape == shape, (person_id, key)
            assert stats[key].dtype == CORE_DTYPES[key], (person_id, key)


def test_upstream_std_flat_is_the_pooled_std(upstream_stats_dir):
    for person_id in PEOPLE:
        stats = load_data_stats(upstream_stats_dir / person_id / "data_stats.pth")

        for prefix in ("pose", "code", "audio"):
            expected = pooled_std(stats[f"{prefix}_mean"], stats[f"{prefix}_std"])
            np.testing.assert_allclose(expected, stats[f"{prefix}_std_flat"], rtol=5e-4)


def test_saved_stats_match_the_upstream_format(person, tmp_path, upstream_stats_dir):
    scenes, masks = person
    path = tmp_path / "data_stats.pth"

    save_data_stats(compute_data_stats(scenes, masks, ["scene01", "scene02"]), path)
    ours = load_data_stats(path)
    real = load_data_stats(upstream_stats_dir / "GQS883" / "data_stats.pth")

    assert set(ours) == set(real) == set(REQUIRED_SHAPES)
    for key in REQUIRED_SHAPES:
        assert (ours[key].shape, ours[key].dtype) == (real[key].shape, real[key].dtype), key
    assert zipfile.is_zipfile(path)


def test_compute_matches_numpy_on_train_frames_without_missing_faces(person):
    scenes, masks = person
    train = ["scene01", "scene03"]

    stats = compute_data_stats(scenes, masks, train)

    body = _stack(scenes, train, "body_pose")
    face = _stack(scenes, train, "face_expression", masks)
    audio = np.concatenate([sf.read(scenes[n].audio_path, dtype="float64")[0] for n in train])
    np.testing.assert_allclose(stats["pose_mean"], body.mean(0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(stats["pose_std"], body.std(0), rtol=1e-10)
    np.testing.assert_allclose(stats["pose_std_flat"], [body.std()], rtol=1e-10)
    np.testing.assert_allclose(stats["code_mean"], face.mean(0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(stats["code_std"], face.std(0), rtol=1e-10)
    np.testing.assert_allclose(stats["code_std_flat"], [face.std()], rtol=1e-10)
    np.testing.assert_allclose(stats["audio_mean"], audio.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats["audio_std"], audio.std(0), rtol=1e-5)
    np.testing.assert_allclose(stats["audio_std_flat"], [audio.std()], rtol=1e-5)
    assert stats["code_mean"].max() < 5  # the garbage at missing frames (50) was left out


def test_compute_ignores_scenes_outside_train(person):
    scenes, masks = person

    only_first = compute_data_stats(scenes, masks, ["scene01"])
    with_second = compute_data_stats(scenes, masks, ["scene01", "scene02"])

    body = np.asarray(scenes["scene01"].body_pose, dtype=np.float64)
    np.testing.assert_allclose(only_first["pose_mean"], body.mean(0), rtol=1e-10, atol=1e-10)
    assert not np.allclose(only_first["pose_mean"], with_second["pose_mean"])


def test_small_chunks_give_the_same_stats(person, monkeypatch):
    scenes, masks = person
    whole = compute_data_stats(scenes, masks, list(scenes))
    monkeypatch.setattr(stats_module, "_MOTION_CHUNK_ROWS", 7)
    monkeypatch.setattr(stats_module, "_AUDIO_BLOCK", 1000)

    chunked = compute_data_stats(scenes, masks, list(scenes))

    for key in REQUIRED_SHAPES:
        np.testing.assert_allclose(chunked[key], whole[key], rtol=1e-6, err_msg=key)


def test_compute_rejects_an_all_missing_face(person):
    scenes, masks = person
    masks = {**masks, "scene01": np.zeros_like(masks["scene01"])}

    with pytest.raises(ValueError, match="every face frame"):
        compute_data_stats(scenes, masks, ["scene01"])


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_stats.pth"
    torch.save({"pose_mean": _RunsShell(marker)}, path)

    with pytest.raises(DataStatsError, match="evil_stats.pth.*forbidden.*system"):
        load_data_stats(path)
    assert not marker.exists()


def test_a_file_that_is_not_an_archive_is_refused(tmp_path):
    path = tmp_path / "not_stats.pth"
    path.write_bytes(b"this is not a torch archive" * 10)

    with pytest.raises(DataStatsError, match="not_stats.pth: not a readable"):
        load_data_stats(path)
    with pytest.raises(DataStatsError, match="does not exist"):
        load_data_stats(tmp_path / "absent.pth")


def test_missing_keys_and_wrong_shapes_are_named(person, tmp_path):
    scenes, masks = person
    stats = compute_data_stats(scenes, masks, ["scene01"])
    buffer = io.BytesIO()

    torch.save({k: v for k, v in stats.items() if k != "code_std"}, buffer)
    (tmp_path / "a.pth").write_bytes(buffer.getvalue())
    with pytest.raises(DataStatsError, match=r"a.pth: missing key\(s\) \['code_std'\]"):
        load_data_stats(tmp_path / "a.pth")

    with pytest.raises(DataStatsError, match=r"pose_std expected shape \(104,\)"):
        save_data_stats({**stats, "pose_std": np.ones(3)}, tmp_path / "b.pth")
    assert not (tmp_path / "b.pth").exists()


def test_save_replaces_atomically_and_leaves_no_temp_file(person, tmp_path):
    scenes, masks = person
    path = tmp_path / "out" / "data_stats.pth"
    save_data_stats(compute_data_stats(scenes, masks, ["scene01"]), path)

    newer = compute_data_stats(scenes, masks, ["scene02"])
    save_data_stats(newer, path)

    np.testing.assert_array_equal(load_data_stats(path)["pose_mean"], newer["pose_mean"])
    assert [p.name for p in path.parent.iterdir()] == ["data_stats.pth"]


def test_summary_lists_keys_flat_stds_and_splits(person):
    scenes, masks = person
    stats = compute_data_stats(scenes, masks, ["scene01"])
    splits = {"train": ["scene01"], "val": ["scene02"], "test": ["scene03", "scene04"]}

    text = summarise_stats(stats, splits=splits)

    for key in REQUIRED_SHAPES:
        assert f"| {key} |" in text
    assert f"{stats['pose_std_flat'][0]:.4g}" in text
    assert "| test | 2 | scene03, scene04 |" in text
