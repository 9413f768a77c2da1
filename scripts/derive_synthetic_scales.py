"""Derive the synthetic person's per-dimension scales from one upstream data_stats.pth.

Usage: python scripts/derive_synthetic_scales.py ../shared/upstream-data/RLW104/data_stats.pth

Writes src/audio2photoreal_pipelines/data/synthetic_scales.npz, which ships with the package so that
the generator never reads ../shared at run time.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from audio2photoreal_pipelines.data.synthetic import SCALE_KEYS, write_npz_atomic

# The pickle names numpy 1.x's module path; numpy 2 moved the function, so list it by that name.
_SAFE_GLOBALS = [
    (np._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    np.dtypes.Float64DType,
    np.dtypes.Float32DType,
]
_PACKAGE_DATA = Path(__file__).resolve().parents[1] / "src" / "audio2photoreal_pipelines" / "data"
_OUT = _PACKAGE_DATA / "synthetic_scales.npz"


def derive_scales(stats_path: Path) -> dict[str, np.ndarray]:
    """Read the upstream stats with a restricted unpickler and keep the keys the generator uses."""
    with torch.serialization.safe_globals(_SAFE_GLOBALS):
        stats = torch.load(stats_path, weights_only=True)
    missing = [key for key in SCALE_KEYS if key not in stats]
    if missing:
        raise KeyError(f"{stats_path}: missing keys {missing}")
    return {key: np.asarray(stats[key]) for key in SCALE_KEYS}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stats_path", type=Path, help="an upstream dataset/<ID>/data_stats.pth")
    parser.add_argument("--out", type=Path, default=_OUT, help="where to write the npz")
    args = parser.parse_args()
    write_npz_atomic(args.out, derive_scales(args.stats_path))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
