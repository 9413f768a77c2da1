"""Gaussian diffusion around an x0-predicting denoiser, built on `diffusers` schedulers.

The schedulers hold the noise schedule and the rule for one step; the denoiser is a function
`x0 = f(x_t, t, cond)`. Classifier-free guidance, the step-independent condition cache and
any-length sampling wrap that function here (docs/upstream.md §4).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor, nn

from audio2photoreal_pipelines.units import (
    AUDIO_FEATURE_RATE,
    FPS,
    KEYFRAME_STRIDE,
    SAMPLES_PER_FRAME,
)

Condition = dict[str, Tensor]
Scheduler = DDPMScheduler | DDIMScheduler | DPMSolverMultistepScheduler

NUM_TRAIN_TIMESTEPS = 1000
# The cosine schedule and x0 prediction of docs/upstream.md §4.
_SCHEDULE = dict(beta_schedule="squaredcos_cap_v2", prediction_type="sample")


def make_training_scheduler(num_steps: int = NUM_TRAIN_TIMESTEPS) -> DDPMScheduler:
    """DDPM scheduler with upstream's cosine schedule and x0 prediction (fixed-small variance)."""
    return DDPMScheduler(
        num_train_timesteps=num_steps, variance_type="fixed_small", clip_sample=False, **_SCHEDULE
    )


def upstream_ddim_stride(num_inference_steps: int, num_train_timesteps: int) -> int:
    """Stride s of upstream's "ddimN" respacing: the s with len(range(0, T, s)) == N."""
    for stride in range(1, num_train_timesteps + 1):
        if len(range(0, num_train_timesteps, stride)) == num_inference_steps:
            return stride
    raise ValueError(
        f"ddim{num_inference_steps}: no integer stride s gives {num_inference_steps} steps out of "
        f"{num_train_timesteps} (upstream's space_timesteps rejects it too)"
    )


def make_sampler(
    name: str, *, num_inference_steps: int, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS
) -> DDIMScheduler | DPMSolverMultistepScheduler:
    """Inference scheduler: "ddim" (upstream's ddimN respacing) or "dpmsolver" (DPM-Solver++)."""
    if name == "ddim":
        scheduler = DDIMScheduler(
            num_train_timesteps=num_train_timesteps,
            timestep_spacing="leading",
            steps_offset=0,
            set_alpha_to_one=True,
            clip_sample=False,  # upstream samples with clip_denoised=False
            **_SCHEDULE,
        )
        scheduler.set_timesteps(num_inference_steps)
        stride = upstream_ddim_stride(num_inference_steps, num_train_timesteps)
        expected = list(range(0, num_train_timesteps, stride))[::-1]
        if scheduler.timesteps.tolist() != expected:
            # diffusers steps by T // N; upstream by s. They agree exactly when s divides T.
            raise ValueError(
                f"ddim{num_inference_steps}: upstream stride {stride} does not divide "
                f"{num_train_timesteps}, so diffusers' DDIM cannot reproduce its timesteps; use N "
                f"with T % (T // N) == 0 (e.g. 25, 50, 100, 250, 500, 1000)"
            )
        return scheduler
    if name == "dpmsolver":
        scheduler = DPMSolverMultistepScheduler(
            num_train_timesteps=num_train_timesteps, algorithm_type="dpmsolver++", **_SCHEDULE
        )
        scheduler.set_timesteps(num_inference_steps)
        return scheduler
    raise ValueError(f"unknown sampler {name!r}; expected 'ddim' or 'dpmsolver'")


