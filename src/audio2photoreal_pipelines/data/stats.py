"""data_stats: compute on the train split (streaming), load/save the upstream ``.pth`` format.

The upstream file is a torch zip archive holding one pickled dict of numpy arrays. It is read
with ``torch.load(weights_only=True)`` plus a minimal numpy allow-list, never a free unpickle.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audio2photoreal_pipelines.atomic import atomic_write
from audio2photoreal_pipelines.data.scenes import NUM_CHANNELS, Scene
from audio2photoreal_pipelines.units import BODY_DIM, FACE_DIM

REQUIRED_SHAPES: dict[str, tuple[int, ...]] = {
    "pose_mean": (BODY_DIM,),
    "pose_std": (BODY_DIM,),
    "pose_std_flat": (1,),
    "code_mean": (FACE_DIM,),
    "code_std": (FACE_DIM,),
    "code_std_flat": (1,),
    "audio_mean": (NUM_CHANNELS,),
    "audio_std": (NUM_CHANNELS,),
    "audio_std_flat": (1,),
}

_MOTION_CHUNK_ROWS = 16_384  # (16384, 256) float64 = 32 MiB per chunk
_AUDIO_BLOCK = 480_000  # 10 s at 48 kHz

_reconstruct = np._core.multiarray._reconstruct
# Exactly what a dict of float/int numpy arrays pickles to. Upstream files were written by
# numpy 1.x and name ``numpy.core.multiarray._reconstruct``; numpy 2 writes ``numpy._core``.
_SAFE_GLOBALS = [
    _reconstruct,
    (_reconstruct, "numpy.core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    np.dtypes.Float64DType,
    np.dtypes.Float32DType,
    np.dtypes.Int64DType,
]


class DataStatsError(ValueError):
    """A data_stats file is unreadable, unsafe or incomplete; the message names the file."""


class _Moments:
    """Per-dimension running mean and M2 (Chan et al. merge), accumulated in float64."""

    def __init__(self, dim: int) -> None:
        self.count = 0
        self.mean = np.zeros(dim, dtype=np.float64)
        self.m2 = np.zeros(dim, dtype=np.float64)

    def update(self, chunk: np.ndarray) -> None:
        """Add rows of ``chunk`` (N, dim)."""
        chunk = np.asarray(chunk, dtype=np.float64)
        n_b = chunk.shape[0]
        if n_b == 0:
            return
        mean_b = chunk.mean(axis=0)
        m2_b = np.square(chunk - mean_b).sum(axis=0)
        total = self.count + n_b
        delta = mean_b - self.mean
        self.mean += delta * (n_b / total)
        self.m2 += m2_b + np.square(delta) * (self.count * n_b / total)
        self.count = total

    def mean_std(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean (dim,), std (dim,), std_flat (1,)): population stds, std_flat pooled over dims."""
        std = np.sqrt(self.m2 / self.count)
        return self.mean.copy(), std, pooled_std(self.mean, std)


