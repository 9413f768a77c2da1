"""``train_vq`` then ``train_guide`` through KedroSessions: tracked, registered, loadable."""

from __future__ import annotations

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from tests.conftest import run_session, use_project_store

FAST = {
    "vq.train.steps": 30,
    "vq.train.checkpoint_every": 10,
    "vq.train.batch_size": 8,
    "vq.train.log_every": 5,
    "guide.train.steps": 20,
    "guide.train.checkpoint_every": 10,
    "guide.train.batch_size": 4,
    "guide.train.log_every": 5,
}


@pytest.mark.slow
def test_train_vq_and_guide_register_loadable_models(project_copy):
    run_session(project_copy, ["ingest"])
    run_session(project_copy, ["train_vq"], **FAST)
    run_session(project_copy, ["train_guide"], **FAST)
    use_project_store(project_copy)
    client = MlflowClient()
    for kind in ("vq", "guide"):
        (version,) = client.search_model_versions(f"name='a2p-SYN001-{kind}'")
        assert version.tags["person"] == "SYN001"
        assert len(version.tags["git_commit"]) in (40, len("unknown"))
        assert "data_stats.pose_std_flat" in version.tags
        run = client.get_run(version.run_id)
        assert run.data.params[f"{kind}.train.steps"] == str(FAST[f"{kind}.train.steps"])
        # Typed blocks are logged key by key, never as one string.
        assert f"{kind}.train" not in run.data.params
        history = client.get_metric_history(version.run_id, f"{kind}/loss")
        assert [m.step for m in history] == sorted(m.step for m in history) and len(history) >= 2
        artifacts = [a.path for a in client.list_artifacts(version.run_id, f"checkpoints/{kind}")]
        assert artifacts, f"no checkpoint artifact for {kind}"
        history_file = (
            project_copy / "data" / "08_reporting" / "SYN001" / f"{kind}_training_history.json"
        )
        assert history_file.is_file()

    vq = mlflow.pytorch.load_model("models:/a2p-SYN001-vq/1")
    keyframes = torch.randn(2, 20, 104)
    codes = vq.encode(keyframes)
    assert codes.shape == (2, 20, 4) and vq.decode(codes).shape == (2, 20, 104)
    guide = mlflow.pytorch.load_model("models:/a2p-SYN001-guide/1")
    tokens = guide.generate(torch.randn(1, 2001, 80), num_keyframes=20, num_samples=2)
    assert tokens.shape == (2, 20, 4) and int(tokens.max()) < vq.codebook_size

    # Running the finished training again resumes its last checkpoint and reuses version 1.
    run_session(project_copy, ["train_vq"], **FAST)
    use_project_store(project_copy)
    assert [str(v.version) for v in client.search_model_versions("name='a2p-SYN001-vq'")] == ["1"]
