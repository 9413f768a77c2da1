"""Seeding and capture/restore of every random number generator a training step may touch."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed for one (seed, rank, stream) combination; streams stay independent."""
    state = np.random.SeedSequence([seed, *keys]).generate_state(1, dtype=np.uint64)[0]
    return int(state) >> 1


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and every CUDA device), numpy's global RNG and python's `random`."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def capture_global_rng(device: torch.device) -> dict[str, Any]:
    """The global RNG states as tensors, lists and tuples (loadable with weights_only=True)."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": [name, key.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": random.getstate(),
    }


def restore_global_rng(state: dict[str, Any], device: torch.device) -> None:
    """Inverse of `capture_global_rng`."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    name, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
