"""``kedro run --pipelines train_vq`` killed with SIGKILL, then run again: it resumes and ends
with the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from audio2photoreal_pipelines.training.checkpoint import read_checkpoint
from tests.conftest import TINY_PERSON, run_session

KEDRO = str(Path(sys.executable).with_name("kedro"))
VQ = {
    "vq.train.steps": 120,
    "vq.train.checkpoint_every": 20,
    "vq.train.log_every": 10,
    "vq.train.batch_size": 8,
}


def _train_vq(project: Path, **params) -> subprocess.Popen:
    dotted = ",".join(f"{k}={v}" for k, v in {**TINY_PERSON, **VQ, **params}.items())
    return subprocess.Popen(
        [KEDRO, "run", "--pipelines", "train_vq", "--params", dotted],
        cwd=project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _final_weights(root: Path) -> dict[str, torch.Tensor]:
    (final,) = root.rglob(f"step_{VQ['vq.train.steps']:08d}.pt")
    return read_checkpoint(final)["model"]


@pytest.mark.slow
def test_train_vq_killed_mid_run_resumes_to_the_uninterrupted_weights(project_copy: Path):
    run_session(project_copy, ["ingest"])
    checkpoints = project_copy / "data" / "06_models" / "checkpoints"

    victim = _train_vq(project_copy)
    deadline = time.monotonic() + 120
    while not list(checkpoints.rglob("step_*.pt")) and time.monotonic() < deadline:
        assert victim.poll() is None, victim.stdout.read()[-3000:]
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)  # mid-training, just after a checkpoint was written
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    written = sorted(p.name for p in checkpoints.rglob("step_*.pt"))
    assert written and f"step_{VQ['vq.train.steps']:08d}.pt" not in written

    # Killed again at an arbitrary moment of its resumed training (mid-step, mid-checkpoint or
    # mid-logging, wherever it lands): the next run still ends with the same weights.
    second = _train_vq(project_copy)
    for line in second.stdout:
        if "train vq: resuming from" in line:
            time.sleep(0.6)
            break
    os.kill(second.pid, signal.SIGKILL)
    second.wait(timeout=30)
    assert second.returncode == -signal.SIGKILL, "the second run ended before it was killed"

    resumed = _train_vq(project_copy)
    log, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, log[-3000:]
    assert "train vq: resuming from" in log

    reference = _train_vq(project_copy, **{"checkpoints.root": "data/06_models/reference"})
    log, _ = reference.communicate(timeout=300)
    assert reference.returncode == 0, log[-3000:]
    assert "starting from step 0" in log
    expected = _final_weights(project_copy / "data" / "06_models" / "reference")
    got = _final_weights(checkpoints)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    # The same weights again: the registry reuses version 1 instead of adding an identical one.
    assert "reused without registering a duplicate" in log
