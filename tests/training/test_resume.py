"""Checkpoints: resume after kill -9, skip corrupt files, atomic layout, verified contents."""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from audio2photoreal_pipelines.training import checkpoint as checkpoint_module
from audio2photoreal_pipelines.training import train
from audio2photoreal_pipelines.training.checkpoint import (
    CheckpointError,
    CheckpointWriteError,
    read_checkpoint,
)
from tests.training.toy import RESUME_CONFIG, loss_fn, make_model, sample_batch

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOP_LOGGER = "audio2photoreal_pipelines.training.loop"


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def _without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "steps_per_s"} for record in history]


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, caplog):
    reference_model = make_model()
    reference = train(
        reference_model, loss_fn, sample_batch, RESUME_CONFIG, checkpoint_dir=tmp_path / "reference"
    )

    interrupted = tmp_path / "interrupted"
    child = subprocess.run(
        [sys.executable, "-m", "tests.training.kill_midrun", str(interrupted), "17"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert _names(interrupted) == ["step_00000010.pt"]

    caplog.set_level(logging.INFO, logger=LOOP_LOGGER)
    resumed_model = make_model()
    resumed = train(resumed_model, loss_fn, sample_batch, RESUME_CONFIG, checkpoint_dir=interrupted)

    assert f"resuming from {interrupted / 'step_00000010.pt'} at step 10" in caplog.text
    assert resumed.resumed_from == interrupted / "step_00000010.pt"
    assert resumed.final_step == reference.final_step == 30
    _assert_same_weights(resumed.model, reference.model)  # the EMA
    _assert_same_weights(resumed_model, reference_model)  # the raw weights
    assert _without_timing(resumed.history) == _without_timing(reference.history)
    assert _names(interrupted) == ["step_00000020.pt", "step_00000030.pt"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_newest_checkpoint_is_skipped_with_warning(tmp_path, caplog, damage):
    config = RESUME_CONFIG.model_copy(update=dict(steps=20))
    reference = train(make_model(), loss_fn, sample_batch, config, checkpoint_dir=tmp_path)
    newest = tmp_path / "step_00000020.pt"
    data = newest.read_bytes()
    newest.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": bytes(range(256)) * 8, "empty": b""}[damage]
    )

    caplog.set_level(logging.INFO, logger=LOOP_LOGGER)
    resumed = train(make_model(), loss_fn, sample_batch, config, checkpoint_dir=tmp_path)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(newest) in r.getMessage() for r in warnings)
    assert resumed.resumed_from == tmp_path / "step_00000010.pt"
    _assert_same_weights(resumed.model, reference.model)
    assert read_checkpoint(newest)["step"] == 20  # rewritten whole


def test_flipped_byte_in_tensor_data_fails_the_checksum(tmp_path):
    model = make_model()
    result = train(
        model,
        loss_fn,
        sample_batch,
        RESUME_CONFIG.model_copy(update=dict(steps=10)),
        checkpoint_dir=tmp_path,
    )
    path = result.final_checkpoint
    data = bytearray(path.read_bytes())
    weight_bytes = model.state_dict()["0.weight"].numpy().tobytes()
    offset = data.find(weight_bytes)
    assert offset >= 0
    data[offset + len(weight_bytes) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    with pytest.raises(CheckpointError, match="checksum"):
        read_checkpoint(path)


def test_finished_run_returns_without_training(tmp_path, caplog):
    config = RESUME_CONFIG.model_copy(update=dict(steps=10))
    first = train(make_model(), loss_fn, sample_batch, config, checkpoint_dir=tmp_path)

    def must_not_train(model, batch, generator):
        raise AssertionError("loss_fn called although training was complete")

    caplog.set_level(logging.INFO, logger=LOOP_LOGGER)
    again = train(make_model(), must_not_train, sample_batch, config, checkpoint_dir=tmp_path)

    assert again.final_step == 10
    assert again.final_checkpoint == again.resumed_from == tmp_path / "step_00000010.pt"
    assert "nothing to train" in caplog.text
    _assert_same_weights(again.model, first.model)
    assert again.history == first.history


def test_checkpoint_beyond_requested_steps_is_an_error(tmp_path):
    train(
        make_model(),
        loss_fn,
        sample_batch,
        RESUME_CONFIG.model_copy(update=dict(steps=20)),
        checkpoint_dir=tmp_path,
    )
    with pytest.raises(ValueError, match="beyond steps=10"):
        train(
            make_model(),
            loss_fn,
            sample_batch,
            RESUME_CONFIG.model_copy(update=dict(steps=10)),
            checkpoint_dir=tmp_path,
        )


def test_checkpoint_holds_full_state_and_loads_weights_only(tmp_path):
    config = RESUME_CONFIG.model_copy(update=dict(steps=12, checkpoint_every=5, keep_checkpoints=2))
    result = train(make_model(), loss_fn, sample_batch, config, checkpoint_dir=tmp_path)

    assert _names(tmp_path) == ["step_00000010.pt", "step_00000012.pt"]
    assert result.final_checkpoint == tmp_path / "step_00000012.pt"
    payload = torch.load(result.final_checkpoint, weights_only=True)
    assert {
        "format",
        "format_version",
        "step",
        "model",
        "optimizer",
        "scheduler",
        "ema",
        "rng",
        "history",
        "interval",
        "config",
        "sha256",
    } <= payload.keys()
    assert payload["step"] == 12
    assert payload["scheduler"]["last_epoch"] == 12
    assert {"data", "loss", "torch", "numpy", "python"} <= payload["rng"][0].keys()
    assert payload["config"]["seed"] == config.seed


def test_stale_temporary_from_killed_write_is_removed(tmp_path, caplog):
    tmp_path.joinpath(".step_00000010.pt.tmp-12345").write_bytes(b"half a checkpoint")
    caplog.set_level(logging.WARNING, logger=LOOP_LOGGER)
    train(
        make_model(),
        loss_fn,
        sample_batch,
        RESUME_CONFIG.model_copy(update=dict(steps=10)),
        checkpoint_dir=tmp_path,
    )
    assert _names(tmp_path) == ["step_00000010.pt"]
    assert ".step_00000010.pt.tmp-12345" in caplog.text


def test_changed_hyperparameter_on_resume_is_warned(tmp_path, caplog):
    train(
        make_model(),
        loss_fn,
        sample_batch,
        RESUME_CONFIG.model_copy(update=dict(steps=10)),
        checkpoint_dir=tmp_path,
    )
    caplog.set_level(logging.WARNING, logger=LOOP_LOGGER)
    train(
        make_model(),
        loss_fn,
        sample_batch,
        RESUME_CONFIG.model_copy(update=dict(steps=12, lr=5e-3)),
        checkpoint_dir=tmp_path,
    )
    assert "different lr" in caplog.text


def test_a_full_disk_fails_clearly_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    real_save = torch.save
    writes = []

    def save_until_the_disk_fills(obj, handle):
        writes.append(handle.name)
        if len(writes) == 1:
            return real_save(obj, handle)
        handle.write(b"half a checkpoint")  # a partial file, then no space left
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_module.torch, "save", save_until_the_disk_fills)
    with pytest.raises(CheckpointWriteError) as raised:
        train(make_model(), loss_fn, sample_batch, RESUME_CONFIG, checkpoint_dir=tmp_path)
    message = str(raised.value)
    assert "step_00000020.pt: could not write the checkpoint (No space left on device)" in message
    assert "the previous one, step_00000010.pt, is intact" in message
    assert _names(tmp_path) == ["step_00000010.pt"], "the partial file is removed"

    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    resumed = train(make_model(), loss_fn, sample_batch, RESUME_CONFIG, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == tmp_path / "step_00000010.pt"
    assert resumed.final_step == 30
