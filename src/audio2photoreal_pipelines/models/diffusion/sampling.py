"""Guided sampling of one window, and of clips of any length as overlapping windows."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from diffusers import DDIMScheduler
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor, nn

from .denoiser import ConditionalDenoiser
from .schedules import Scheduler, q_sample
from .windowing import Condition, slice_condition, window_starts


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
