"""WavDataset."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from kedro.io import DatasetError

from audio2photoreal_pipelines.datasets import WavDataset


def _clip(channels=2):
    rng = np.random.default_rng(0)
    return (rng.uniform(-0.5, 0.5, size=(4800, channels))).astype(np.float32)


def test_float_round_trip_is_exact(tmp_path):
    dataset = WavDataset(filepath=str(tmp_path / "a.wav"))
    clip = _clip()

    dataset.save((clip, 48_000))
    samples, rate = dataset.load()

    assert rate == 48_000 and samples.dtype == np.float32 and samples.shape == (4800, 2)
    np.testing.assert_array_equal(samples, clip)


def test_subtype_is_passed_to_soundfile(tmp_path):
    dataset = WavDataset(filepath=str(tmp_path / "a.wav"), save_args={"subtype": "PCM_16"})
    clip = _clip(channels=1)[:, 0]

    dataset.save((clip, 16_000))
    samples, rate = dataset.load()

    assert sf.info(tmp_path / "a.wav").subtype == "PCM_16"
    assert rate == 16_000 and samples.shape == (4800, 1)
    np.testing.assert_allclose(samples[:, 0], clip, atol=1 / 2**15)


def test_save_needs_a_samples_rate_tuple(tmp_path):
    with pytest.raises(DatasetError, match="tuple"):
        WavDataset(filepath=str(tmp_path / "a.wav")).save(_clip())
