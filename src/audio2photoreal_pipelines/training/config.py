"""Training hyper-parameters (``params:<model>.train``), checked before the first node runs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from audio2photoreal_pipelines.parameter_block import Count, ParameterBlock, PositiveCount, Switch

Probability = Annotated[float, Field(ge=0, lt=1)]


class TrainConfig(ParameterBlock):
    """Optimisation settings shared by the VQ-VAE, guide, face and body trainers.

    Learning rate for update ``k`` (1-based): ``lr * warm-up(k) * lr_gamma ** #{m in lr_milestones:
    m < k}``, where warm-up(k) = ``min(1, k / warmup_steps)`` (1 when ``warmup_steps`` is 0).
    ``batch_size`` is per process; ``seed`` drives data order, loss noise, dropout and numpy/python
    randomness (offset per rank). ``ema_decay=None`` disables the EMA of the weights.
    ``processes`` > 1 trains data-parallel in that many local processes (`training.distributed`),
    each drawing ``batch_size`` windows: the global batch is ``processes * batch_size``.
    On CUDA only: ``bf16`` autocast (weights and optimizer state stay fp32), ``tf32`` matmuls and
    ``fused_adamw``. ``compile`` wraps the module in ``torch.compile`` on any device.
    """

    steps: PositiveCount
    batch_size: PositiveCount
    lr: Annotated[float, Field(gt=0)]
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    betas: tuple[Probability, Probability] = (0.9, 0.999)
    warmup_steps: Count = 0
    lr_milestones: tuple[PositiveCount, ...] = ()
    lr_gamma: Annotated[float, Field(gt=0)] = 0.1
    grad_clip_norm: Annotated[float, Field(gt=0)] | None = None
    ema_decay: Annotated[float, Field(gt=0, lt=1)] | None = None
    log_every: PositiveCount = 10
    checkpoint_every: PositiveCount = 100
    keep_checkpoints: PositiveCount = 2
    seed: Count = 0
    device: str = "auto"
    processes: PositiveCount = 1
    bf16: Switch = True
    tf32: Switch = True
    fused_adamw: Switch = True
    compile: Switch = False

    @model_validator(mode="after")
    def _milestones_increase(self) -> TrainConfig:
        if list(self.lr_milestones) != sorted(set(self.lr_milestones)):
            raise ValueError(
                f"lr_milestones must be strictly increasing step numbers, got "
                f"{list(self.lr_milestones)}"
            )
        return self
