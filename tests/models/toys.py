"""Toy denoisers with exact posterior means, for testing the samplers."""

from __future__ import annotations

import torch
from torch import Tensor

from audio2photoreal_pipelines.models.diffusion.denoiser import ConditionalDenoiser
from audio2photoreal_pipelines.models.diffusion.schedules import make_training_scheduler


class GaussianToy(ConditionalDenoiser):
    """Exact E[x0 | x_t] for x0 ~ N(mu, std^2); mu = cond["mu"] (B, 1, 1) or 0 if dropped."""

    def __init__(self, std: float) -> None:
        super().__init__()
        abar = make_training_scheduler().alphas_cumprod.double()
        self.register_buffer("sqrt_abar", abar.sqrt().float())
        self.register_buffer("gain", (abar.sqrt() * std**2 / (abar * std**2 + 1 - abar)).float())
        self.batch_sizes: list[int] = []

    def encode_condition(self, cond: dict[str, Tensor], drop: Tensor) -> Tensor:
        return torch.where(drop.view(-1, 1, 1), torch.zeros_like(cond["mu"]), cond["mu"])

    def denoise(self, x_t: Tensor, t: Tensor, ctx: Tensor) -> Tensor:
        self.batch_sizes.append(x_t.shape[0])
        gain, sqrt_abar = self.gain[t].view(-1, 1, 1), self.sqrt_abar[t].view(-1, 1, 1)
        return ctx + gain * (x_t - sqrt_abar * ctx)


class SmoothCurveToy(ConditionalDenoiser):
    """Exact E[x0 | x_t] for x0 a zero-mean Gaussian process over frames (squared-exp kernel)."""

    def __init__(self, length_scale: float) -> None:
        super().__init__()
        self.register_buffer("abar", make_training_scheduler().alphas_cumprod.double())
        self.length_scale = length_scale

    def encode_condition(self, cond: dict[str, Tensor], drop: Tensor) -> None:
        return None

    def denoise(self, x_t: Tensor, t: Tensor, ctx: None) -> Tensor:
        frames = torch.arange(x_t.shape[1], dtype=torch.float64)
        kernel = torch.exp(-((frames[:, None] - frames[None]) ** 2) / (2 * self.length_scale**2))
        kernel = kernel + 1e-6 * torch.eye(len(frames), dtype=torch.float64)
        abar = self.abar[t].view(-1, 1, 1)
        system = abar * kernel + (1 - abar) * torch.eye(len(frames), dtype=torch.float64)
        x0 = abar.sqrt() * kernel @ torch.linalg.solve(system, x_t.double())
        return x0.to(x_t.dtype)
