"""Z-normalisation with data_stats, for numpy arrays and torch tensors alike."""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np
import torch

# Saved stats keep the true std; only dividing uses this floor, so an exactly constant
# dimension maps to 0 instead of inf/nan. Upstream's smallest real std is ~1.5e-3.
STD_FLOOR = 1e-8

_MOTION_KEYS = {"body": ("pose_mean", "pose_std"), "face": ("code_mean", "code_std")}

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _like(x: ArrayT, value: np.ndarray | torch.Tensor | float) -> ArrayT:
    if isinstance(x, torch.Tensor):
        return torch.as_tensor(np.asarray(value), dtype=x.dtype, device=x.device)
    return np.asarray(value, dtype=x.dtype)


def normalise(x: ArrayT, mean, std) -> ArrayT:
    """(x - mean) / max(std, STD_FLOOR) over the last dim; keeps x's type and dtype."""
    std = np.maximum(np.asarray(std, dtype=np.float64), STD_FLOOR)
    return (x - _like(x, mean)) / _like(x, std)


def denormalise(x: ArrayT, mean, std) -> ArrayT:
    """Inverse of ``normalise``: x * max(std, STD_FLOOR) + mean."""
    std = np.maximum(np.asarray(std, dtype=np.float64), STD_FLOOR)
    return x * _like(x, std) + _like(x, mean)


def motion_mean_std(
    stats: dict[str, np.ndarray], kind: Literal["body", "face"]
) -> tuple[np.ndarray, np.ndarray]:
    """The (mean, std) pair for ``kind``: pose_* for body (104,), code_* for face (256,)."""
    if kind not in _MOTION_KEYS:
        raise ValueError(f"kind must be 'body' or 'face', got {kind!r}")
    mean_key, std_key = _MOTION_KEYS[kind]
    return stats[mean_key], stats[std_key]


def audio_mean_std(stats: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Audio (mean (2,), std (1,)): per-channel mean with the one pooled std, as upstream does."""
    return stats["audio_mean"], stats["audio_std_flat"]
