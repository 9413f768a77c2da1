"""Device selection and the mixed precision that goes with it."""

from __future__ import annotations

import pytest
import torch

from audio2photoreal_pipelines.training import autocast_context, select_device


def test_auto_picks_cuda_only_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto").type == "cuda"


def test_explicit_cpu():
    assert select_device("cpu") == torch.device("cpu")


def test_requesting_missing_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        select_device("cuda")


@pytest.mark.parametrize("bad", ["gpu", "mps", "cuda:x"])
def test_unknown_device_names_are_rejected(bad):
    with pytest.raises(ValueError, match="device must be"):
        select_device(bad)


def test_cpu_autocast_is_a_no_op():
    layer = torch.nn.Linear(3, 2)
    with autocast_context(torch.device("cpu")):
        assert layer(torch.ones(1, 3)).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_autocast_runs_matmuls_in_bf16():
    layer = torch.nn.Linear(3, 2).cuda()
    with autocast_context(torch.device("cuda")):
        assert layer(torch.ones(1, 3, device="cuda")).dtype == torch.bfloat16
