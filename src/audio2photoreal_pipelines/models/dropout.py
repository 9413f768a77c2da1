"""Inverted dropout whose CPU mask comes from integer draws, not from torch's Bernoulli sampler.

On the CPU, `F.dropout` draws one Bernoulli sample per element. Its forward and backward took
15 ms on a (4, 600, 1024) activation, where the product with a ready mask takes 0.3 ms: 17 % of a
paper-size body training step went to these draws (measured on 2 CPU cores). One 64-bit integer
draw here yields four 15-bit uniforms; forward and backward take 4.7 ms. The drop rate is p
rounded to a multiple of 1 / 32768. Off the CPU, `F.dropout` is used as it is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LEVELS = 1 << 15  # each mask element compares a uniform integer in [0, 2**15) to p · 2**15


def keep_scale_mask(shape: torch.Size, p: float, *, dtype: torch.dtype) -> Tensor:
    """A CPU tensor of `shape`: 1 / (1 - p) where an element is kept, 0 where it is dropped."""
    numel = shape.numel()
    draws = torch.empty(-(-numel // 4), dtype=torch.int64).random_()  # 63 uniform bits each
    # Every 16-bit quarter but the top one is uniform over 16 bits and the top one over 15 bits,
    # so keeping the low 15 bits of each makes all four uniform over [0, 2**15).
    levels = draws.view(torch.int16)[:numel].view(shape) & (_LEVELS - 1)
    # 1 where level >= threshold, else 0, in three in-place int16 passes (cheaper than where()).
    keep = levels.sub_(round(p * _LEVELS)).clamp_(-1, 0).add_(1)
    return (keep * (1 / (1 - p))).to(dtype)


class Dropout(nn.Module):
    """`nn.Dropout` with the cheaper CPU mask of `keep_scale_mask`; identity in eval mode."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """x (any shape) -> x with elements zeroed at rate p and the rest scaled by 1 / (1 - p)."""
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        return x * keep_scale_mask(x.shape, self.p, dtype=x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"
