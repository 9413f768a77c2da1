"""Tiny scenes in the upstream layout, written directly (independent of the synthetic generator)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio2photoreal_pipelines.data.scenes import discover_scenes, face_valid_mask
from audio2photoreal_pipelines.data.stats import compute_data_stats

GARBAGE_FACE_VALUE = 50.0  # written at missing face frames, far outside the real codes


def write_scenes(
    person_dir: Path,
    frames: int | list[int] = 3,
    *,
    num_frames: int = 90,
    missing_fraction: float = 0.1,
    seed: int = 0,
) -> Path:
    """Write scenes scene01, scene02, ... of random data; ``frames`` is a count or a length list.

    Missing face frames hold ``GARBAGE_FACE_VALUE`` so any code that uses them shows it.
    """
    lengths = [num_frames] * frames if isinstance(frames, int) else list(frames)
    rng = np.random.default_rng(seed)
    person_dir.mkdir(parents=True, exist_ok=True)
    for i, length in enumerate(lengths, start=1):
        stem = person_dir / f"scene{i:02d}"
        body = rng.normal(
            loc=rng.uniform(-20, 20, 104), scale=rng.uniform(0.1, 3, 104), size=(length, 104)
        )
        face = rng.normal(
            loc=rng.uniform(-1, 1, 256), scale=rng.uniform(0.05, 1, 256), size=(length, 256)
        )
        missing = np.sort(
            rng.choice(length, size=int(missing_fraction * length), replace=False)
        ).astype(np.int64)
        face[missing] = GARBAGE_FACE_VALUE
        audio = rng.normal(0.0, [0.01, 0.02], size=(length * 1600, 2)) + [0.001, -0.002]
        np.save(f"{stem}_body_pose.npy", body.astype(np.float32))
        np.save(f"{stem}_face_expression.npy", face.astype(np.float32))
        np.save(f"{stem}_missing_face_frames.npy", missing)
        sf.write(f"{stem}_audio.wav", audio.astype(np.float32), 48_000, subtype="FLOAT")
    return person_dir


def write_speech_wav(
    path: Path, seconds: float, *, rate: int = 16_000, channels: int = 1, seed: int = 0
) -> Path:
    """A float wav of syllable-like tone bursts (4 per second) under faint noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    bursts = (np.sin(2 * np.pi * 4 * t) > 0.3) * np.sin(2 * np.pi * 220 * t)
    audio = 0.3 * bursts[:, None] + rng.normal(0.0, 0.01, size=(t.size, channels))
    sf.write(path, audio.astype(np.float32), rate, subtype="FLOAT")
    return path


@pytest.fixture
def make_scenes(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_scenes(frames, **kwargs)`` writes a person folder under tmp_path."""
    counter = iter(range(1000))

    def make(frames: int | list[int] = 3, **kwargs) -> Path:
        return write_scenes(tmp_path / f"person{next(counter)}", frames, **kwargs)

    return make


@pytest.fixture
def scene_dir(make_scenes) -> Path:
    """Three valid 90-frame scenes."""
    return make_scenes(3)


@pytest.fixture
def tiny_person(make_scenes):
    """(scenes, face_masks, stats) for four scenes of different lengths."""
    scenes = discover_scenes(make_scenes([120, 150, 90, 200]))
    masks = {name: face_valid_mask(scene) for name, scene in scenes.items()}
    stats = compute_data_stats(scenes, masks, list(scenes))
    return scenes, masks, stats
