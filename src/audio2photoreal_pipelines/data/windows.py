"""Training windows: uniform random (scene, start) windows, and fixed test-chunk batches.

Batch keys (see CONTEXT conventions), with L = max_frames and F = 104 (body) or 256 (face)::

    motion         (B, L, F) float32  normalised; zero after each window's length
    length_mask    (B, L)    bool     True on valid frames
    face_valid     (B, L)    bool     face: True where the face code is present and inside the
                                      window; body: all True. Always combine with length_mask.
    keyframes      (B, K, F) float32  motion[:, ::keyframe_step][:, :K], K = L // keyframe_step
    keyframe_mask  (B, K)    bool
    audio          (B, L*1600, 2) float32   normalised waveform (only with include_audio)
    audio_features (B, La, C) float32       cached feature slice, La = round(L*10/3)
                                            (only when audio_features is given)

Upstream quirks not reproduced: frame index 0 mapping to the last scene (docs/upstream.md
§10.5), and resampling a face window until it holds a valid face frame (§10.9); the loss masks
with ``face_valid`` instead.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import torch

from audio2photoreal_pipelines.data.normalise import audio_mean_std, motion_mean_std, normalise
from audio2photoreal_pipelines.data.scenes import NUM_CHANNELS, Scene
from audio2photoreal_pipelines.units import (
    AUDIO_FEATURE_RATE,
    BODY_DIM,
    FACE_DIM,
    FPS,
    KEYFRAME_STRIDE,
    SAMPLES_PER_FRAME,
)

logger = logging.getLogger(__name__)

Kind = Literal["body", "face"]
_DIMS = {"body": BODY_DIM, "face": FACE_DIM}


def feature_index(frame: int) -> int:
    """Audio-feature frame of motion frame ``frame``: round(frame * 100 Hz / 30 fps)."""
    # Integer rounding, half up: 10 * frame / 3 has fraction 0, 1/3 or 2/3, so there are no ties.
    return (AUDIO_FEATURE_RATE * int(frame) + FPS // 2) // FPS


class _WindowBuilder:
    """Turns (scene, start, length) triples into one padded, normalised batch."""

    def __init__(
        self,
        scenes: dict[str, Scene],
        face_masks: dict[str, np.ndarray] | None,
        stats: dict[str, np.ndarray],
        audio_features: dict[str, np.ndarray] | None,
        *,
        kind: Kind,
        keyframe_step: int,
        include_audio: bool,
    ) -> None:
        if kind not in _DIMS:
            raise ValueError(f"kind must be 'body' or 'face', got {kind!r}")
        if keyframe_step < 1:
            raise ValueError(f"keyframe_step must be >= 1, got {keyframe_step}")
        self.scenes = scenes
        self.face_masks = face_masks
        self.audio_features = audio_features
        self.kind = kind
        self.dim = _DIMS[kind]
        self.keyframe_step = keyframe_step
        self.include_audio = include_audio
        self.mean, self.std = motion_mean_std(stats, kind)
        if np.shape(self.mean) != (self.dim,) or np.shape(self.std) != (self.dim,):
            raise ValueError(f"stats for {kind} must have shape ({self.dim},)")
        self.audio_mean, self.audio_std = audio_mean_std(stats)

    def check_scene(self, name: str) -> None:
        """Fail early if ``name`` lacks a face mask or audio features this builder needs."""
        if name not in self.scenes:
            raise KeyError(f"unknown scene {name!r}")
        num_frames = self.scenes[name].num_frames
        if self.kind == "face":
            if self.face_masks is None or name not in self.face_masks:
                raise KeyError(f"{name}: no face mask")
            if np.shape(self.face_masks[name]) != (num_frames,):
                raise ValueError(
                    f"{name}: face mask shape {np.shape(self.face_masks[name])} != ({num_frames},)"
                )
        if self.audio_features is not None:
            if name not in self.audio_features:
                raise KeyError(f"{name}: no audio features")
            features = self.audio_features[name]
            if features.ndim != 2 or features.shape[0] < feature_index(num_frames):
                raise ValueError(
                    f"{name}: audio features shape {features.shape} too short for "
                    f"{num_frames} frames (need >= {feature_index(num_frames)} rows)"
                )

    def build(
        self, windows: list[tuple[str, int, int]], max_frames: int
    ) -> dict[str, torch.Tensor]:
        """Batch for ``windows`` = [(scene, start, length)], padded to ``max_frames``."""
        batch = len(windows)
        motion = np.zeros((batch, max_frames, self.dim), dtype=np.float32)
        length_mask = np.zeros((batch, max_frames), dtype=bool)
        face_valid = np.ones((batch, max_frames), dtype=bool)
        if self.kind == "face":
            face_valid[:] = False
        audio = feats = None
        if self.include_audio:
            audio = np.zeros((batch, max_frames * SAMPLES_PER_FRAME, NUM_CHANNELS), np.float32)
        if self.audio_features is not None:
            channels = next(iter(self.audio_features.values())).shape[1]
            feats = np.zeros((batch, feature_index(max_frames), channels), dtype=np.float32)

        for i, (name, start, length) in enumerate(windows):
            scene = self.scenes[name]
            stop = start + length
            source = scene.body_pose if self.kind == "body" else scene.face_expression
            window = normalise(
                np.asarray(source[start:stop], dtype=np.float64), self.mean, self.std
            )
            if self.kind == "face":
                present = np.asarray(self.face_masks[name][start:stop], dtype=bool)
                window[~present] = 0.0  # upstream zeroes missing face frames after normalising
                face_valid[i, :length] = present
            motion[i, :length] = window
            length_mask[i, :length] = True
            if audio is not None:
                wave = scene.read_audio(start, length)
                audio[i, : length * SAMPLES_PER_FRAME] = normalise(
                    wave, self.audio_mean, self.audio_std
                )
            if feats is not None:
                first = feature_index(start)
                rows = self.audio_features[name][first : first + feature_index(length)]
                feats[i, : rows.shape[0]] = rows  # a cache one row short at the end stays 0

        num_keys = max_frames // self.keyframe_step
        out = {
            "motion": torch.from_numpy(motion),
            "length_mask": torch.from_numpy(length_mask),
            "face_valid": torch.from_numpy(face_valid),
            "keyframes": torch.from_numpy(
                np.ascontiguousarray(motion[:, :: self.keyframe_step][:, :num_keys])
            ),
            "keyframe_mask": torch.from_numpy(
                np.ascontiguousarray(length_mask[:, :: self.keyframe_step][:, :num_keys])
            ),
        }
        if audio is not None:
            out["audio"] = torch.from_numpy(audio)
        if feats is not None:
            out["audio_features"] = torch.from_numpy(feats)
        return out


class WindowSampler:
    """Random windows over ``names``: start uniform over all (scene, start) pairs, length uniform.

    Scenes shorter than ``max_frames`` are skipped with a warning, so every window can take any
    length in [min_frames, max_frames] and the length distribution does not depend on the scene.
    With ``world_size`` > 1, rank r draws only pairs whose global index % world_size == r.
    """

    def __init__(
        self,
        scenes: dict[str, Scene],
        face_masks: dict[str, np.ndarray] | None,
        stats: dict[str, np.ndarray],
        audio_features: dict[str, np.ndarray] | None,
        names: list[str],
        *,
        kind: Kind,
        min_frames: int,
        max_frames: int,
        keyframe_step: int = KEYFRAME_STRIDE,
        include_audio: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not 1 <= min_frames <= max_frames:
            raise ValueError(f"need 1 <= min_frames <= max_frames, got {min_frames}, {max_frames}")
        if not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world {world_size}")
        self._builder = _WindowBuilder(
            scenes,
            face_masks,
            stats,
            audio_features,
            kind=kind,
            keyframe_step=keyframe_step,
            include_audio=include_audio,
        )
        self.min_frames, self.max_frames = min_frames, max_frames
        self.rank, self.world_size = rank, world_size
        self.names = []
        for name in names:
            self._builder.check_scene(name)
            if scenes[name].num_frames < max_frames:
                logger.warning(
                    "%s: %d frames < max_frames %d; scene skipped by the window sampler",
                    name,
                    scenes[name].num_frames,
                    max_frames,
                )
                continue
            self.names.append(name)
        if not self.names:
            raise ValueError(
                f"no scene in {list(names)} has at least max_frames={max_frames} frames"
            )
        starts = [scenes[n].num_frames - max_frames + 1 for n in self.names]
        self._offsets = np.concatenate([[0], np.cumsum(starts)]).astype(np.int64)
        total = int(self._offsets[-1])
        self.num_windows = max(0, (total - rank + world_size - 1) // world_size)
        if self.num_windows == 0:
            raise ValueError(f"rank {rank} of {world_size} gets no windows ({total} in all)")

    @property
    def audio_feature_width(self) -> int | None:
        """C of the cached audio features (T_a, C) the windows cut, None without them."""
        features = self._builder.audio_features
        return next(iter(features.values())).shape[-1] if features else None

    def draw(self, batch_size: int, generator: torch.Generator) -> list[tuple[str, int, int]]:
        """``batch_size`` windows as (scene, start, length); all randomness from ``generator``."""
        picks = torch.randint(self.num_windows, (batch_size,), generator=generator).numpy()
        lengths = torch.randint(
            self.min_frames, self.max_frames + 1, (batch_size,), generator=generator
        ).numpy()
        global_index = self.rank + picks.astype(np.int64) * self.world_size
        scene_index = np.searchsorted(self._offsets, global_index, side="right") - 1
        starts = global_index - self._offsets[scene_index]
        return [
            (self.names[k], int(s), int(n))
            for k, s, n in zip(scene_index, starts, lengths, strict=True)
        ]

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """One batch of random windows (keys in the module docstring), padded to max_frames."""
        return self._builder.build(self.draw(batch_size, generator), self.max_frames)


def fixed_windows(
    scenes: dict[str, Scene],
    face_masks: dict[str, np.ndarray] | None,
    stats: dict[str, np.ndarray],
    audio_features: dict[str, np.ndarray] | None,
    chunks: list[dict],
    *,
    kind: Kind,
    keyframe_step: int = KEYFRAME_STRIDE,
    include_audio: bool = True,
) -> dict[str, torch.Tensor]:
    """One batch from test chunks ``[{"scene", "start", "length"}]``, padded to the longest."""
    if not chunks:
        raise ValueError("fixed_windows needs at least one chunk")
    builder = _WindowBuilder(
        scenes,
        face_masks,
        stats,
        audio_features,
        kind=kind,
        keyframe_step=keyframe_step,
        include_audio=include_audio,
    )
    windows = []
    for chunk in chunks:
        name, start, length = chunk["scene"], int(chunk["start"]), int(chunk["length"])
        builder.check_scene(name)
        if start < 0 or length < 1 or start + length > scenes[name].num_frames:
            raise ValueError(
                f"{name}: chunk [{start}, {start + length}) outside [0, {scenes[name].num_frames})"
            )
        windows.append((name, start, length))
    return builder.build(windows, max(length for _, _, length in windows))
