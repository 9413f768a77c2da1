"""Tests of the deterministic synthetic person."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio2photoreal_pipelines.data.synthetic import (
    SyntheticConfig,
    generate_person,
    load_scales,
    write_npz_atomic,
)
from tests.conftest import load_script

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = REPO / ".." / "shared" / "upstream-data"
TINY = SyntheticConfig(num_scenes=2, min_seconds=3, max_seconds=4, faceless_scene=None)
SMALL = SyntheticConfig(num_scenes=4, min_seconds=20, max_seconds=30, faceless_scene=2)
SUFFIXES = (
    "audio.wav",
    "body_pose.npy",
    "face_expression.npy",
    "missing_face_frames.npy",
    "synthetic_truth.npz",
)


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _load(folder: Path, name: str) -> dict[str, np.ndarray]:
    audio, rate = sf.read(folder / f"{name}_audio.wav")
    assert rate == 48_000
    truth = np.load(folder / f"{name}_synthetic_truth.npz")
    return {
        "audio": audio,
        "pose": np.load(folder / f"{name}_body_pose.npy"),
        "face": np.load(folder / f"{name}_face_expression.npy"),
        "missing": np.load(folder / f"{name}_missing_face_frames.npy"),
        **{key: truth[key] for key in truth.files},
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("SYN001")
    return folder, generate_person(folder, SMALL)


def _valid_scenes(small: tuple[Path, list[str]]) -> list[dict[str, np.ndarray]]:
    folder, names = small
    return [_load(folder, n) for i, n in enumerate(names) if i + 1 != SMALL.faceless_scene]


def test_writes_upstream_layout_with_shapes_and_dtypes(tmp_path: Path) -> None:
    names = generate_person(tmp_path, TINY)
    assert names == ["scene01", "scene02"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{n}_{s}" for n in names for s in SUFFIXES
    )
    for name in names:
        info = sf.info(tmp_path / f"{name}_audio.wav")
        scene = _load(tmp_path, name)
        frames = len(scene["pose"])
        assert 3 * 30 <= frames <= 4 * 30
        assert (info.samplerate, info.channels, info.subtype) == (48_000, 2, "PCM_16")
        assert info.frames == 1600 * frames
        assert scene["pose"].shape == (frames, 104) and scene["pose"].dtype == np.float32
        assert scene["face"].shape == (frames, 256) and scene["face"].dtype == np.float32
        assert scene["missing"].ndim == 1 and scene["missing"].dtype == np.int64
        assert scene["lip"].shape == (frames,) and scene["lip"].dtype == np.float32
        assert scene["partner_active"].shape == (frames,) and scene["partner_active"].dtype == bool
        assert scene["onset_frames"].dtype == np.int64
        np.testing.assert_array_equal(
            scene["onset_frames"], np.floor(scene["onset_seconds"] * 30).astype(np.int64)
        )


def test_same_config_gives_identical_bytes_and_new_seed_differs(tmp_path: Path) -> None:
    generate_person(tmp_path / "a", TINY)
    generate_person(tmp_path / "b", TINY)
    generate_person(tmp_path / "c", TINY.model_copy(update=dict(seed=1)))
    first = _hashes(tmp_path / "a")
    assert first == _hashes(tmp_path / "b")
    other = _hashes(tmp_path / "c")
    assert all(first[name] != other.get(name) for name in first if name.endswith(".wav"))


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "x.npz"
    with pytest.raises(ValueError):
        write_npz_atomic(target, {"ok": np.zeros(3), "bad": np.array([object()])})
    assert list(tmp_path.iterdir()) == []


def test_rejects_faceless_scene_outside_the_person() -> None:
    with pytest.raises(ValueError, match="faceless_scene"):
        SyntheticConfig(num_scenes=3, faceless_scene=4)


def test_missing_frames_come_in_short_bursts_and_one_scene_is_faceless(small) -> None:
    folder, names = small
    for index, name in enumerate(names):
        scene = _load(folder, name)
        frames = len(scene["pose"])
        if index + 1 == SMALL.faceless_scene:
            np.testing.assert_array_equal(scene["missing"], np.arange(frames))
            continue
        assert 0.01 <= len(scene["missing"]) / frames <= 0.03
        runs = np.split(scene["missing"], np.flatnonzero(np.diff(scene["missing"]) > 1) + 1)
        assert all(2 <= len(run) <= 30 for run in runs)  # bursts of 2-15 that may touch
        np.testing.assert_allclose(
            scene["face"][scene["missing"]],
            np.broadcast_to(load_scales()["code_mean"], (len(scene["missing"]), 256)),
            rtol=1e-6,
        )


def test_lip_driver_follows_channel0_envelope_without_lag(small) -> None:
    for scene in _valid_scenes(small):
        frames = len(scene["lip"])
        rms = np.sqrt(np.mean(scene["audio"][:, 0].reshape(frames, 1600) ** 2, axis=1))
        lags = range(-5, 6)
        corr = [np.corrcoef(np.roll(rms, lag)[5:-5], scene["lip"][5:-5])[0, 1] for lag in lags]
        assert max(corr) > 0.9
        assert abs(list(lags)[int(np.argmax(corr))]) <= 1


def test_face_codes_are_mostly_explained_by_lip(small) -> None:
    scenes = _valid_scenes(small)
    valid = [np.setdiff1d(np.arange(len(s["lip"])), s["missing"]) for s in scenes]
    face = np.concatenate([s["face"][v] for s, v in zip(scenes, valid, strict=True)])
    lip = np.concatenate([s["lip"][v] for s, v in zip(scenes, valid, strict=True)])
    face = (face - face.mean(0)) / face.std(0)
    lip = (lip - lip.mean()) / lip.std()
    r_squared = np.mean(face * lip[:, None], axis=0) ** 2
    assert r_squared.mean() > 0.6
    # The mix is fixed for the person: per-dim lip loadings agree between scenes.
    slopes = [
        np.polyfit(s["lip"][v], s["face"][v], 1)[0] for s, v in zip(scenes, valid, strict=True)
    ]
    assert np.corrcoef(slopes[0], slopes[1])[0, 1] > 0.9


def test_channels_take_turns(small) -> None:
    energy = []
    for scene in _valid_scenes(small):
        seconds = len(scene["audio"]) // 48_000
        energy.append(
            np.mean(scene["audio"][: seconds * 48_000].reshape(seconds, 48_000, 2) ** 2, axis=1)
        )
        frames = len(scene["lip"])
        partner_rms = np.sqrt(np.mean(scene["audio"][:, 1].reshape(frames, 1600) ** 2, axis=1))
        active = scene["partner_active"]
        assert partner_rms[active].mean() > 5 * partner_rms[~active].mean()
    energy = np.concatenate(energy)
    assert np.corrcoef(energy[:, 0], energy[:, 1])[0, 1] < -0.5


def test_channel0_is_voiced_speech_with_syllable_rate_and_pitch(small) -> None:
    scene = _valid_scenes(small)[0]
    speaking_seconds = np.count_nonzero(~scene["partner_active"]) / 30
    assert 2.0 < len(scene["onset_seconds"]) / speaking_seconds < 5.0
    pitches = []
    for onset in scene["onset_seconds"][:20]:
        start = int(onset * 48_000) + 1500
        chunk = scene["audio"][start : start + 2400, 0]
        corr = np.correlate(chunk, chunk, mode="full")[len(chunk) - 1 :]
        lag = 48_000 // 260 + int(np.argmax(corr[48_000 // 260 : 48_000 // 95]))
        pitches.append(48_000 / lag)
    assert 100 <= np.median(pitches) <= 250
    assert np.std(pitches) > 5  # pitch varies between syllables


def test_body_speeds_up_after_syllable_onsets(small) -> None:
    scales = load_scales()
    after, before, stroke_after, stroke_before = [], [], [], []
    for scene in _valid_scenes(small):
        z = (scene["pose"] - scales["pose_mean"]) / scales["pose_std"]
        speed = np.linalg.norm(np.diff(z, axis=0), axis=1)
        for frames, a, b in (
            (scene["onset_frames"], after, before),
            (scene["stroke_frames"], stroke_after, stroke_before),
        ):
            for f in frames[(frames >= 10) & (frames < len(speed) - 10)]:
                a.append(speed[f : f + 10].mean())
                b.append(speed[f - 10 : f].mean())
    assert np.mean(after) > 1.05 * np.mean(before)
    assert np.mean(stroke_after) > 1.5 * np.mean(stroke_before)


def test_motion_and_audio_have_the_shipped_scales(small) -> None:
    scales = load_scales()
    scenes = _valid_scenes(small)
    pose = np.concatenate([s["pose"] for s in scenes])
    valid = [np.setdiff1d(np.arange(len(s["face"])), s["missing"]) for s in scenes]
    face = np.concatenate([s["face"][v] for s, v in zip(scenes, valid, strict=True)])
    audio = np.concatenate([s["audio"] for s in scenes])
    for values, mean, std in (
        (pose, scales["pose_mean"], scales["pose_std"]),
        (face, scales["code_mean"], scales["code_std"]),
    ):
        assert np.median(np.abs(values.std(0) / std - 1)) < 0.3
        assert np.median(np.abs(values.mean(0) - mean) / std) < 0.3
    np.testing.assert_allclose(audio.std(0), scales["audio_std"], rtol=0.3)
    assert np.all(np.abs(audio.mean(0)) < 0.01 * scales["audio_std"])


def test_shipped_scales_match_upstream_rlw104(tmp_path: Path) -> None:
    stats_path = UPSTREAM / "RLW104" / "data_stats.pth"
    if not stats_path.exists():
        pytest.skip("../shared/upstream-data not present (fresh clone)")
    script = load_script("derive_synthetic_scales")
    derived, shipped = script.derive_scales(stats_path), load_scales()
    assert derived.keys() == shipped.keys()
    for key, value in derived.items():
        np.testing.assert_array_equal(shipped[key], value, err_msg=key)
    np.testing.assert_allclose(shipped["audio_std"], [0.0121, 0.0151], atol=5e-5)
