"""Motion metrics as upstream ``utils/eval.py`` and EMAGE compute them, on RAW time-major arrays.

Shapes: predictions are ``(R, S, T, F)`` (repetitions, samples, frames, dims) or ``(N, T, F)``;
ground truth is ``(S, T, F)``. Body F = 104 joint angles, face F = 256 codes.

Readings of the definitions where the references leave room:

- Fréchet fits use ``np.cov(rowvar=False)`` (ddof = 1) as upstream. Upstream repeats the GT once
  per repetition before fitting; the GT is pooled here once (same mean, covariance within
  a factor (n - 1) / (R n - 1) of upstream's).
- Tr (Σ1 Σ2)^{1/2} is the nuclear norm of Σ2^{1/2} Σ1^{1/2} (SciPy ≥ 1.16 deprecated
  ``sqrtm(disp=False)``; this is also far more precise on ill-conditioned pose covariances).
  The 1e-6 diagonal jitter is retried only if that is non-finite, as upstream.
- ``div_g`` follows upstream ``calculate_diversity``: TWO independent draws of ``num_pairs``
  frame indices, each without replacement, paired position by position (so ``num_pairs`` pairs,
  not ``2 * num_pairs``). Upstream asserts more frames than pairs; here ``num_pairs`` is clamped
  to the number of frames instead, and the draw is seeded.
- ``masked_l2`` is the L2 norm of the error vector of each frame, averaged over valid frames
  and repetitions.
- Beat consistency uses the norm of the whole 104-d joint-angle velocity as one "joint" (the
  meaning of the 104 dims is not public, so no upper-body joint groups can be formed). As
  EMAGE: central-difference velocity, normalised by the GT mean speed, beats are strict local
  minima (order 7) above 0.1, kernel exp(-d² / 2σ²) averaged over audio onsets. Minima are
  found on the whole clip; then onsets and beats in the first/last 2 s are both dropped.
- ``stroke_response`` is this project's beat metric for the synthetic person, whose generator
  writes its true gesture-stroke starts: the pose speed in the 0.4 s after each stroke start over
  the clip's mean speed. On the synthetic person BC scores GT and Random alike (syllable onsets
  are so dense and σ so wide that any motion scores the same); this one tells them apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import argrelextrema, resample_poly

from audio2photoreal_pipelines.units import FPS, SAMPLE_RATE

STROKE_WINDOW = 12  # frames (0.4 s) after a stroke start in which its motion is fastest
_FD_EPS = 1e-6


def frechet_distance(x: np.ndarray, y: np.ndarray, *, eps: float = _FD_EPS) -> float:
    """Fréchet distance between Gaussian fits of ``x`` (n, F) and ``y`` (m, F)."""
    x, y = _as_samples(x, "x"), _as_samples(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"frechet_distance: dims differ, x has {x.shape[1]}, y has {y.shape[1]}")
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    s1 = np.atleast_2d(np.cov(x, rowvar=False))
    s2 = np.atleast_2d(np.cov(y, rowvar=False))
    tr_covmean = _trace_sqrt_product(s1, s2)
    if not np.isfinite(tr_covmean):
        # Upstream retries a non-finite square root with eps on both covariance diagonals.
        offset = np.eye(s1.shape[0]) * eps
        tr_covmean = _trace_sqrt_product(s1 + offset, s2 + offset)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fd_g(pred: np.ndarray, gt: np.ndarray) -> float:
    """FD between all GT frames and all predicted frames (pooled over reps, samples, time)."""
    return frechet_distance(_frames(gt), _frames(pred))


def fd_k(pred: np.ndarray, gt: np.ndarray) -> float:
    """FD between frame-to-frame differences x[t+1] - x[t] of GT and predictions."""
    return frechet_distance(_frames(np.diff(gt, axis=-2)), _frames(np.diff(pred, axis=-2)))


def div_g(pred: np.ndarray, *, num_pairs: int = 10_000, seed: int = 0) -> float:
    """Mean Euclidean distance between ``num_pairs`` random pairs of predicted frames."""
    frames = _frames(pred)
    n = min(num_pairs, frames.shape[0])
    rng = np.random.default_rng(seed)
    first = rng.choice(frames.shape[0], n, replace=False)
    second = rng.choice(frames.shape[0], n, replace=False)
    return float(np.linalg.norm(frames[first] - frames[second], axis=1).mean())


def div_k(pred: np.ndarray) -> float:
    """Variance over time of each sequence and dimension, averaged."""
    return float(np.var(pred, axis=-2).mean())


def div_sample(pred: np.ndarray) -> float:
    """Variance across the R repetitions of each (sample, frame, dim) entry, averaged."""
    if pred.ndim != 4:
        raise ValueError(f"div_sample: expected (R, S, T, F), got shape {pred.shape}")
    return float(np.var(pred.reshape(pred.shape[0], -1), axis=0).mean())


def face_fd(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """FD on face codes, frames pooled; only frames where the GT face is ``valid`` (S, T) count."""
    if valid is None:
        return fd_g(pred, gt)
    valid = np.asarray(valid, dtype=bool)
    pred_valid = np.broadcast_to(valid, pred.shape[:-1])
    return frechet_distance(gt[valid], pred[pred_valid])


def masked_l2(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Per-frame L2 norm of the error ``pred`` (R, S, T, F) - ``gt`` (S, T, F), mean over valid."""
    err = np.linalg.norm(pred - gt, axis=-1)
    if valid is None:
        return float(err.mean())
    mask = np.broadcast_to(np.asarray(valid, dtype=bool), err.shape)
    if not mask.any():
        raise ValueError("masked_l2: the valid mask has no True frame")
    return float(err[mask].mean())


