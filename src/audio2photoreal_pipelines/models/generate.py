"""Audio to motion with the four trained models (docs/upstream.md §6), for clips of any length.

Body: guide tokens by nucleus sampling → VQ decode → 1 fps guide poses → pose diffusion.
Face: face diffusion. Both return normalised motion, repetition-major: (R, S, T, F).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor

from audio2photoreal_pipelines.models.denoisers import FaceDenoiser, PoseDenoiser
from audio2photoreal_pipelines.models.diffusion.sampling import sample_long
from audio2photoreal_pipelines.models.diffusion.schedules import make_sampler
from audio2photoreal_pipelines.models.guide import GuideTransformer
from audio2photoreal_pipelines.models.vqvae import VQVAE
from audio2photoreal_pipelines.units import KEYFRAME_STRIDE


@dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    """How to sample: repetitions, the diffusion sampler, guidance and the guide's nucleus."""

    num_repetitions: int = 5
    sampler: str = "ddim"
    steps: int = 25
    eta: float = 0.0
    face_guidance: float = 10.0
    body_guidance: float = 2.0
    top_p: float = 0.94
    temperature: float = 1.0
    top_k: int | None = None
    window: int = 600
    overlap: int = 60
    # The body is sampled in windows as long as its training windows: a denoiser trained on
    # 5 s windows lost most of its stroke response and keyframe accuracy on 20 s ones. None: window.
    body_window: int | None = None
    body_overlap: int = 30
    keyframe_step: int = KEYFRAME_STRIDE
    # Sequences denoised at once; fewer bound the memory of the face's attention over 600 frames
    # (65 at once peaked at 2.9 GB in the default run's sample node). None: all.
    max_batch: int | None = None


def _repeat_clips(tensor: Tensor, repetitions: int) -> Tensor:
    """(S, ...) → (S·R, ...), clip-major like the guide's output."""
    return tensor.repeat_interleave(repetitions, dim=0)


def _rep_major(samples: Tensor, repetitions: int) -> Tensor:
    """(S·R, ...) clip-major → (R, S, ...) repetition-major."""
    return rearrange(samples, "(s r) ... -> r s ...", r=repetitions)


def _diffuse(
    denoiser: FaceDenoiser | PoseDenoiser,
    cond: dict[str, Tensor],
    guidance: float,
    config: SamplingConfig,
    generator: torch.Generator,
    *,
    window: int,
    overlap: int,
) -> Tensor:
    """x0 (B, T, F) for a clip-length condition, over overlapping windows when it is long, in
    groups of at most ``config.max_batch`` rows."""
    batch, num_frames = cond["length_mask"].shape
    group = batch if config.max_batch is None else config.max_batch
    if group < 1:
        raise ValueError(f"sample.max_batch must be >= 1 or null, got {config.max_batch}")
    return torch.cat(
        [
            sample_long(
                denoiser,
                make_sampler(config.sampler, num_inference_steps=config.steps),
                {key: value[first : first + group] for key, value in cond.items()},
                shape=(min(group, batch - first), num_frames, denoiser.nfeats),
                window=window,
                overlap=overlap,
                guidance_scale=guidance,
                generator=generator,
                eta=config.eta,
            )
            for first in range(0, batch, group)
        ]
    )


def generate_face(
    face: FaceDenoiser,
    audio_features: Tensor,
    length_mask: Tensor,
    config: SamplingConfig,
    generator: torch.Generator,
) -> Tensor:
    """Face codes (R, S, T, 256) for audio features (S, La, C) and valid frames (S, T)."""
    r = config.num_repetitions
    cond = {
        "audio_features": _repeat_clips(audio_features, r),
        "length_mask": _repeat_clips(length_mask, r),
    }
    x0 = _diffuse(
        face,
        cond,
        config.face_guidance,
        config,
        generator,
        window=config.window,
        overlap=config.overlap,
    )
    return _rep_major(x0, r)


def generate_body(
    vq: VQVAE,
    guide: GuideTransformer,
    pose: PoseDenoiser,
    audio_features: Tensor,
    length_mask: Tensor,
    config: SamplingConfig,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Body poses (R, S, T, 104) and their 1 fps guide poses (R, S, K, 104)."""
    r = config.num_repetitions
    num_frames = length_mask.shape[1]
    num_keyframes = -(-num_frames // config.keyframe_step)
    tokens = guide.generate(
        audio_features,
        num_keyframes,
        frame_mask=length_mask,
        num_samples=r,
        top_p=config.top_p,
        temperature=config.temperature,
        top_k=config.top_k,
        generator=generator,
    )
    guide_poses = vq.decode(tokens)  # (S·R, K, 104)
    body = generate_body_from_keyframes(
        pose,
        _repeat_clips(audio_features, r),
        _repeat_clips(length_mask, r),
        guide_poses,
        config,
        generator,
    )
    return _rep_major(body, r), _rep_major(guide_poses, r)


def generate_body_from_keyframes(
    pose: PoseDenoiser,
    audio_features: Tensor,
    length_mask: Tensor,
    keyframes: Tensor,
    config: SamplingConfig,
    generator: torch.Generator,
) -> Tensor:
    """Body poses (B, T, 104) guided by 1 fps poses (B, K, 104), e.g. the guide's or the truth's.

    One sample per row: repeat the rows for several repetitions.
    """
    keyframe_mask = length_mask[:, :: config.keyframe_step]
    cond = {
        "audio_features": audio_features,
        "length_mask": length_mask,
        "keyframes": keyframes * keyframe_mask[..., None],
        "keyframe_mask": keyframe_mask,
    }
    return _diffuse(
        pose,
        cond,
        config.body_guidance,
        config,
        generator,
        window=config.body_window or config.window,
        overlap=config.body_overlap,
    )
