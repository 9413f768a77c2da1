"""The learning-rate schedule: linear warm-up, then step decay at milestones."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR

from audio2photoreal_pipelines.training.config import TrainConfig


def lr_factor(config: TrainConfig) -> Callable[[int], float]:
    """Multiplier of the base lr for update ``updates_done + 1`` (LambdaLR's ``last_epoch``)."""
    warmup, milestones, gamma = config.warmup_steps, config.lr_milestones, config.lr_gamma

    def factor(updates_done: int) -> float:
        ramp = min(1.0, (updates_done + 1) / warmup) if warmup else 1.0
        # Like MultiStepLR: the decay applies from the update after each milestone.
        return ramp * gamma ** bisect_right(milestones, updates_done)

    return factor


def build_optimizer(
    model: torch.nn.Module, config: TrainConfig
) -> tuple[torch.optim.AdamW, LambdaLR]:
    """AdamW over every parameter, with the warm-up and milestone schedule of `config`.

    With ``config.fused_adamw`` and every parameter on CUDA, the update runs as fused kernels.
    """
    parameters = list(model.parameters())
    fused = config.fused_adamw and all(p.device.type == "cuda" for p in parameters)
    optimizer = torch.optim.AdamW(
        parameters,
        lr=config.lr,
        betas=config.betas,
        weight_decay=config.weight_decay,
        fused=fused or None,
    )
    return optimizer, LambdaLR(optimizer, lr_factor(config))
