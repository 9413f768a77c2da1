"""WindowSampler and fixed_windows: batch layout, normalisation, uniform coverage, sharding."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from audio2photoreal_pipelines.data.normalise import denormalise, normalise
from audio2photoreal_pipelines.data.scenes import discover_scenes, face_valid_mask
from audio2photoreal_pipelines.data.splits import chunk_test_scenes
from audio2photoreal_pipelines.data.windows import WindowSampler, feature_index, fixed_windows

BASE_KEYS = {"motion", "length_mask", "face_valid", "keyframes", "keyframe_mask"}
FEATURE_DIM = 6


def _features(scenes):
    """Fake cached features whose rows encode (scene number, feature index)."""
    out = {}
    for number, (name, scene) in enumerate(scenes.items()):
        rows = scene.num_frames * 1600 // 480 + 1
        column = np.arange(rows, dtype=np.float32)[:, None] + 1000 * number
        out[name] = np.repeat(column, FEATURE_DIM, axis=1)
    return out


def _sampler(tiny_person, *, features=False, **kwargs):
    scenes, masks, stats = tiny_person
    options = {"kind": "face", "min_frames": 40, "max_frames": 60, **kwargs}
    feats = _features(scenes) if features else None
    return WindowSampler(scenes, masks, stats, feats, list(scenes), **options)


def _seed(value):
    return torch.Generator().manual_seed(value)


def test_face_batch_has_the_documented_keys_and_shapes(tiny_person):
    sampler = _sampler(tiny_person, features=True, include_audio=True)

    batch = sampler.sample(5, _seed(0))

    assert set(batch) == BASE_KEYS | {"audio", "audio_features"}
    assert batch["motion"].shape == (5, 60, 256) and batch["motion"].dtype == torch.float32
    assert batch["length_mask"].shape == (5, 60) and batch["length_mask"].dtype == torch.bool
    assert batch["face_valid"].shape == (5, 60) and batch["face_valid"].dtype == torch.bool
    assert batch["keyframes"].shape == (5, 2, 256)
    assert batch["keyframe_mask"].shape == (5, 2)
    assert batch["audio"].shape == (5, 60 * 1600, 2)
    assert batch["audio_features"].shape == (5, 200, FEATURE_DIM)
    assert sampler.audio_feature_width == FEATURE_DIM


def test_body_batch_without_audio_has_no_audio_keys(tiny_person):
    sampler = _sampler(tiny_person, kind="body", min_frames=30, max_frames=30)

    batch = sampler.sample(3, _seed(0))

    assert set(batch) == BASE_KEYS
    assert batch["motion"].shape == (3, 30, 104)
    assert batch["length_mask"].all() and batch["face_valid"].all()
    assert sampler.audio_feature_width is None


def test_lengths_span_min_to_max_and_padding_is_zero(tiny_person):
    sampler = _sampler(tiny_person)
    windows = sampler.draw(400, _seed(1))
    batch = sampler.sample(400, _seed(1))

    lengths = batch["length_mask"].sum(1)

    assert lengths.tolist() == [length for _, _, length in windows]
    assert lengths.min() == 40 and lengths.max() == 60
    assert (batch["length_mask"][:, :40]).all()
    padded = ~batch["length_mask"]
    assert (batch["motion"][padded] == 0).all() and not batch["face_valid"][padded].any()


def test_motion_is_the_normalised_window_with_missing_faces_zeroed(tiny_person):
    scenes, masks, stats = tiny_person
    sampler = _sampler(tiny_person)
    windows = sampler.draw(8, _seed(2))
    batch = sampler.sample(8, _seed(2))

    for i, (name, start, length) in enumerate(windows):
        raw = np.asarray(scenes[name].face_expression[start : start + length], dtype=np.float64)
        present = masks[name][start : start + length]
        expected = normalise(raw, stats["code_mean"], stats["code_std"]) * present[:, None]
        np.testing.assert_allclose(batch["motion"][i, :length].numpy(), expected, atol=1e-5)
        assert batch["face_valid"][i, :length].numpy().tolist() == present.tolist()
    assert not batch["face_valid"].all()  # some missing frames were drawn


def test_denormalising_valid_frames_gives_back_the_raw_motion(tiny_person):
    scenes, _, stats = tiny_person
    sampler = _sampler(tiny_person, kind="body")
    ((name, start, length),) = sampler.draw(1, _seed(3))
    batch = sampler.sample(1, _seed(3))

    restored = denormalise(batch["motion"][0, :length], stats["pose_mean"], stats["pose_std"])

    raw = torch.from_numpy(np.asarray(scenes[name].body_pose[start : start + length]))
    torch.testing.assert_close(restored, raw, rtol=1e-5, atol=1e-4)


def test_audio_is_normalised_with_the_pooled_std(tiny_person):
    scenes, _, stats = tiny_person
    sampler = _sampler(tiny_person, include_audio=True)
    ((name, start, length),) = sampler.draw(1, _seed(4))
    batch = sampler.sample(1, _seed(4))

    raw = scenes[name].read_audio(start, length)
    expected = (raw - stats["audio_mean"]) / stats["audio_std_flat"]

    np.testing.assert_allclose(batch["audio"][0, : length * 1600].numpy(), expected, rtol=1e-5)
    assert (batch["audio"][0, length * 1600 :] == 0).all()


def test_audio_features_are_sliced_at_round_frame_times_ten_thirds(tiny_person):
    scenes, _, _ = tiny_person
    sampler = _sampler(tiny_person, features=True)
    windows = sampler.draw(20, _seed(5))
    batch = sampler.sample(20, _seed(5))

    for i, (name, start, length) in enumerate(windows):
        number = list(scenes).index(name)
        count = round(length * 10 / 3)
        rows = batch["audio_features"][i, :, 0].numpy()
        first = round(start * 10 / 3)
        np.testing.assert_array_equal(rows[:count], np.arange(first, first + count) + 1000 * number)
        assert (rows[count:] == 0).all()


def test_feature_index_is_round_of_ten_thirds():
    assert [feature_index(t) for t in range(2000)] == [round(t * 10 / 3) for t in range(2000)]


def test_keyframes_are_every_thirtieth_motion_frame(tiny_person):
    sampler = _sampler(tiny_person, min_frames=35, max_frames=95, kind="body")

    batch = sampler.sample(16, _seed(6))

    torch.testing.assert_close(batch["keyframes"], batch["motion"][:, ::30][:, :3])
    expected_mask = torch.arange(3)[None] * 30 < batch["length_mask"].sum(1, keepdim=True)
    assert torch.equal(batch["keyframe_mask"], expected_mask)


def test_same_seed_same_batch_other_seed_other_batch(tiny_person):
    sampler = _sampler(tiny_person, include_audio=True)

    first, again, other = (sampler.sample(4, _seed(s)) for s in (7, 7, 8))

    for key in first:
        assert torch.equal(first[key], again[key]), key
    assert not torch.equal(first["motion"], other["motion"])


def test_generator_state_restores_the_stream(tiny_person):
    sampler = _sampler(tiny_person)
    generator = _seed(9)
    sampler.sample(2, generator)
    state = generator.get_state()
    expected = sampler.draw(6, generator)

    generator.set_state(state)

    assert sampler.draw(6, generator) == expected


def test_frames_are_covered_uniformly_across_scene_lengths(make_scenes):
    scenes = discover_scenes(make_scenes([120, 240, 480]))
    masks = {name: face_valid_mask(scene) for name, scene in scenes.items()}
    stats = {"code_mean": np.zeros(256), "code_std": np.ones(256)}
    stats |= {"audio_mean": np.zeros(2), "audio_std_flat": np.ones(1)}
    sampler = WindowSampler(
        scenes, masks, stats, None, list(scenes), kind="face", min_frames=30, max_frames=30
    )
    coverage = {name: np.zeros(scene.num_frames) for name, scene in scenes.items()}

    for name, start, length in sampler.draw(30_000, _seed(10)):
        coverage[name][start : start + length] += 1

    # Interior frames are reachable from all 30 starts, so every scene should see the same rate.
    interior = {name: c[30:-30].mean() for name, c in coverage.items()}
    expected = 30_000 * 30 / sampler.num_windows
    for name, rate in interior.items():
        assert rate == pytest.approx(expected, rel=0.08), name


def test_shards_are_disjoint_and_together_cover_every_window(tiny_person):
    scenes = tiny_person[0]
    drawn = []
    for rank in range(3):
        sampler = _sampler(tiny_person, min_frames=60, rank=rank, world_size=3)
        drawn.append({(n, s) for n, s, _ in sampler.draw(3000, _seed(rank))})

    assert not (drawn[0] & drawn[1] or drawn[0] & drawn[2] or drawn[1] & drawn[2])
    every = {(n, s) for n, scene in scenes.items() for s in range(scene.num_frames - 60 + 1)}
    assert drawn[0] | drawn[1] | drawn[2] == every


def test_short_scenes_are_skipped_with_a_warning(tiny_person, caplog):
    with caplog.at_level(logging.WARNING):
        sampler = _sampler(tiny_person, min_frames=100, max_frames=130)

    assert sampler.names == ["scene02", "scene04"]
    assert "scene01: 120 frames < max_frames 130" in caplog.text
    with pytest.raises(ValueError, match="no scene .* max_frames=500"):
        _sampler(tiny_person, min_frames=100, max_frames=500)


def test_bad_arguments_are_refused(tiny_person):
    with pytest.raises(ValueError, match="min_frames <= max_frames"):
        _sampler(tiny_person, min_frames=70, max_frames=60)
    with pytest.raises(ValueError, match="rank"):
        _sampler(tiny_person, rank=2, world_size=2)


def test_fixed_windows_build_test_chunks(tiny_person):
    scenes, masks, stats = tiny_person
    chunks = chunk_test_scenes(
        {n: s.num_frames for n, s in scenes.items()}, ["scene02", "scene04"], chunk_frames=50
    )

    batch = fixed_windows(scenes, masks, stats, _features(scenes), chunks, kind="body")

    assert set(batch) == BASE_KEYS | {"audio", "audio_features"}
    assert batch["motion"].shape == (len(chunks), 50, 104) and batch["length_mask"].all()
    first = chunks[0]
    raw = np.asarray(scenes[first["scene"]].body_pose[first["start"] : first["start"] + 50])
    expected = normalise(raw.astype(np.float64), stats["pose_mean"], stats["pose_std"])
    np.testing.assert_allclose(batch["motion"][0].numpy(), expected, atol=1e-5)
    with pytest.raises(ValueError, match="outside"):
        fixed_windows(
            scenes,
            masks,
            stats,
            None,
            [{"scene": "scene03", "start": 60, "length": 50}],
            kind="body",
        )
