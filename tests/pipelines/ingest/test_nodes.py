"""Each ``ingest`` node on small scenes written in the upstream layout."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from audio2photoreal_pipelines.data.acquire import DatasetParams
from audio2photoreal_pipelines.data.normalise import audio_mean_std, normalise
from audio2photoreal_pipelines.data.scenes import SceneValidationError, discover_scenes
from audio2photoreal_pipelines.data.synthetic import GENERATOR_VERSION, SyntheticConfig
from audio2photoreal_pipelines.parameter_block import ParameterError
from audio2photoreal_pipelines.parameters import AudioFeatureParams, SplitParams, TestChunkParams
from audio2photoreal_pipelines.pipelines.ingest import nodes
from tests.data.conftest import write_scenes
from tests.models.test_audio import SMALL_CONV_LAYERS, fairseq_checkpoint, load_vq_wav2vec

SYNTHETIC = {
    "seed": 0,
    "num_scenes": 2,
    "min_seconds": 2,
    "max_seconds": 3,
    "faceless_scene": 1,
    "missing_burst_fraction": 0.02,
}


def _acquire(dataset: dict, synthetic: dict):
    """The node as Kedro runs it: its parameter blocks validated first."""
    return nodes.acquire_scenes(
        DatasetParams.model_validate(dataset), SyntheticConfig.model_validate(synthetic)
    )


def _dataset(root: Path, **overrides) -> dict:
    return {
        "person": "P1",
        "source": "local",
        "root": str(root),
        "url": "http://x/{person}.zip",
        "sha256": None,
        **overrides,
    }


def test_acquire_generates_the_synthetic_person_once_with_its_truth(tmp_path, caplog):
    params = _dataset(tmp_path, source="synthetic", person="SYN9")
    scenes, truth = _acquire(params, SYNTHETIC)
    assert list(scenes) == ["scene01", "scene02"]
    assert set(truth) == {"scene01", "scene02"}
    assert truth["scene02"]["lip"].shape == (scenes["scene02"].num_frames,)
    before = (tmp_path / "SYN9" / "scene01_audio.wav").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        _acquire(params, SYNTHETIC)
    assert "already generated" in caplog.text
    assert (tmp_path / "SYN9" / "scene01_audio.wav").stat().st_mtime_ns == before


def test_acquire_regenerates_a_person_made_by_an_older_generator(tmp_path, caplog):
    params = _dataset(tmp_path, source="synthetic", person="SYN9")
    _acquire(params, SYNTHETIC)
    marker = tmp_path / "SYN9" / ".a2p_synthetic.json"
    recorded = json.loads(marker.read_text())
    assert recorded["generator_version"] == GENERATOR_VERSION
    marker.write_text(json.dumps({**recorded, "generator_version": GENERATOR_VERSION - 1}))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        _acquire(params, SYNTHETIC)
    assert "already generated" not in caplog.text
    assert json.loads(marker.read_text())["generator_version"] == GENERATOR_VERSION


def test_acquire_reads_a_local_folder_without_truth(tmp_path):
    write_scenes(tmp_path / "P1", 2)
    scenes, truth = _acquire(_dataset(tmp_path), SYNTHETIC)
    assert list(scenes) == ["scene01", "scene02"] and truth == {}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"source": "ftp"}, "source: Input should be 'synthetic', 'url' or 'local', got 'ftp'"),
        ({"person": "NOPE"}, "NOPE: no such folder"),
    ],
)
def test_acquire_rejects_bad_dataset_parameters(tmp_path, overrides, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        _acquire(_dataset(tmp_path, **overrides), SYNTHETIC)


def test_acquire_rejects_an_unknown_parameter(tmp_path):
    with pytest.raises(ParameterError, match="colour: unknown key"):
        _acquire(_dataset(tmp_path, colour="red"), SYNTHETIC)


def test_validate_lists_every_bad_file(tmp_path):
    person = write_scenes(tmp_path / "P1", 3)
    np.save(person / "scene01_body_pose.npy", np.zeros((90, 100), np.float32))
    np.save(person / "scene03_missing_face_frames.npy", np.array([5, 500]))
    with pytest.raises(SceneValidationError) as err:
        nodes.validate_scenes(discover_scenes(person))
    assert "scene01_body_pose.npy" in str(err.value)
    assert "scene03_missing_face_frames.npy" in str(err.value)
    assert "2 invalid scene file(s)" in str(err.value)


def test_validate_reports_frames_of_good_scenes(tmp_path):
    scenes, report = nodes.validate_scenes(discover_scenes(write_scenes(tmp_path / "P1", [60, 90])))
    assert report == {
        "scene01": {"frames": 60, "seconds": 2.0},
        "scene02": {"frames": 90, "seconds": 3.0},
    }
    assert list(scenes) == ["scene01", "scene02"]


def test_faceless_scene_is_dropped_with_a_warning(tmp_path, caplog):
    person = write_scenes(tmp_path / "P1", 3)
    np.save(person / "scene02_missing_face_frames.npy", np.arange(90))
    scenes = discover_scenes(person)
    masks = nodes.build_face_masks(scenes)
    assert masks["scene02"].sum() == 0 and masks["scene01"].sum() == 81
    with caplog.at_level(logging.WARNING):
        kept = nodes.drop_faceless_scenes(scenes, masks)
    assert list(kept) == ["scene01", "scene03"]
    assert "scene02" in caplog.text


def test_split_follows_the_upstream_rule(tmp_path):
    scenes = discover_scenes(write_scenes(tmp_path / "P1", 8, num_frames=30))
    splits = nodes.split(scenes, SplitParams(num_val=2, num_test=4))
    assert splits == {
        "train": ["scene01", "scene02"],
        "val": ["scene03", "scene04"],
        "test": ["scene05", "scene06", "scene07", "scene08"],
    }


def test_stats_use_the_train_split_only(tmp_path):
    scenes = discover_scenes(write_scenes(tmp_path / "P1", 3))
    masks = nodes.build_face_masks(scenes)
    stats, summary = nodes.compute_stats(
        scenes, masks, {"train": ["scene01"], "val": [], "test": []}
    )
    body = np.asarray(scenes["scene01"].body_pose, dtype=np.float64)
    np.testing.assert_allclose(stats["pose_mean"], body.mean(0), rtol=1e-6)
    assert "pose_std_flat" in summary


def test_test_chunks_cover_only_test_scenes_and_fail_when_none_fit(tmp_path):
    scenes = discover_scenes(write_scenes(tmp_path / "P1", [120, 90, 65]))
    chunks = nodes.make_test_chunks(
        scenes, {"test": ["scene01", "scene03"]}, TestChunkParams(chunk_frames=30, seed=10)
    )
    assert sorted((c["scene"], c["start"]) for c in chunks) == [
        ("scene01", 0),
        ("scene01", 30),
        ("scene01", 60),
        ("scene01", 90),
        ("scene03", 0),
        ("scene03", 30),
    ]
    with pytest.raises(ValueError, match="No test chunk"):
        nodes.make_test_chunks(scenes, {"test": ["scene02"]}, TestChunkParams(chunk_frames=100))


def test_audio_features_are_computed_per_scene_at_100_hz(tmp_path):
    scenes = discover_scenes(write_scenes(tmp_path / "P1", [30, 45]))
    masks = nodes.build_face_masks(scenes)
    stats, _ = nodes.compute_stats(scenes, masks, {"train": list(scenes), "val": [], "test": []})
    features = nodes.compute_audio_features(
        scenes, stats, None, AudioFeatureParams(n_mels=8, feature_dim=16)
    )
    assert features["scene01"].shape == (30 * 1600 // 480 + 1, 16)
    assert features["scene02"].shape == (45 * 1600 // 480 + 1, 16)
    assert np.isfinite(features["scene02"]).all()


def test_vq_wav2vec_features_have_the_log_mel_rows_and_centred_frames(tmp_path):
    scenes = discover_scenes(write_scenes(tmp_path / "P1", [30, 45]))
    masks = nodes.build_face_masks(scenes)
    stats, _ = nodes.compute_stats(scenes, masks, {"train": list(scenes), "val": [], "test": []})
    checkpoint = tmp_path / "vq-wav2vec.pt"
    torch.save(fairseq_checkpoint(SMALL_CONV_LAYERS), checkpoint)  # 8 channels per audio channel
    log_mel = nodes.compute_audio_features(
        scenes, stats, None, AudioFeatureParams(n_mels=8, feature_dim=16)
    )
    # Built without validation: this small checkpoint is 16 wide, upstream's 1024.
    features = nodes.compute_audio_features(
        scenes,
        stats,
        load_vq_wav2vec(checkpoint),
        AudioFeatureParams.model_construct(n_mels=8, vq_wav2vec_checkpoint=str(checkpoint)),
    )
    for name in scenes:
        assert features[name].shape == (log_mel[name].shape[0], 2 * 8)
    # The frozen extractor sees the normalised waveform; its 98 frames of a 30-frame scene
    # (field 465, hop 160) land one row late on the 101-row log-mel grid, edges repeated.
    scene = scenes["scene01"]
    audio = normalise(scene.read_audio(0, scene.num_frames), *audio_mean_std(stats))
    with torch.inference_mode():
        raw = load_vq_wav2vec(checkpoint)(torch.from_numpy(audio)[None])[0].numpy()
    out = features["scene01"]
    assert raw.shape[0] == 98 and out.shape[0] == 101
    np.testing.assert_allclose(out[1:99], raw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[0], raw[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[99:], raw[[-1, -1]], rtol=1e-5, atol=1e-6)
