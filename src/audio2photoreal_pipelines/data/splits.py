"""Train / val / test split by scene (upstream rule) and fixed test chunks."""

from __future__ import annotations

import numpy as np


def split_scenes(names: list[str], *, num_val: int = 2, num_test: int = 4) -> dict[str, list[str]]:
    """Sorted names: the last ``num_test`` are test, ``num_val`` before them val, the rest train."""
    if num_val < 0 or num_test < 0:
        raise ValueError(f"num_val and num_test must be >= 0, got {num_val} and {num_test}")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate scene names in {sorted(names)}")
    ordered = sorted(names)
    num_train = len(ordered) - num_val - num_test
    if num_train < 1:
        raise ValueError(
            f"need at least {num_val + num_test + 1} scenes for {num_val} val + {num_test} test "
            f"+ 1 train, got {len(ordered)}"
        )
    return {
        "train": ordered[:num_train],
        "val": ordered[num_train : num_train + num_val],
        "test": ordered[num_train + num_val :],
    }


def chunk_test_scenes(
    lengths: dict[str, int],
    test_names: list[str],
    *,
    chunk_frames: int = 600,
    seed: int = 10,
) -> list[dict]:
    """Cut test scenes into non-overlapping ``chunk_frames`` chunks, shuffled with ``seed``.

    Returns ``[{"scene": name, "start": s, "length": chunk_frames}, ...]``.
    """
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
    chunks = []
    for name in test_names:
        if name not in lengths:
            raise KeyError(f"test scene {name!r} has no length")
        # Upstream quirk fixed: it uses range(0, T - 600, 600), which drops the last full chunk
        # when T is a multiple of 600; the +1 keeps every chunk that fits.
        for start in range(0, int(lengths[name]) - chunk_frames + 1, chunk_frames):
            chunks.append({"scene": name, "start": start, "length": chunk_frames})
    # Upstream shuffles with the legacy global RNG; the order here differs but is as deterministic.
    order = np.random.default_rng(seed).permutation(len(chunks))
    return [chunks[i] for i in order]
