"""Fuzzed corrupt scene files: each is accepted or refused in one line naming the file.

Hypothesis mutates one file of a valid three-scene person (truncated or garbage bytes, a pickle
inside a .npy, wrong dtype, shape, rate or channels, NaN or Inf, out-of-range indices, a missing
file). Discovery and validation must then either pass or raise `SceneValidationError` (or
`FileNotFoundError`) whose message is one line starting with the file or scene name: never an
unrelated exception.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio2photoreal_pipelines.data.scenes import (
    SceneValidationError,
    discover_scenes,
    validate_scene,
)
from tests.data.conftest import write_scenes

FRAMES = 12
SUFFIXES = ["_audio.wav", "_body_pose.npy", "_face_expression.npy", "_missing_face_frames.npy"]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return write_scenes(tmp_path_factory.mktemp("fuzz") / "person", 3, num_frames=FRAMES)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype == object)
    return buffer.getvalue()


def _wav(frames: int, rate: int, channels: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((frames, channels), np.float32), rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def _array(draw, suffix: str) -> np.ndarray:
    width = {"_body_pose.npy": 104, "_face_expression.npy": 256}.get(suffix)
    kind = draw(st.sampled_from(["shape", "dtype", "non-finite", "indices", "empty"]))
    if kind == "shape":
        shape = draw(st.lists(st.integers(0, 300), min_size=0, max_size=3))
        return np.zeros(shape, np.float32)
    if kind == "dtype":
        dtype = draw(st.sampled_from([np.int16, np.int64, np.bool_, np.complex64, "U3"]))
        return np.zeros((FRAMES, width or 1), dtype)
    if kind == "non-finite":
        array = np.zeros((FRAMES, width or 1), np.float32)
        array[draw(st.integers(0, FRAMES - 1)), 0] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf])
        )
        return array
    if kind == "indices":
        return np.array(draw(st.lists(st.integers(-50, 50), max_size=8)), np.int64)
    return np.zeros((0, width or 0), np.float32)


@st.composite
def corruptions(draw) -> tuple[str, bytes | None]:
    """(file suffix, its new bytes or None to delete it)."""
    suffix = draw(st.sampled_from(SUFFIXES))
    kind = draw(st.sampled_from(["truncate", "garbage", "pickle", "array", "wav", "delete"]))
    if kind == "delete":
        return suffix, None
    if kind == "garbage":
        return suffix, draw(st.binary(max_size=400))
    if kind == "pickle":
        return suffix, _npy(np.array([{"payload": "os.system"}], dtype=object))
    if kind == "array":
        return suffix, _npy(_array(draw, suffix))
    if kind == "wav":
        rate = draw(st.sampled_from([8_000, 16_000, 44_100, 48_000]))
        channels = draw(st.integers(1, 3))
        return suffix, _wav(draw(st.integers(0, FRAMES * 1600 + 10)), rate, channels)
    return suffix, b"truncate"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(corruption=corruptions(), scene=st.sampled_from(["scene01", "scene02", "scene03"]))
def test_a_corrupt_file_is_accepted_or_refused_in_one_line(template, tmp_path, corruption, scene):
    person = tmp_path / "person"
    shutil.rmtree(person, ignore_errors=True)
    shutil.copytree(template, person)
    suffix, data = corruption
    path = person / f"{scene}{suffix}"
    if data is None:
        path.unlink()
    elif data == b"truncate":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    else:
        path.write_bytes(data)
    try:
        for found in discover_scenes(person).values():
            validate_scene(found)
    except (SceneValidationError, FileNotFoundError) as err:
        message = str(err)
        assert "\n" not in message, message
        assert message.startswith((path.name, scene, str(person))), message
