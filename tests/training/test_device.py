"""Device selection and the mixed precision that goes with it."""

from __future__ import annotations

import pytest
import torch

from audio2photoreal_pipelines.training import TrainConfig, autocast_context, select_device
from audio2photoreal_pipelines.training.device import set_tf32
from audio2photoreal_pipelines.training.schedule import build_optimizer


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


def test_bf16_switch_off_turns_cuda_autocast_off():
    from contextlib import nullcontext

    assert isinstance(autocast_context(torch.device("cuda"), bf16=False), nullcontext)


def test_tf32_switch_leaves_cpu_settings_alone():
    before = torch.backends.cuda.matmul.allow_tf32
    set_tf32(torch.device("cpu"), not before)
    assert torch.backends.cuda.matmul.allow_tf32 == before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tf32_switch_sets_cuda_matmul_precision():
    before = torch.backends.cuda.matmul.allow_tf32
    try:
        set_tf32(torch.device("cuda"), True)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        set_tf32(torch.device("cuda"), False)
        assert not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_fused_adamw_only_where_every_parameter_is_on_cuda(device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    model = torch.nn.Linear(3, 2).to(device)
    config = TrainConfig(steps=1, batch_size=1, lr=1e-3)
    optimizer, _ = build_optimizer(model, config)
    assert bool(optimizer.defaults["fused"]) == (device == "cuda")
    unfused, _ = build_optimizer(model, config.model_copy(update=dict(fused_adamw=False)))
    assert not unfused.defaults["fused"]
