"""Training hyper-parameters, checked once at start-up so that every parameter is used."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_INT_FIELDS = (
    "steps",
    "batch_size",
    "warmup_steps",
    "log_every",
    "checkpoint_every",
    "keep_checkpoints",
    "seed",
    "processes",
)
_FLOAT_FIELDS = ("lr", "weight_decay", "lr_gamma")
_OPTIONAL_FLOAT_FIELDS = ("grad_clip_norm", "ema_decay")
_BOOL_FIELDS = ("bf16", "tf32", "fused_adamw", "compile")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
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

    steps: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    grad_clip_norm: float | None = None
    ema_decay: float | None = None
    log_every: int = 10
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "auto"
    processes: int = 1
    bf16: bool = True
    tf32: bool = True
    fused_adamw: bool = True
    compile: bool = False

    def __post_init__(self) -> None:
        # YAML gives lists, and strings for "1e-4": coerce once here so the loop sees one type.
        for name in _INT_FIELDS:
            self._set(name, _as_int(name, getattr(self, name)))
        for name in _FLOAT_FIELDS:
            self._set(name, _as_float(name, getattr(self, name)))
        for name in _BOOL_FIELDS:
            self._set(name, _as_bool(name, getattr(self, name)))
        for name in _OPTIONAL_FLOAT_FIELDS:
            value = getattr(self, name)
            self._set(name, None if value is None else _as_float(name, value))
        self._set("betas", tuple(_as_float("betas", b) for b in _as_sequence("betas", self.betas)))
        self._set(
            "lr_milestones",
            tuple(
                _as_int("lr_milestones", m)
                for m in _as_sequence("lr_milestones", self.lr_milestones)
            ),
        )
        if not isinstance(self.device, str):
            raise ValueError(f"training parameter 'device' must be a string, got {self.device!r}")
        self._validate()

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _validate(self) -> None:
        checks = [
            ("steps", self.steps >= 1, "must be >= 1"),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("lr", self.lr > 0, "must be > 0"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            (
                "betas",
                len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
                "must be two values in [0, 1)",
            ),
            ("warmup_steps", self.warmup_steps >= 0, "must be >= 0"),
            (
                "lr_milestones",
                all(m >= 1 for m in self.lr_milestones)
                and list(self.lr_milestones) == sorted(set(self.lr_milestones)),
                "must be strictly increasing step numbers >= 1",
            ),
            ("lr_gamma", self.lr_gamma > 0, "must be > 0"),
            (
                "grad_clip_norm",
                self.grad_clip_norm is None or self.grad_clip_norm > 0,
                "must be > 0 or null",
            ),
            (
                "ema_decay",
                self.ema_decay is None or 0 < self.ema_decay < 1,
                "must be in (0, 1) or null",
            ),
            ("log_every", self.log_every >= 1, "must be >= 1"),
            ("checkpoint_every", self.checkpoint_every >= 1, "must be >= 1"),
            ("keep_checkpoints", self.keep_checkpoints >= 1, "must be >= 1"),
            ("seed", self.seed >= 0, "must be >= 0"),
            ("processes", self.processes >= 1, "must be >= 1"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"training parameter {name!r} {rule}, got {getattr(self, name)!r}")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainConfig:
        """Build from a parameters mapping, rejecting unknown keys and reporting missing ones."""
        if not isinstance(params, Mapping):
            raise ValueError(f"training parameters must be a mapping, got {type(params).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - set(fields))
        missing = sorted(
            name
            for name, f in fields.items()
            if f.default is dataclasses.MISSING and name not in params
        )
        problems = []
        if unknown:
            problems.append(f"unknown key(s) {unknown}")
        if missing:
            problems.append(f"missing required key(s) {missing}")
        if problems:
            raise ValueError(
                f"training parameters: {'; '.join(problems)} (allowed keys: {sorted(fields)})"
            )
        return cls(**params)


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    return _fail(name, "an integer", value)


def _as_bool(name: str, value: Any) -> bool:
    # Kedro's --params gives "true"/"false" as strings.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return _fail(name, "true or false", value)


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return _fail(name, "a number", value)


def _as_sequence(name: str, value: Any) -> tuple:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return _fail(name, "a list", value)
    return tuple(value)


def _fail(name: str, kind: str, value: Any) -> Any:
    raise ValueError(f"training parameter {name!r} must be {kind}, got {value!r}")