def fit_lip_readout(face: np.ndarray, lip: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares affine readout lip ≈ face @ w + b from TRAIN face codes (n, F) and lip (n,).

    Fit and read in the same space (raw or normalised): with full column rank the fitted
    predictions are identical in either, since per-dim scaling is absorbed into w and b.
    """
    face = _as_samples(face, "face")
    lip = np.asarray(lip, dtype=np.float64).reshape(-1)
    if lip.shape[0] != face.shape[0]:
        raise ValueError(f"fit_lip_readout: {face.shape[0]} face frames but {lip.shape[0]} lips")
    design = np.concatenate([face, np.ones((face.shape[0], 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design, lip, rcond=None)
    return coef[:-1], float(coef[-1])


def read_lip(face: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """Project face codes (..., F) onto the lip readout: (..., )."""
    return face @ w + b


def lip_sync(pred_lip: np.ndarray, true_lip: np.ndarray) -> dict[str, float]:
    """Mean per-clip Pearson correlation and mean absolute error of lip drivers (..., T).

    ``pred_lip`` (R, S, T) broadcasts against ``true_lip`` (S, T). A constant clip has no
    defined correlation and scores 0 (no linear relation).
    """
    pred, true = np.broadcast_arrays(np.asarray(pred_lip, float), np.asarray(true_lip, float))
    pc = pred - pred.mean(axis=-1, keepdims=True)
    tc = true - true.mean(axis=-1, keepdims=True)
    denom = np.sqrt((pc**2).sum(axis=-1) * (tc**2).sum(axis=-1))
    # A constant clip read through the readout (the Mean baseline) keeps a ~1e-15 round-off
    # ripple whose "correlation" is noise: a spread under 1e-9 of the magnitude is constant.
    for x in (pred, true):
        denom = np.where(np.ptp(x, axis=-1) <= 1e-9 * np.abs(x).max(axis=-1), 0.0, denom)
    safe = np.where(denom > 0, denom, 1.0)
    corr = np.where(denom > 0, (pc * tc).sum(axis=-1) / safe, 0.0)
    return {"lip_corr": float(corr.mean()), "lip_err": float(np.abs(pred - true).mean())}


def pose_speed(motion: np.ndarray, *, fps: int = FPS) -> np.ndarray:
    """Norm of the central-difference velocity (per second) of motion (..., T, F): (..., T)."""
    return np.linalg.norm(np.gradient(motion, axis=-2) * fps, axis=-1)


def mean_velocity(motion: np.ndarray, *, fps: int = FPS) -> float:
    """Mean pose speed over all frames of (..., T, F) GT motion: the beat threshold's unit."""
    return float(pose_speed(motion, fps=fps).mean())


def motion_beats(
    motion: np.ndarray, *, mean_vel: float, fps: int = FPS, order: int = 7, threshold: float = 0.1
) -> np.ndarray:
    """Beat times (s) of motion (T, F): local speed minima whose normalised speed > threshold."""
    speed = pose_speed(motion, fps=fps) / mean_vel
    minima = argrelextrema(speed, np.less, order=order)[0]
    return minima[speed[minima] > threshold] / fps


def beat_consistency(
    motion: np.ndarray,
    audio_onset_seconds: np.ndarray,
    *,
    mean_vel: float,
    fps: int = FPS,
    sigma: float = 0.3,
    order: int = 7,
    threshold: float = 0.1,
    drop_seconds: float = 2.0,
) -> float:
    """EMAGE BC of one clip (T, F): mean over audio onsets of exp(-d² / 2σ²), d to nearest beat.

    Onsets and motion beats in the first and last ``drop_seconds`` are dropped. A clip with no
    motion beat scores 0 (as EMAGE); a clip with no onset left returns NaN.
    """
    if mean_vel <= 0:
        raise ValueError(f"beat_consistency: mean_vel must be > 0, got {mean_vel}")
    duration = motion.shape[0] / fps
    onsets = _inside(np.asarray(audio_onset_seconds, dtype=float), drop_seconds, duration)
    beats = _inside(
        motion_beats(motion, mean_vel=mean_vel, fps=fps, order=order, threshold=threshold),
        drop_seconds,
        duration,
    )
    if onsets.size == 0:
        return float("nan")
    if beats.size == 0:
        return 0.0
    nearest = np.abs(onsets[:, None] - beats[None, :]).min(axis=1)
    return float(np.exp(-(nearest**2) / (2 * sigma**2)).mean())


def beat_consistency_clips(
    motion: np.ndarray, onsets: Sequence[np.ndarray], *, mean_vel: float, **bc_kwargs: float
) -> float:
    """Mean BC over clips (R, S, T, F) or (S, T, F), sample s with ``onsets[s]``; NaN skipped."""
    clips = motion if motion.ndim == 4 else motion[None]
    if clips.shape[1] != len(onsets):
        raise ValueError(f"beat_consistency_clips: {clips.shape[1]} samples, {len(onsets)} onsets")
    scores = [
        beat_consistency(clips[r, s], onsets[s], mean_vel=mean_vel, **bc_kwargs)
        for r in range(clips.shape[0])
        for s in range(clips.shape[1])
    ]
    finite = [v for v in scores if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def stroke_response(
    motion: np.ndarray,
    stroke_frames: Sequence[np.ndarray],
    *,
    window: int = STROKE_WINDOW,
    fps: int = FPS,
) -> float:
    """Mean pose speed in the ``window`` frames from each true stroke start over the clip's mean.

    motion (R, S, T, F) or (S, T, F); ``stroke_frames[s]`` are the true stroke starts of sample s,
    in frames of its clip. Per (repetition, sample): the mean over strokes of the mean speed in
    [f, f + window), divided by the clip's mean speed; the result is the mean over clips with at
    least one whole stroke window. 1 means motion that ignores the strokes; above 1, the motion
    speeds up at them. NaN when no clip has a stroke.

    Unlike beat consistency, this separates real motion from motion of the wrong clip: it asks
    whether the motion moves at the moments the truth moves, not whether any motion minimum lies
    within a few hundred milliseconds of dense syllable onsets.
    """
    clips = motion if motion.ndim == 4 else motion[None]
    if clips.shape[1] != len(stroke_frames):
        raise ValueError(
            f"stroke_response: {clips.shape[1]} samples, {len(stroke_frames)} stroke lists"
        )
    speed = pose_speed(clips, fps=fps)  # (R, S, T)
    ratios = []
    for s, frames in enumerate(stroke_frames):
        frames = np.asarray(frames, dtype=np.int64)
        frames = frames[(frames >= 0) & (frames + window <= speed.shape[-1])]
        if frames.size == 0:
            continue
        windows = speed[:, s, frames[:, None] + np.arange(window)]  # (R, K, window)
        overall = speed[:, s].mean(axis=-1)
        ratios.append(windows.mean(axis=(1, 2)) / np.maximum(overall, 1e-12))
    return float(np.mean(ratios)) if ratios else float("nan")


def keyframe_error(pred: np.ndarray, keyframes: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared error per dim at the valid keyframes, averaged over repetitions.

    pred (R, S, K, F) or (S, K, F); keyframes (S, K, F); mask (S, K) True on valid keyframes.
    """
    preds = pred if pred.ndim == 4 else pred[None]
    if preds.shape[1:] != keyframes.shape or mask.shape != keyframes.shape[:2]:
        raise ValueError(
            f"keyframe_error: pred {pred.shape}, keyframes {keyframes.shape} and mask "
            f"{mask.shape} do not match"
        )
    squared = ((preds - keyframes[None]) ** 2).mean(axis=-1)  # (R, S, K)
    return float(squared[:, mask].mean())


def detect_audio_onsets(wave_ch0: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Audio onset times (s) of a mono waveform as EMAGE: librosa at 16 kHz, hop 512."""
    import librosa  # imported lazily: librosa's import is slow and only BC needs it

    target = 16_000
    y = resample_poly(np.asarray(wave_ch0, dtype=np.float64), target, sample_rate)
    return librosa.onset.onset_detect(
        y=y.astype(np.float32), sr=target, hop_length=512, units="time"
    )


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """Tr (s1 s2)^{1/2} for PSD s1, s2: the nuclear norm of s2^{1/2} s1^{1/2}.

    Its singular values are the square roots of the eigenvalues of s1^{1/2} s2 s1^{1/2}, which
    has the spectrum of s1 s2. Taking them from an SVD avoids squaring the condition number;
    on ill-conditioned 104-d pose covariances this is ~1e-8 from a 40-digit reference where
    sqrtm(s1 s2) is ~1e-3 off.
    """
    try:
        return float(np.linalg.svd(_psd_sqrt(s2) @ _psd_sqrt(s1), compute_uv=False).sum())
    except np.linalg.LinAlgError:
        return float("nan")


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix; round-off negative eigenvalues are clipped to 0."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _as_samples(x: np.ndarray, name: str) -> np.ndarray:
    """Check a (n, F) sample matrix: at least 2 rows, all finite."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name}: expected (n >= 2, F) samples, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return x


def _frames(x: np.ndarray) -> np.ndarray:
    """Pool every leading axis of (..., F) into frames (n, F)."""
    return np.asarray(x).reshape(-1, np.asarray(x).shape[-1])


def _inside(times: np.ndarray, drop: float, duration: float) -> np.ndarray:
    """Times within [drop, duration - drop]."""
    return times[(times >= drop) & (times <= duration - drop)]
