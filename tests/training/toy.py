"""A toy regression problem whose training touches every RNG the loop checkpoints."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import Tensor, nn

from audio2photoreal_pipelines.training import TrainConfig

TRUE_WEIGHTS = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])

# Resume test: warm-up ends before, and a milestone falls after, the first checkpoint; log steps
# (every 4) do not line up with checkpoints (every 10), so a partial interval is checkpointed.
RESUME_CONFIG = TrainConfig(
    steps=30,
    batch_size=8,
    lr=1e-2,
    warmup_steps=5,
    lr_milestones=(20,),
    lr_gamma=0.5,
    grad_clip_norm=1.0,
    ema_decay=0.9,
    log_every=4,
    checkpoint_every=10,
    keep_checkpoints=2,
    seed=3,
    device="cpu",
)


def make_model(*, dropout: float = 0.2) -> nn.Module:
    """A small MLP with fixed initial weights (dropout draws from the global torch RNG)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1))


def sample_batch(batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
    """Random inputs (B, 4) and their linear targets (B, 1)."""
    x = torch.randn(batch_size, 4, generator=generator)
    return {"x": x, "y": x @ TRUE_WEIGHTS}


def loss_fn(
    model: nn.Module, batch: dict[str, Tensor], generator: torch.Generator
) -> tuple[Tensor, dict[str, Tensor]]:
    """MSE on noisy, sometimes dropped inputs, like diffusion noise and condition dropout."""
    x = batch["x"]
    noise = 0.1 * torch.randn(x.shape, generator=generator, device=generator.device)
    keep = torch.rand(x.shape[0], 1, generator=generator, device=generator.device) > 0.1
    # numpy and python randomness too, to prove their states are restored on resume.
    scale = 1.0 + 0.01 * random.random() + 0.01 * float(np.random.rand())
    mse = ((model((x + noise) * keep) - batch["y"]) ** 2).mean()
    return mse * scale, {"mse": mse.detach()}
