"""The one place a torch device is chosen, and the mixed precision that goes with it."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch


def select_device(preference: str = "auto") -> torch.device:
    """Return the device to train on: "auto" is CUDA when available, else CPU."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(preference)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {preference!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {preference!r} was requested but CUDA is not available "
                f"(torch {torch.__version__}); use device 'auto' or 'cpu'"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {preference!r} was requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) are visible"
            )
    return device


def autocast_context(device: torch.device, *, bf16: bool = True) -> AbstractContextManager:
    """bf16 autocast on CUDA (weights and optimizer state stay fp32); a no-op on CPU."""
    if device.type == "cuda" and bf16:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def set_tf32(device: torch.device, enabled: bool) -> None:
    """Let CUDA matmuls and convolutions use TF32 (10-bit mantissa inputs, fp32 accumulation)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled
