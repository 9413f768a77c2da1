"""Diagnostic figures; each function returns a matplotlib Figure and writes no file.

Figures are built with ``matplotlib.figure.Figure`` directly (rendered by Agg on save), so no
pyplot state or GUI backend is touched and figures are freed with their last reference.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from audio2photoreal_pipelines.units import FPS, KEYFRAME_STRIDE, SAMPLES_PER_FRAME


def plot_trajectories(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    sample: int = 0,
    num_dims: int = 4,
    fps: int = FPS,
    title: str = "trajectories",
) -> Figure:
    """Predicted (R, S, T, F) vs GT (S, T, F) over time for the GT's highest-variance dims."""
    dims = most_active_dims(gt, num_dims)
    time = np.arange(gt.shape[1]) / fps
    fig = Figure(figsize=(8, 1.8 * len(dims)), layout="constrained")
    axes = fig.subplots(len(dims), 1, sharex=True, squeeze=False)[:, 0]
    for ax, d in zip(axes, dims, strict=True):
        for r in range(pred.shape[0]):
            ax.plot(
                time,
                pred[r, sample, :, d],
                color="tab:orange",
                alpha=0.5,
                lw=1,
                label="predicted" if r == 0 else None,
            )
        ax.plot(time, gt[sample, :, d], color="black", lw=1.5, label="GT")
        ax.set_ylabel(f"dim {d}")
    axes[0].legend(loc="upper right", fontsize="small")
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"{title} (sample {sample})")
    return fig


def plot_body_strokes(
    pred: np.ndarray,
    gt: np.ndarray,
    guide_poses: np.ndarray,
    stroke_frames: np.ndarray | None,
    *,
    sample: int = 0,
    num_dims: int = 4,
    keyframe_step: int = KEYFRAME_STRIDE,
    fps: int = FPS,
) -> Figure:
    """Body pred (R, S, T, F) and GT (S, T, F) with the guide poses (R, S, K, F) at their frames
    and the true stroke starts (frames of the sample's clip) as vertical lines.

    The dims are the GT's fastest-moving ones, where strokes show.
    """
    dims = most_active_dims(np.diff(gt, axis=1), num_dims)
    time = np.arange(gt.shape[1]) / fps
    key_time = np.arange(guide_poses.shape[2]) * keyframe_step / fps
    fig = Figure(figsize=(10, 1.9 * len(dims)), layout="constrained")
    axes = fig.subplots(len(dims), 1, sharex=True, squeeze=False)[:, 0]
    for ax, d in zip(axes, dims, strict=True):
        for frame in [] if stroke_frames is None else stroke_frames:
            ax.axvline(frame / fps, color="tab:green", alpha=0.35, lw=1)
        for r in range(pred.shape[0]):
            first = r == 0
            ax.plot(
                time,
                pred[r, sample, :, d],
                color="tab:orange",
                alpha=0.5,
                lw=1,
                label="predicted" if first else None,
            )
            ax.plot(
                key_time,
                guide_poses[r, sample, :, d],
                "o",
                ms=3,
                color="tab:blue",
                alpha=0.6,
                label="guide poses" if first else None,
            )
        ax.plot(time, gt[sample, :, d], color="black", lw=1.5, label="GT")
        ax.set_ylabel(f"dim {d}")
    axes[0].plot([], [], color="tab:green", alpha=0.35, label="true stroke starts")
    axes[0].legend(loc="upper right", fontsize="small", ncol=4)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"body, strokes and guide poses (sample {sample})")
    return fig


def plot_face_pca(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    max_points: int = 2000,
    seed: int = 0,
) -> Figure:
    """Face codes pred (R, S, T, F) and GT (S, T, F) in the GT's first two principal axes."""
    gt_frames = gt[valid] if valid is not None else gt.reshape(-1, gt.shape[-1])
    pred_frames = pred.reshape(-1, pred.shape[-1])
    mean = gt_frames.mean(axis=0)
    _, _, vt = np.linalg.svd(gt_frames - mean, full_matrices=False)
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.subplots()
    for frames, label, color in (
        (gt_frames, "GT", "black"),
        (pred_frames, "predicted", "tab:orange"),
    ):
        keep = rng.permutation(frames.shape[0])[:max_points]
        xy = (frames[keep] - mean) @ vt[:2].T
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.4, color=color, label=label)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(loc="upper right")
    ax.set_title("face codes, GT principal axes")
    return fig


def plot_lip_sync(
    envelope: np.ndarray, true_lip: np.ndarray, pred_lip: np.ndarray, *, fps: int = FPS
) -> Figure:
    """Audio envelope (T,) against the true lip driver (T,) and predicted ones (T,) or (R, T)."""
    time = np.arange(true_lip.shape[-1]) / fps
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax_env, ax_lip = fig.subplots(2, 1, sharex=True)
    ax_env.plot(time, envelope, color="tab:gray")
    ax_env.set_ylabel("audio envelope")
    preds = np.atleast_2d(pred_lip)
    for r, lip in enumerate(preds):
        ax_lip.plot(
            time, lip, color="tab:orange", alpha=0.6, lw=1, label="predicted" if r == 0 else None
        )
    ax_lip.plot(time, true_lip, color="black", lw=1.5, label="true")
    ax_lip.set_ylabel("lip driver")
    ax_lip.set_xlabel("time (s)")
    ax_lip.legend(loc="upper right", fontsize="small")
    return fig


def plot_rep_spread(preds: Mapping[str, np.ndarray], *, fps: int = FPS) -> Figure:
    """Per-frame std across reps of each method's (R, S, T, F), mean over samples and dims."""
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax = fig.subplots()
    for name, pred in preds.items():
        spread = pred.std(axis=0).mean(axis=(0, 2))
        ax.plot(np.arange(spread.shape[0]) / fps, spread, label=name)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("std across repetitions")
    ax.legend(loc="upper right", fontsize="small")
    return fig


def frame_envelope(wave: np.ndarray, *, samples_per_frame: int = SAMPLES_PER_FRAME) -> np.ndarray:
    """RMS of a mono waveform (N,) per motion frame: (N // samples_per_frame,)."""
    frames = wave[: wave.shape[0] // samples_per_frame * samples_per_frame]
    return np.sqrt((frames.reshape(-1, samples_per_frame) ** 2).mean(axis=1))


def most_active_dims(gt: np.ndarray, num_dims: int) -> np.ndarray:
    """Indices of the ``num_dims`` dims with the highest GT variance, highest first."""
    var = gt.reshape(-1, gt.shape[-1]).var(axis=0)
    return np.argsort(var)[::-1][:num_dims]
