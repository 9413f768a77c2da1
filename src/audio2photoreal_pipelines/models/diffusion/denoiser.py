"""The interface of an x0-predicting denoiser, and its classifier-free condition dropout."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn


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


def draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
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
        batch_size, num_groups, generator=generator, device=draw_device(generator, device)
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
