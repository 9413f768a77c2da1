"""Cutting a clip-length condition into the windows a denoiser was trained on."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from audio2photoreal_pipelines.units import (
    AUDIO_FEATURE_RATE,
    FPS,
    KEYFRAME_STRIDE,
    SAMPLES_PER_FRAME,
)

Condition = dict[str, Tensor]


def _slice_time(x: Tensor, start: int, length: int) -> Tensor:
    """x[:, start:start+length] along dim 1, zero- (or False-) padded beyond the end."""
    piece = x[:, start : start + length]
    missing = length - piece.shape[1]
    if missing > 0:
        pad = torch.zeros((x.shape[0], missing, *x.shape[2:]), dtype=x.dtype, device=x.device)
        piece = torch.cat([piece, pad], dim=1)
    return piece


def slice_condition(cond: Mapping[str, Tensor], start: int, length: int) -> Condition:
    """Cut the frames [start, start + length) out of a clip-length condition dict.

    Frame-rate keys (length_mask, face_valid) are cut directly; audio_features
    (100 Hz) at [round(start*10/3), +round(length*10/3)); the waveform at 1600 samples per
    frame; keyframes (1 fps) from start // 30, ceil(length / 30) of them, which needs
    start % 30 == 0 so that keyframe k sits at frame 30k of the window. Cuts past the end are
    zero- (False-) padded.
    """
    out: Condition = {}
    for key, value in cond.items():
        if key in ("length_mask", "face_valid"):  # motion frame rate
            out[key] = _slice_time(value, start, length)
        elif key == "audio_features":
            rate = AUDIO_FEATURE_RATE / FPS
            out[key] = _slice_time(value, round(start * rate), round(length * rate))
        elif key == "audio":
            out[key] = _slice_time(value, start * SAMPLES_PER_FRAME, length * SAMPLES_PER_FRAME)
        elif key in ("keyframes", "keyframe_mask"):
            if start % KEYFRAME_STRIDE:
                raise ValueError(
                    f"window start {start} is not a multiple of {KEYFRAME_STRIDE}: keyframes "
                    "would not sit at multiples of 30 frames in the window"
                )
            out[key] = _slice_time(
                value, start // KEYFRAME_STRIDE, math.ceil(length / KEYFRAME_STRIDE)
            )
        else:
            raise ValueError(f"slice_condition: unknown time layout for condition key {key!r}")
    return out


def window_starts(num_frames: int, window: int, overlap: int) -> list[int]:
    """Window starts at multiples of (window - overlap) until a window reaches num_frames."""
    if not 0 <= overlap < window:
        raise ValueError(f"need 0 <= overlap < window, got overlap={overlap}, window={window}")
    hop = window - overlap
    starts = [0]
    while starts[-1] + window < num_frames:
        starts.append(starts[-1] + hop)
    return starts
