"""Data-parallel training through Kedro: ranks started by torchrun (`torchrun_train`, then
``kedro run`` registers) and ranks forked by ``train.processes: 2`` in one ``kedro run``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from mlflow import MlflowClient

from audio2photoreal_pipelines.torchrun_train import main
from audio2photoreal_pipelines.training.checkpoint import read_checkpoint
from tests.conftest import TINY_PERSON, run_session, use_project_store

TRAIN_VQ = {
    "vq.train.steps": 12,
    "vq.train.checkpoint_every": 6,
    "vq.train.batch_size": 4,
    "vq.train.log_every": 3,
}


def test_outside_torchrun_it_says_how_to_start_it(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["train_vq"])
    assert result.exit_code == 2
    assert "start this module with torchrun" in result.output


def _final_checkpoint(project, processes_param: int):
    """The step-12 checkpoint of the run whose parameters had ``processes_param``."""
    for path in (project / "data" / "06_models").rglob("step_00000012.pt"):
        if read_checkpoint(path)["config"]["processes"] == processes_param:
            return path
    raise AssertionError(f"no final checkpoint with processes={processes_param}")


@pytest.mark.slow
def test_torchrun_trains_two_ranks_and_kedro_run_registers_them_once(project_copy):
    run_session(project_copy, ["ingest"])
    params = ",".join(f"{key}={value}" for key, value in {**TINY_PERSON, **TRAIN_VQ}.items())
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1"]
    launch += ["--nproc-per-node", "2", "-m", "audio2photoreal_pipelines.torchrun_train"]
    environment = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    job = subprocess.run(
        [*launch, "train_vq", "--params", params],
        cwd=project_copy,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert job.returncode == 0, job.stderr[-3000:]
    assert "register it with `kedro run --pipelines train_vq`" in job.stdout + job.stderr

    use_project_store(project_copy)
    client = MlflowClient()
    assert client.search_model_versions("name='a2p-SYN001-vq'") == []
    final = _final_checkpoint(project_copy, processes_param=1)
    trained = read_checkpoint(final)
    assert set(trained["rng"]) == {0, 1}
    written = sorted(p.stat().st_mtime_ns for p in final.parent.iterdir())

    run_session(project_copy, ["train_vq"], **TRAIN_VQ)
    (version,) = client.search_model_versions("name='a2p-SYN001-vq'")
    assert version.tags["steps"] == "12"
    assert sorted(p.stat().st_mtime_ns for p in final.parent.iterdir()) == written

    # The same two ranks forked by `processes: 2` in one kedro run train bit-identical weights,
    # so the registry reuses the version (it compares weight digests); that run logs the ranks'
    # averaged metrics.
    run_session(project_copy, ["train_vq"], **TRAIN_VQ, **{"vq.train.processes": 2})
    forked = read_checkpoint(_final_checkpoint(project_copy, processes_param=2))
    assert set(forked["rng"]) == {0, 1}
    for name, weight in trained["model"].items():
        assert torch.equal(weight, forked["model"][name]), name
    assert [int(v.version) for v in client.search_model_versions("name='a2p-SYN001-vq'")] == [1]
    experiment = client.get_run(version.run_id).info.experiment_id
    (forked_run,) = client.search_runs(
        [experiment], order_by=["attributes.start_time DESC"], max_results=1
    )
    assert forked_run.info.run_id != version.run_id
    assert forked_run.data.params["vq.train.processes"] == "2"
    history = client.get_metric_history(forked_run.info.run_id, "vq/loss")
    assert sorted(m.step for m in history) == [3, 6, 9, 12]
