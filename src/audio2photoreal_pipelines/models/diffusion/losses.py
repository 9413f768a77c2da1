"""The diffusion training loss: masked x0 MSE plus a velocity term."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from diffusers import DDPMScheduler
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor

from .denoiser import ConditionalDenoiser, draw_device
from .schedules import q_sample


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
    t = torch.randint(
        0,
        scheduler.config.num_train_timesteps,
        (x0.shape[0],),
        generator=generator,
        device=draw_device(generator, x0.device),
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