def q_sample(scheduler: Scheduler, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """Forward process sqrt(abar_t) x0 + sqrt(1 - abar_t) noise; x0, noise (B, T, F), t (B,)."""
    return scheduler.add_noise(x0, noise, t)


def _masked_mean_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Per-sample masked MSE (sum / (valid frames x F)), averaged over samples with valid frames."""
    mask = mask.to(pred.dtype)
    per_sample = ((pred - target) ** 2 * mask.unsqueeze(-1)).sum(dim=(1, 2))
    valid = mask.sum(dim=1)
    has_frames = valid > 0
    per_sample = per_sample / (valid.clamp(min=1.0) * pred.shape[-1])
    # Samples without any valid frame carry no information; averaging them in as zeros would
    # make the loss scale depend on how many empty windows a batch happens to hold.
    return (per_sample * has_frames).sum() / has_frames.sum().clamp(min=1)


def diffusion_loss(
    x0_hat: Tensor,
    x0: Tensor,
    *,
    length_mask: Tensor,
    frame_mask: Tensor | None = None,
    lambda_vel: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Masked x0 MSE + lambda_vel x masked velocity MSE (§4); x0 (B, T, F), masks (B, T)."""
    length_mask = length_mask.bool()
    mask = length_mask if frame_mask is None else length_mask & frame_mask.bool()
    rot_mse = _masked_mean_mse(x0_hat, x0, mask)
    loss = rot_mse
    metrics = {"rot_mse": rot_mse.detach()}
    if lambda_vel > 0:
        # Upstream masks velocities with the length mask only, not the face-valid mask.
        vel_mask = length_mask[:, 1:] & length_mask[:, :-1]
        vel_mse = _masked_mean_mse(x0_hat.diff(dim=1), x0.diff(dim=1), vel_mask)
        loss = loss + lambda_vel * vel_mse
        metrics["vel_mse"] = vel_mse.detach()
    return loss, metrics


class ConditionalDenoiser(nn.Module, abc.ABC):
    """x0-predicting denoiser split into a step-independent and a per-step part.

    `encode_condition` computes everything that does not depend on the diffusion step (condition
    tokens, pooled hidden, cross-attention K/V), so samplers build it once per clip.
    Subclasses with several independently dropped conditions set `num_drop_groups`.
    """

    num_drop_groups: int = 1

    @abc.abstractmethod
    def encode_condition(self, cond: Mapping[str, Tensor], drop: Tensor) -> Any:
        """Step-independent context; drop (B,) or (B, num_drop_groups) bool nulls conditions."""

    @abc.abstractmethod
    def denoise(self, x_t: Tensor, t: Tensor, ctx: Any) -> Tensor:
        """Predict x0 (B, T, F) from x_t (B, T, F) and integer steps t (B,)."""

    def forward(
        self,
        x_t: Tensor,
        t: Tensor,
        cond: Mapping[str, Tensor],
        *,
        cond_drop_prob: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """x0 prediction with per-sample classifier-free dropout of each condition group."""
        drop = draw_drop_mask(
            x_t.shape[0], self.num_drop_groups, cond_drop_prob, generator, x_t.device
        )
        return self.denoise(x_t, t, self.encode_condition(cond, drop))


def _draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    """Draw on the generator's device (a CPU generator may serve CUDA tensors), else on device."""
    return device if generator is None else generator.device


def draw_drop_mask(
    batch_size: int,
    num_groups: int,
    prob: float,
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """Independent Bernoulli(prob) drops per sample and condition group, (B, G) bool."""
    if prob <= 0:
        return torch.zeros(batch_size, num_groups, dtype=torch.bool, device=device)
    draw = torch.rand(
        batch_size, num_groups, generator=generator, device=_draw_device(generator, device)
    )
    return (draw < prob).to(device)


def expand_drop(drop: Tensor, num_groups: int) -> Tensor:
    """Drop mask (B,) or (B, G) as (B, G) bool: a (B,) mask drops every group together."""
    drop = drop.bool()
    if drop.ndim == 1:
        return drop.unsqueeze(1).expand(-1, num_groups)
    if drop.shape[1] != num_groups:
        raise ValueError(f"drop mask has {drop.shape[1]} groups, expected {num_groups}")
    return drop


def training_step_loss(
    denoiser: ConditionalDenoiser,
    scheduler: DDPMScheduler,
    batch: Mapping[str, Tensor],
    *,
    lambda_vel: float = 0.0,
    cond_drop_prob: float = 0.2,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """One diffusion training loss: uniform t, q_sample, x0 prediction, masked loss."""
    x0 = batch["motion"]
    draw_device = _draw_device(generator, x0.device)
    t = torch.randint(
        0,
        scheduler.config.num_train_timesteps,
        (x0.shape[0],),
        generator=generator,
        device=draw_device,
    ).to(x0.device)
    noise = randn_tensor(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    x_t = q_sample(scheduler, x0, noise, t)
    cond = {k: v for k, v in batch.items() if k != "motion"}
    x0_hat = denoiser(x_t, t, cond, cond_drop_prob=cond_drop_prob, generator=generator)
    return diffusion_loss(
        x0_hat,
        x0,
        length_mask=batch["length_mask"],
        frame_mask=batch.get("face_valid"),
        lambda_vel=lambda_vel,
    )


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Temporarily switch off dropout so that sampling is a function of the noise alone."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _cond_device(cond: Mapping[str, Tensor]) -> torch.device:
    return next(iter(cond.values())).device


@torch.no_grad()
def sample(
    denoiser: ConditionalDenoiser,
    scheduler: Scheduler,
    cond: Mapping[str, Tensor],
    *,
    shape: tuple[int, int, int],
    guidance_scale: float = 1.0,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    eta: float = 0.0,
    known: Tensor | None = None,
    known_mask: Tensor | None = None,
) -> Tensor:
    """Sample x0 (B, T, F) from N(0, I) with classifier-free guidance on x0 predictions.

    Cond and uncond passes run as one batch of 2B (skipped at guidance_scale 1). With `known`
    (B, T, F) and `known_mask` (B, T) or (T,), the other frames are inpainted: at every step the
    masked frames of x_t are replaced by the noised known motion (one noise draw per call). The
    returned x0 there is the model's own prediction, which stays close to `known`.
    The denoiser runs in eval mode; its previous mode is restored afterwards.
    """
    batch, frames, features = shape
    device = _cond_device(cond)
    step_kwargs: dict[str, Any] = {}
    if isinstance(scheduler, DDIMScheduler):
        step_kwargs["eta"] = eta
    elif eta != 0.0:
        raise ValueError(f"eta={eta} needs the DDIM sampler, got {type(scheduler).__name__}")
    guided = guidance_scale != 1.0
    if guided:
        cond = {k: torch.cat([v, v]) for k, v in cond.items()}
        drop = torch.arange(2 * batch, device=device) >= batch
    else:
        drop = torch.zeros(batch, dtype=torch.bool, device=device)
    if known is not None:
        if known_mask is None:
            raise ValueError("known motion given without known_mask")
        if float(scheduler.init_noise_sigma) != 1.0:
            # The known frames are noised by the variance-preserving forward process.
            raise ValueError(
                f"inpainting known frames needs a variance-preserving sampler (DDIM, DPM-Solver),"
                f" not {type(scheduler).__name__}"
            )
        mask = known_mask.to(device=device, dtype=torch.bool).expand(batch, frames).unsqueeze(-1)
        # One noise draw per clip keeps the known frames on a single deterministic trajectory.
        known_noise = randn_tensor(shape, generator=generator, device=device, dtype=known.dtype)

    # Reset the scheduler: multistep solvers keep state between calls.
    scheduler.set_timesteps(scheduler.num_inference_steps or scheduler.config.num_train_timesteps)
    x = randn_tensor(shape, generator=generator, device=device) * scheduler.init_noise_sigma
    x0 = x
    with _eval_mode(denoiser):
        ctx = denoiser.encode_condition(cond, drop) if use_cache else None
        for t in scheduler.timesteps:
            t_batch = torch.full((batch,), int(t), dtype=torch.long, device=device)
            if known is not None:
                x = torch.where(mask, q_sample(scheduler, known, known_noise, t_batch), x)
            step_ctx = ctx if use_cache else denoiser.encode_condition(cond, drop)
            # Sigma-based schedulers (Euler, Heun) keep x unscaled; the denoiser was trained on
            # the variance-preserving x_t that scale_model_input gives (identity for DDIM, DPM).
            x_in = scheduler.scale_model_input(x, t)
            if guided:
                out_cond, out_uncond = denoiser.denoise(
                    torch.cat([x_in, x_in]), torch.cat([t_batch, t_batch]), step_ctx
                ).chunk(2)
                x0 = out_uncond + guidance_scale * (out_cond - out_uncond)
            else:
                x0 = denoiser.denoise(x_in, t_batch, step_ctx)
            x = scheduler.step(x0, t, x, generator=generator, **step_kwargs).prev_sample
    # Upstream returns the last x0 prediction (pred_xstart), not x after the final step.
    return x0


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


def sample_long(
    denoiser: ConditionalDenoiser,
    scheduler: Scheduler,
    cond: Mapping[str, Tensor] | Callable[[int, int], Condition],
    *,
    shape: tuple[int, int, int],
    window: int = 600,
    overlap: int = 60,
    guidance_scale: float = 1.0,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    eta: float = 0.0,
) -> Tensor:
    """Sample a clip of any length (B, T, F) as overlapping windows of at most `window` frames.

    Each window after the first is inpainted: its first `overlap` frames of x_t are replaced at
    every step by the noised result of the previous window, so the denoiser sees the past and the
    new frames continue it (independent windows jump at every seam). The window's own prediction
    of the overlap then cross-fades linearly into the previous result, which removes the small
    step left where the replaced frames meet the generated ones (tests/models/test_diffusion.py
    measures both seams). `cond` is a clip-length dict (cut with `slice_condition`) or a function
    (start, length) -> dict.
    """
    batch, num_frames, features = shape
    cond_at = cond if callable(cond) else lambda s, n: slice_condition(cond, s, n)
    out: Tensor | None = None
    for start in window_starts(num_frames, window, overlap):
        length = min(window, num_frames - start)
        window_cond = cond_at(start, length)
        known = known_mask = None
        if start > 0:
            known = torch.zeros(batch, length, features, device=out.device, dtype=out.dtype)
            known[:, :overlap] = out[:, start : start + overlap]
            known_mask = torch.arange(length, device=out.device) < overlap
        x0 = sample(
            denoiser,
            scheduler,
            window_cond,
            shape=(batch, length, features),
            guidance_scale=guidance_scale,
            generator=generator,
            use_cache=use_cache,
            eta=eta,
            known=known,
            known_mask=known_mask,
        )
        if out is None:
            out = x0.new_zeros(shape)
        else:
            fade_in = torch.arange(1, overlap + 1, device=x0.device, dtype=x0.dtype) / (overlap + 1)
            fade_in = fade_in.view(1, -1, 1)
            previous = out[:, start : start + overlap]
            x0[:, :overlap] = (1 - fade_in) * previous + fade_in * x0[:, :overlap]
        out[:, start : start + length] = x0
    return out
