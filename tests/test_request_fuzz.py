"""Hostile audio for the served sampler and ``sample.audio``, fuzzed with hypothesis.

Each request is either turned into audio the models can take ((N, 2) finite float32 at 48 kHz,
N a whole number of frames, at least a second) or refused with a 400 whose reason is one line
naming the field. Nothing else may escape: no numpy or soundfile error, no resampler asked to
build a kernel of billions of values.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio2photoreal_pipelines.serving import RequestError, request_audio
from audio2photoreal_pipelines.units import SAMPLE_RATE, SAMPLES_PER_FRAME

RATES = [1, 7, 8_000, 16_000, 22_050, 44_100, 44_101, 48_000, 96_000, 999_983]


@st.composite
def wav_requests(draw) -> dict:
    """A wav, flac or ogg file of any rate, channel count and length, maybe cut short or
    holding NaN, as base64."""
    rate = draw(st.sampled_from(RATES[2:]))  # libsndfile itself refuses rates of a few Hz
    frames = draw(st.integers(0, int(2.5 * min(rate, 48_000))))
    channels = draw(st.integers(1, 3))
    audio = 0.3 * np.sin(np.arange(frames)[:, None] * 0.05 + np.arange(channels))
    file_format = draw(st.sampled_from(["WAV", "FLAC"]))
    subtype = "FLOAT" if file_format == "WAV" else "PCM_16"
    if file_format == "WAV" and draw(st.booleans()) and frames:  # only float wav holds NaN
        audio[draw(st.integers(0, frames - 1)), 0] = draw(st.sampled_from([np.nan, np.inf]))
    buffer = io.BytesIO()
    sf.write(buffer, audio.astype(np.float32), rate, format=file_format, subtype=subtype)
    data = buffer.getvalue()
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return {"wav_base64": base64.b64encode(data).decode("ascii")}


garbage_requests = st.one_of(
    st.binary(max_size=300).map(lambda b: {"wav_base64": base64.b64encode(b).decode("ascii")}),
    st.text(max_size=40).map(lambda text: {"wav_base64": text}),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)


@st.composite
def array_requests(draw) -> dict:
    """audio (+ partner_audio) as arrays or anything else, with any sample_rate value."""
    length = draw(st.integers(0, 100_000))
    audio = 0.1 * np.sin(np.arange(length) * 0.01)
    if draw(st.booleans()) and length:
        audio[draw(st.integers(0, length - 1))] = draw(st.sampled_from([np.nan, -np.inf]))
    record: dict = {
        "audio": draw(
            st.one_of(
                st.just(audio.tolist()),
                st.text(max_size=10),
                st.just([[0.0, 1.0], [2.0]]),  # ragged
                st.just([["a", "b"]]),
            )
        )
    }
    if draw(st.booleans()):
        record["partner_audio"] = draw(
            st.one_of(st.just(audio.tolist()), st.just(audio[: length // 2].tolist()))
        )
    if draw(st.booleans()):
        record["sample_rate"] = draw(
            st.one_of(
                st.sampled_from(RATES),
                st.integers(-10, 10),
                st.floats(allow_nan=True, allow_infinity=True),
                st.text(max_size=6),
            )
        )
    return record


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.one_of(wav_requests(), garbage_requests, array_requests()))
def test_any_request_gives_usable_audio_or_a_one_line_reason(record):
    try:
        audio = request_audio(record, seed=0)
    except RequestError as err:
        reason = err.message
        assert reason and "\n" not in reason and len(reason) < 300, reason
        return
    assert audio.ndim == 2 and audio.shape[1] == 2 and audio.dtype == np.float32
    assert np.isfinite(audio).all()
    assert audio.shape[0] % SAMPLES_PER_FRAME == 0 and audio.shape[0] >= SAMPLE_RATE