def pooled_std(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Std of all values pooled over dims with equal counts: sqrt(mean(std²) + var(mean)), (1,)."""
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    return np.sqrt([np.mean(np.square(std)) + np.var(mean)])


def compute_data_stats(
    scenes: dict[str, Scene],
    face_masks: dict[str, np.ndarray],
    train_names: list[str],
) -> dict[str, np.ndarray]:
    """Stats of the train scenes, missing face frames left out of code_*; streams from disk."""
    if not train_names:
        raise ValueError("compute_data_stats needs at least one train scene")
    unknown = [n for n in train_names if n not in scenes or n not in face_masks]
    if unknown:
        raise KeyError(f"train scenes without a scene or face mask: {unknown}")
    pose, code, audio = _Moments(BODY_DIM), _Moments(FACE_DIM), _Moments(NUM_CHANNELS)
    for name in train_names:
        scene, mask = scenes[name], np.asarray(face_masks[name], dtype=bool)
        if mask.shape != (scene.num_frames,):
            raise ValueError(f"{name}: face mask shape {mask.shape} != ({scene.num_frames},)")
        for start in range(0, scene.num_frames, _MOTION_CHUNK_ROWS):
            rows = slice(start, start + _MOTION_CHUNK_ROWS)
            pose.update(scene.body_pose[rows])
            code.update(scene.face_expression[rows][mask[rows]])
        for block in sf.blocks(
            scene.audio_path, blocksize=_AUDIO_BLOCK, dtype="float32", always_2d=True
        ):
            audio.update(block)
    if code.count == 0:
        raise ValueError(f"every face frame of the train scenes {train_names} is missing")
    pose_mean, pose_std, pose_flat = pose.mean_std()
    code_mean, code_std, code_flat = code.mean_std()
    audio_mean, audio_std, audio_flat = audio.mean_std()
    return {
        "pose_mean": pose_mean,
        "pose_std": pose_std,
        "pose_std_flat": pose_flat,
        "code_mean": code_mean,
        "code_std": code_std,
        "code_std_flat": code_flat,
        "audio_mean": audio_mean.astype(np.float32),
        "audio_std": audio_std.astype(np.float32),
        "audio_std_flat": audio_flat.astype(np.float32),
    }


def check_data_stats(stats: object, *, source: str) -> None:
    """Raise ``DataStatsError`` unless ``stats`` has the 9 core keys with the right shapes."""
    if not isinstance(stats, dict):
        raise DataStatsError(
            f"{source}: expected a dict of numpy arrays, got {type(stats).__name__}"
        )
    missing = [key for key in REQUIRED_SHAPES if key not in stats]
    if missing:
        raise DataStatsError(f"{source}: missing key(s) {missing}")
    for key, shape in REQUIRED_SHAPES.items():
        value = stats[key]
        if not isinstance(value, np.ndarray):
            raise DataStatsError(f"{source}: {key} is {type(value).__name__}, not a numpy array")
        if value.shape != shape:
            raise DataStatsError(f"{source}: {key} expected shape {shape}, got {value.shape}")
        if not np.issubdtype(value.dtype, np.floating) or not np.isfinite(value).all():
            raise DataStatsError(f"{source}: {key} must be finite floats")
        if key.endswith(("_std", "_std_flat")) and (value < 0).any():
            raise DataStatsError(f"{source}: {key} has negative values")


def data_stats_to_bytes(stats: dict[str, np.ndarray]) -> bytes:
    """Serialise in the upstream format (torch archive of a plain dict of numpy arrays)."""
    check_data_stats(stats, source="data_stats to save")
    buffer = io.BytesIO()
    torch.save({key: np.asarray(value) for key, value in stats.items()}, buffer)
    return buffer.getvalue()


_TORCH_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation")


def _reason(err: Exception) -> str:
    """The informative line of a torch.load error, without its generic advice."""
    for line in str(err).splitlines():
        line = line.strip()
        if line and not line.startswith(_TORCH_BOILERPLATE):
            return line
    return type(err).__name__


def data_stats_from_bytes(data: bytes, *, source: str) -> dict[str, np.ndarray]:
    """Parse upstream-format bytes with the restricted unpickler; ``source`` names the file."""
    try:
        with torch.serialization.safe_globals(_SAFE_GLOBALS):
            stats = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as err:  # any parse failure means "not a safe data_stats archive"
        raise DataStatsError(
            f"{source}: not a readable data_stats archive or it pickles a forbidden type "
            f"({_reason(err)})"
        ) from None
    check_data_stats(stats, source=source)
    return stats


def load_data_stats(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an upstream ``data_stats.pth`` (extra keys such as ``facekp_*`` are kept)."""
    path = Path(path)
    if not path.is_file():
        raise DataStatsError(f"{path}: data_stats file does not exist")
    return data_stats_from_bytes(path.read_bytes(), source=str(path))


def save_data_stats(stats: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Write ``stats`` in the upstream format, whole or not at all (`atomic_write`)."""
    payload = data_stats_to_bytes(stats)
    with atomic_write(path) as handle:
        handle.write(payload)


def _fmt(values: np.ndarray) -> str:
    return ", ".join(f"{v:.4g}" for v in np.asarray(values).ravel())


def summarise_stats(
    stats: dict[str, np.ndarray], *, splits: dict[str, list[str]] | None = None
) -> str:
    """A short markdown summary of the stats (and split sizes when given)."""
    lines = ["## data_stats", "", "| key | shape | dtype | min | max |", "|---|---|---|---|---|"]
    for key in sorted(stats):
        value = np.asarray(stats[key])
        lines.append(
            f"| {key} | {tuple(value.shape)} | {value.dtype} | {value.min():.4g} | "
            f"{value.max():.4g} |"
        )
    lines.append("")
    for prefix in ("pose", "code", "audio"):
        std = np.asarray(stats[f"{prefix}_std"])
        lines.append(
            f"- **{prefix}**: std_flat {_fmt(stats[f'{prefix}_std_flat'])}; "
            f"std range [{std.min():.4g}, {std.max():.4g}]; "
            f"mean[:4] = [{_fmt(np.asarray(stats[f'{prefix}_mean'])[:4])}]"
        )
    if splits is not None:
        lines += ["", "## splits", "", "| split | scenes | names |", "|---|---|---|"]
        for split, names in splits.items():
            lines.append(f"| {split} | {len(names)} | {', '.join(names)} |")
    return "\n".join(lines) + "\n"
