"""A user's own wav as model input: any rate, mono or two channels, any length."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from audio2photoreal_pipelines.units import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME

logger = logging.getLogger(__name__)

# Upstream's demo fills the missing partner channel with this much Gaussian noise.
PARTNER_NOISE_STD = 0.001
MIN_FRAMES = FPS  # one second
# torchaudio's resampler builds a sinc kernel of about (48000 / g) x (rate / g) values, g their
# gcd: 6 k values from 44100 Hz, but 2 billion (8 GB) from 44101 Hz. A rate whose reduced ratio
# to 48 kHz has a term above this is refused rather than allowed to exhaust the memory.
MAX_RATIO_TERM = 1000


class UserAudioError(ValueError):
    """The user's audio file cannot be used; the message names the file."""


@dataclass(frozen=True)
class UserAudio:
    """A user's audio file as read: samples (N, C) float32 at ``sample_rate``, and its name."""

    samples: np.ndarray
    sample_rate: int
    name: str

    def prepared(self, seed: int = 0) -> np.ndarray:
        """`prepare_user_audio` of these samples; errors name the file."""
        return prepare_user_audio(self.samples, self.sample_rate, name=self.name, seed=seed)


def prepare_user_audio(audio: np.ndarray, rate: int, *, name: str, seed: int = 0) -> np.ndarray:
    """Audio (N, C) at ``rate`` Hz as (N', 2) float32 at 48 kHz, N' a multiple of 1600.

    Other sample rates are resampled with torchaudio. Mono audio is the person; the partner
    channel is filled with faint noise, as upstream's demo does. Silence is accepted (the models
    then see no speech), but a clip shorter than one second is refused. ``name`` names the audio
    in every error.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.ndim != 2 or audio.shape[0] == 0:
        raise UserAudioError(f"{name}: no audio samples (shape {audio.shape})")
    if audio.shape[1] > 2:
        raise UserAudioError(f"{name}: {audio.shape[1]} channels; expected 1 or 2")
    if not np.isfinite(audio).all():
        raise UserAudioError(f"{name}: contains NaN or infinite samples")
    if not rate or rate <= 0 or rate != int(rate):
        raise UserAudioError(f"{name}: sample rate {rate} Hz; expected a positive whole rate")
    rate = int(rate)
    common = math.gcd(rate, SAMPLE_RATE)
    if max(rate, SAMPLE_RATE) // common > MAX_RATIO_TERM:
        raise UserAudioError(
            f"{name}: sample rate {rate} Hz is not a standard rate (its ratio to {SAMPLE_RATE} "
            f"Hz is {rate // common}:{SAMPLE_RATE // common}); resample it to 48000, 44100 or "
            "16000 Hz first"
        )
    if rate != SAMPLE_RATE:
        logger.info("%s: resampling %d Hz to %d Hz", name, rate, SAMPLE_RATE)
        resample = torchaudio.transforms.Resample(int(rate), SAMPLE_RATE)
        audio = resample(torch.from_numpy(audio.T.copy())).T.numpy()
    if audio.shape[1] == 1:
        logger.info("%s: mono; filling the partner channel with faint noise", name)
        noise = np.random.default_rng(seed).normal(0.0, PARTNER_NOISE_STD, size=audio.shape)
        audio = np.concatenate([audio, noise.astype(np.float32)], axis=1)
    frames = audio.shape[0] // SAMPLES_PER_FRAME
    if frames < MIN_FRAMES:
        raise UserAudioError(
            f"{name}: {audio.shape[0] / SAMPLE_RATE:.2f} s is shorter than the one second "
            "the models need"
        )
    if not np.abs(audio[:, 0]).max() > 0:
        logger.warning("%s: channel 0 is silent; the person will not be speaking", name)
    return np.ascontiguousarray(audio[: frames * SAMPLES_PER_FRAME], dtype=np.float32)
