"""One metric table for every method (ours and baselines): JSON-ready rows and markdown."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from audio2photoreal_pipelines.units import FPS

from . import metrics

COLUMNS = (
    "method",
    "FD_g",
    "FD_k",
    "Div_g",
    "Div_k",
    "Div_sample",
    "face_FD",
    "face_L2",
    "face_Div_sample",
    "lip_corr",
    "lip_err",
    "BC",
    "stroke_resp",
)


def evaluate_methods(
    methods: Mapping[str, Mapping[str, np.ndarray | None]],
    gt_body: np.ndarray | None,
    gt_face: np.ndarray | None,
    face_valid: np.ndarray | None,
    *,
    lip_truth: np.ndarray | None = None,
    lip_readout: tuple[np.ndarray, float] | None = None,
    onsets: Sequence[np.ndarray] | None = None,
    mean_vel: float | None = None,
    stroke_frames: Sequence[np.ndarray] | None = None,
    fps: int = FPS,
    bc_sigma: float = 0.3,
    bc_drop_seconds: float = 2.0,
    num_pairs: int = 10_000,
    seed: int = 0,
) -> list[dict[str, float | str | None]]:
    """Score each method's ``body`` (R, S, T, 104) and ``face`` (R, S, T, 256) against the GT.

    GT: body (S, T, 104), face (S, T, 256), face_valid (S, T). Lip columns need ``lip_truth``
    (S, T) and ``lip_readout`` (w, b) fitted in the face arrays' space; BC needs ``onsets`` (one
    array of seconds per sample) and ``mean_vel``, the GT mean pose speed; stroke_resp needs
    ``stroke_frames`` (the true stroke starts of each sample, in frames). Unavailable columns
    are None.
    """
    rows = []
    for name, preds in methods.items():
        row: dict[str, float | str | None] = dict.fromkeys(COLUMNS)
        row["method"] = name
        body, face = preds.get("body"), preds.get("face")
        if body is not None and gt_body is not None:
            _check_pred(name, "body", body, gt_body)
            row.update(
                FD_g=metrics.fd_g(body, gt_body),
                FD_k=metrics.fd_k(body, gt_body),
                Div_g=metrics.div_g(body, num_pairs=num_pairs, seed=seed),
                Div_k=metrics.div_k(body),
                Div_sample=metrics.div_sample(body),
            )
            if onsets is not None and mean_vel is not None:
                row["BC"] = metrics.beat_consistency_clips(
                    body,
                    onsets,
                    mean_vel=mean_vel,
                    fps=fps,
                    sigma=bc_sigma,
                    drop_seconds=bc_drop_seconds,
                )
            if stroke_frames is not None:
                row["stroke_resp"] = metrics.stroke_response(body, stroke_frames, fps=fps)
        if face is not None and gt_face is not None:
            _check_pred(name, "face", face, gt_face)
            row.update(
                face_FD=metrics.face_fd(face, gt_face, face_valid),
                face_L2=metrics.masked_l2(face, gt_face, face_valid),
                face_Div_sample=metrics.div_sample(face),
            )
        if face is not None and lip_truth is not None and lip_readout is not None:
            row.update(metrics.lip_sync(metrics.read_lip(face, *lip_readout), lip_truth))
        rows.append({k: _json_value(v) for k, v in row.items()})
    return rows


def to_markdown(rows: Sequence[Mapping[str, float | str | None]]) -> str:
    """A markdown table of the rows; floats to 4 significant digits, missing values as '–'."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(format_value(row.get(c)) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def format_value(value: float | str | None) -> str:
    """A table cell: floats to 4 significant digits, None or NaN as '–'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _check_pred(method: str, part: str, pred: np.ndarray, gt: np.ndarray) -> None:
    """Predictions must be (R, S, T, F) with (S, T, F) equal to the GT's."""
    if pred.ndim != 4 or pred.shape[1:] != gt.shape:
        raise ValueError(
            f"evaluate_methods: method {method!r} {part} has shape {pred.shape}, "
            f"expected (R, {', '.join(map(str, gt.shape))})"
        )


def _json_value(value: float | str | None) -> float | str | None:
    """Plain Python values; NaN becomes None so the row is valid JSON."""
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return value
