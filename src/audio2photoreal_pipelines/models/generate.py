"""Audio to motion with the four trained models (docs/upstream.md §6), for clips of any length.

Body: guide tokens by nucleus sampling → VQ decode → 1 fps guide poses → pose diffusion.
Face: face diffusion. Both return normalised motion, repetition-major: (R, S, T, F).
"""

from __future__ import annotations

from typing import Annotated

import torch
from einops import rearrange
from pydantic import Field, field_validator, model_validator
from torch import Tensor

from audio2photoreal_pipelines.models.denoisers import FaceDenoiser, PoseDenoiser
from audio2photoreal_pipelines.models.diffusion.sampling import sample_long
from audio2photoreal_pipelines.models.diffusion.schedules import SAMPLERS, make_sampler
from audio2photoreal_pipelines.models.guide import GuideTransformer
from audio2photoreal_pipelines.models.vqvae import VQVAE
from audio2photoreal_pipelines.parameter_block import Count, ParameterBlock, PositiveCount


class SamplingConfig(ParameterBlock):
    """How to sample: repetitions, the diffusion sampler, guidance and the guide's nucleus."""

    num_repetitions: PositiveCount = 5
    sampler: str = "ddim"
    steps: PositiveCount = 25
    eta: Annotated[float, Field(ge=0)] = 0.0
    face_guidance: Annotated[float, Field(ge=0)] = 10.0
    body_guidance: Annotated[float, Field(ge=0)] = 2.0
    top_p: Annotated[float, Field(gt=0, le=1)] = 0.94
    temperature: Annotated[float, Field(gt=0)] = 1.0
    top_k: PositiveCount | None = None
    window: PositiveCount = 600
    overlap: Count = 60
    # The body is sampled in windows as long as its training windows: a denoiser trained on
    # 5 s windows lost most of its stroke response and keyframe accuracy on 20 s ones. None: window.
    body_window: PositiveCount | None = None
    body_overlap: Count = 30
    # Sequences denoised at once; fewer bound the memory of the face's attention over 600 frames
    # (65 at once peaked at 2.9 GB in the default run's sample node). None: all.
    max_batch: PositiveCount | None = None

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, name: str) -> str:
        if name not in SAMPLERS:
            raise ValueError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
        return name

    @model_validator(mode="after")
    def _sampler_takes_these_settings(self) -> SamplingConfig:
        if self.eta and self.sampler != "ddim":
            raise ValueError(f"eta {self.eta} needs the ddim sampler, not {self.sampler}")
        make_sampler(self.sampler, num_inference_steps=self.steps)  # e.g. ddim's step counts
        return self

    @model_validator(mode="after")
    def _overlaps_fit(self) -> SamplingConfig:
        body_window = self.body_window or self.window
        for name, overlap, window in (
            ("overlap", self.overlap, self.window),
            ("body_overlap", self.body_overlap, body_window),
        ):
            if overlap >= window:
                raise ValueError(f"{name} {overlap} must be shorter than its window {window}")
        return self


def check_keyframe_strides(**models: torch.nn.Module) -> None:
    """Refuse models trained with different keyframe strides, which would put the guide poses at
    the wrong frames."""
    # Models registered before the stride was stored with them have none.
    strides = {name: getattr(model, "keyframe_stride", None) for name, model in models.items()}
    if len(set(strides.values())) != 1 or None in strides.values():
        raise ValueError(
            f"the models' keyframe strides differ ({strides}): retrain them together "
            "(a stride of None is a model registered before strides were stored)"
        )


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
    check_keyframe_strides(vq=vq, guide=guide, pose=pose)
    r = config.num_repetitions
    num_frames = length_mask.shape[1]
    num_keyframes = -(-num_frames // pose.keyframe_stride)
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
    keyframe_mask = length_mask[:, :: pose.keyframe_stride]
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
