"""``kedro run --pipeline train_vq`` with ``vq.train.processes: 2``: one run, one version."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from audio2photoreal_pipelines.training.checkpoint import read_checkpoint
from tests.conftest import run_session, use_project_store

PARALLEL = {
    "vq.train.steps": 12,
    "vq.train.checkpoint_every": 6,
    "vq.train.batch_size": 4,
    "vq.train.log_every": 3,
    "vq.train.processes": 2,
}


@pytest.mark.slow
def test_train_vq_in_two_processes_registers_one_version(project_copy):
    run_session(project_copy, ["ingest"])
    run_session(project_copy, ["train_vq"], **PARALLEL)
    use_project_store(project_copy)
    client = MlflowClient()
    (version,) = client.search_model_versions("name='a2p-SYN001-vq'")
    assert version.tags["steps"] == "12"
    run = client.get_run(version.run_id)
    assert run.data.params["vq.train.processes"] == "2"
    history = client.get_metric_history(version.run_id, "vq/loss")
    assert sorted(m.step for m in history) == [3, 6, 9, 12]
    (final,) = (project_copy / "data" / "06_models").rglob("step_00000012.pt")
    assert set(read_checkpoint(final)["rng"]) == {0, 1}
