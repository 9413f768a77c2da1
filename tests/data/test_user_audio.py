"""A user's own wav as model input: resampling, mono, silence, clip lengths and bad files."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf
from kedro.io import DatasetError

from audio2photoreal_pipelines.data.user_audio import (
    PARTNER_NOISE_STD,
    UserAudioError,
    prepare_user_audio,
)
from audio2photoreal_pipelines.datasets.user_audio_dataset import UserAudioDataset
from tests.data.conftest import write_speech_wav

RATE = 48_000
FRAME = 1600


def load_user_audio(path, seed: int = 0) -> np.ndarray:
    """The file as the sample pipeline reads (catalog user_audio) and prepares it."""
    return UserAudioDataset(filepath=str(path)).load().prepared(seed)


@pytest.mark.parametrize("rate", [8_000, 16_000, 44_100])
def test_other_rates_are_resampled_to_48k_keeping_duration_and_pitch(tmp_path, rate):
    seconds = 2.53  # not a whole number of frames: the tail is cut to whole frames
    t = np.arange(round(seconds * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "tone.wav"
    sf.write(path, np.stack([tone, tone], axis=1).astype(np.float32), rate, subtype="FLOAT")

    audio = load_user_audio(path)

    assert audio.dtype == np.float32 and audio.shape[1] == 2
    assert audio.shape[0] % FRAME == 0
    assert abs(audio.shape[0] / RATE - seconds) <= 1 / 30
    spectrum = np.abs(np.fft.rfft(audio[:, 0]))
    peak_hz = np.fft.rfftfreq(audio.shape[0], 1 / RATE)[spectrum.argmax()]
    assert peak_hz == pytest.approx(440, abs=1)


def test_mono_keeps_the_person_and_fills_the_partner_with_faint_noise(tmp_path):
    path = write_speech_wav(tmp_path / "mono.wav", 3.0, rate=RATE)
    original = sf.read(path, dtype="float32")[0]

    audio = load_user_audio(path, seed=3)

    assert audio.shape == (90 * FRAME, 2)
    np.testing.assert_array_equal(audio[:, 0], original[: 90 * FRAME])
    assert audio[:, 1].std() == pytest.approx(PARTNER_NOISE_STD, rel=0.05)
    assert abs(audio[:, 1].mean()) < 1e-4
    np.testing.assert_array_equal(load_user_audio(path, seed=3), audio)
    assert not np.array_equal(load_user_audio(path, seed=4)[:, 1], audio[:, 1])


def test_silence_is_accepted_with_a_warning(tmp_path, caplog):
    path = tmp_path / "quiet.wav"
    sf.write(path, np.zeros(2 * RATE, np.float32), RATE)

    with caplog.at_level(logging.WARNING):
        audio = load_user_audio(path)

    assert audio.shape == (60 * FRAME, 2)
    assert not audio[:, 0].any()
    assert "quiet.wav" in caplog.text and "silent" in caplog.text


@pytest.mark.parametrize(("seconds", "frames"), [(1.0, 30), (2.0, 60), (180.0, 5400)])
def test_clips_of_one_second_to_three_minutes_are_whole_frames(tmp_path, seconds, frames):
    path = write_speech_wav(tmp_path / "clip.wav", seconds)

    audio = load_user_audio(path)

    assert audio.shape == (frames * FRAME, 2)
    assert np.isfinite(audio).all()


def _too_short(path):
    sf.write(path, np.zeros(int(0.99 * RATE), np.float32), RATE)


def _three_channels(path):
    sf.write(path, np.zeros((RATE, 3), np.float32), RATE)


def _nan(path):
    audio = np.zeros((2 * RATE, 2), np.float32)
    audio[100, 0] = np.nan
    sf.write(path, audio, RATE, subtype="FLOAT")


def _not_audio(path):
    path.write_text("these are meeting notes, not a recording\n")


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (_too_short, "shorter than the one second"),
        (_three_channels, "3 channels"),
        (_nan, "NaN"),
        (_not_audio, "not a readable audio file"),
        (None, "no such file"),
    ],
)
def test_bad_files_are_refused_naming_the_file(tmp_path, write, message):
    path = tmp_path / "user_take.wav"
    if write is not None:
        write(path)

    # Read through the catalog, Kedro wraps the dataset's error; its message stays the last line.
    with pytest.raises((UserAudioError, DatasetError), match=message) as err:
        load_user_audio(path)

    assert "user_take.wav" in str(err.value)


@pytest.mark.parametrize("rate", [44_101, 999_983])
def test_a_rate_without_a_small_ratio_to_48k_is_refused_before_resampling(rate):
    # torchaudio would build a sinc kernel of (48000 / g) x (rate / g) values: 8 GB at 44101 Hz.
    audio = np.zeros((2 * rate, 1), dtype=np.float32)
    with pytest.raises(UserAudioError, match=f"^clip.wav: sample rate {rate} Hz is not a standard"):
        prepare_user_audio(audio, rate, name="clip.wav")


@pytest.mark.parametrize("rate", [11_025, 22_050, 96_000])
def test_standard_rates_are_resampled(rate):
    audio = np.zeros((rate * 2, 2), dtype=np.float32)
    assert prepare_user_audio(audio, rate, name="clip.wav").shape == (96_000, 2)
