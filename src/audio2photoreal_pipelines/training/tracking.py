"""MLflow hooks for `train`: live per-step metrics and the final checkpoint as an artifact.

Both do nothing when no MLflow run is active, so unit tests and plain scripts create no runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mlflow


def mlflow_metric_logger(prefix: str = "") -> Callable[[dict[str, float], int], None]:
    """A ``log_metrics`` for `train` that logs ``<prefix>/<name>`` to the active run, if any."""

    def log_metrics(metrics: dict[str, float], step: int) -> None:
        if mlflow.active_run() is None:
            return
        named = {f"{prefix}/{name}" if prefix else name: float(v) for name, v in metrics.items()}
        mlflow.log_metrics(named, step=step)

    return log_metrics


def log_checkpoint_artifact(path: Path, artifact_path: str = "checkpoints") -> bool:
    """Log a checkpoint file to the active run under `artifact_path`; False without a run."""
    if mlflow.active_run() is None:
        return False
    mlflow.log_artifact(str(path), artifact_path=artifact_path)
    return True
