"""MLflow hooks: no-ops without an active run, real logging inside one."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from audio2photoreal_pipelines.training.tracking import (
    log_checkpoint_artifact,
    mlflow_metric_logger,
)


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch):
    """A throw-away sqlite tracking store; artifacts land under tmp_path too."""
    monkeypatch.chdir(tmp_path)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield
    mlflow.set_tracking_uri(previous)


def test_without_active_run_nothing_is_logged_or_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert mlflow.active_run() is None
    mlflow_metric_logger("train")({"loss": 1.0}, 1)
    checkpoint = tmp_path / "step_00000001.pt"
    checkpoint.write_bytes(b"x")
    assert log_checkpoint_artifact(checkpoint) is False
    assert mlflow.active_run() is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000001.pt"]


@pytest.mark.slow
def test_metrics_and_checkpoint_are_logged_to_the_active_run(tmp_path, tracking_uri):
    checkpoint = tmp_path / "step_00000002.pt"
    checkpoint.write_bytes(b"weights")
    log = mlflow_metric_logger("train_vq")
    with mlflow.start_run() as run:
        log({"loss": 0.5, "lr": 1e-3}, 1)
        log({"loss": 0.25, "lr": 1e-3}, 2)
        assert log_checkpoint_artifact(checkpoint) is True

    client = MlflowClient()
    history = client.get_metric_history(run.info.run_id, "train_vq/loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.25)]
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")]
    assert artifacts == ["checkpoints/step_00000002.pt"]
