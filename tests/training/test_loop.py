"""The loop's optimisation behaviour: schedule, clipping, EMA, determinism, ranks, logging."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from audio2photoreal_pipelines.training import TrainConfig, train
from audio2photoreal_pipelines.training.distributed import run_local_processes
from tests.training.toy import loss_fn, make_model, sample_batch


def _config(**overrides) -> TrainConfig:
    settings = dict(
        steps=10, batch_size=8, lr=1e-2, log_every=1, checkpoint_every=5, seed=1, device="cpu"
    )
    return TrainConfig(**{**settings, **overrides})


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_lr_follows_linear_warmup_then_milestones():
    config = _config(lr=1e-2, warmup_steps=4, lr_milestones=(6, 8), lr_gamma=0.5)
    result = train(make_model(), loss_fn, sample_batch, config, checkpoint_dir=None)
    # Update k: min(1, k/4) ramp, halved after update 6 and again after update 8.
    expected = [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert [r["step"] for r in result.history] == list(range(1, 11))
    assert [r["lr"] for r in result.history] == pytest.approx([1e-2 * f for f in expected])


def _grad_norms_seen_by_optimizer(config: TrainConfig) -> tuple[list[float], list[dict]]:
    norms: list[float] = []

    def record(optimizer, args, kwargs):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        norms.append(
            float(
                torch.linalg.vector_norm(
                    torch.stack([torch.linalg.vector_norm(g) for g in grads if g is not None])
                )
            )
        )

    handle = register_optimizer_step_pre_hook(record)
    try:
        result = train(make_model(), loss_fn, sample_batch, config, checkpoint_dir=None)
    finally:
        handle.remove()
    return norms, result.history


def test_gradients_are_clipped_before_the_optimizer_step():
    unclipped, _ = _grad_norms_seen_by_optimizer(_config())
    clip = 0.5 * min(unclipped)
    clipped, history = _grad_norms_seen_by_optimizer(_config(grad_clip_norm=clip))

    assert len(clipped) == 10
    assert max(clipped) <= clip * (1 + 1e-5)
    # The logged norm is the one before clipping, the first equals the unclipped run's.
    assert history[0]["grad_norm"] == pytest.approx(unclipped[0], rel=1e-5)
    assert history[0]["grad_norm"] > clip


def test_ema_follows_the_decay_formula_and_differs_from_raw_weights():
    decay = 0.7  # asymmetric, so swapping decay and 1 - decay would fail
    snapshots: list[list[torch.Tensor]] = []

    def recording_loss_fn(model, batch, generator):
        snapshots.append(_weights(model))  # weights after the previous update
        return loss_fn(model, batch, generator)

    raw = make_model(dropout=0.0)
    result = train(
        raw, recording_loss_fn, sample_batch, _config(ema_decay=decay), checkpoint_dir=None
    )

    after_each_update = snapshots[1:] + [_weights(raw)]
    ema = after_each_update[0]
    for weights in after_each_update[1:]:
        ema = [decay * e + (1 - decay) * w for e, w in zip(ema, weights, strict=True)]
    assert result.model is not raw
    for expected, got, raw_w in zip(ema, _weights(result.model), _weights(raw), strict=True):
        torch.testing.assert_close(got, expected)
        assert not torch.allclose(got, raw_w)


def test_same_seed_same_weights_different_seed_different_weights():
    runs = {}
    for name, seed in [("a", 5), ("b", 5), ("c", 6)]:
        runs[name] = train(
            make_model(), loss_fn, sample_batch, _config(seed=seed), checkpoint_dir=None
        ).model.state_dict()
    for key in runs["a"]:
        assert torch.equal(runs["a"][key], runs["b"][key]), key
    assert any(not torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def test_only_rank_zero_logs_and_writes_checkpoints(tmp_path):
    def worker(rank: int, world_size: int) -> None:
        calls = []
        train(
            make_model(),
            loss_fn,
            sample_batch,
            _config(),
            checkpoint_dir=tmp_path / str(rank),
            log_metrics=lambda m, s: calls.append(s),
            on_checkpoint=lambda p, s: calls.append(str(p)),
            rank=rank,
            world_size=world_size,
        )
        (tmp_path / f"calls{rank}.json").write_text(json.dumps(calls))

    run_local_processes(worker, 2, device=torch.device("cpu"))
    calls = {r: json.loads((tmp_path / f"calls{r}.json").read_text()) for r in (0, 1)}
    assert not (tmp_path / "1").exists() and calls[1] == []
    assert len(list((tmp_path / "0").glob("step_*.pt"))) == 2 and len(calls[0]) == 12


def test_ranks_draw_different_batches(tmp_path):
    def worker(rank: int, world_size: int) -> None:
        def first_batch(model, batch, generator):
            if not (tmp_path / f"batch{rank}.pt").exists():
                torch.save(batch["x"], tmp_path / f"batch{rank}.pt")
            return loss_fn(model, batch, generator)

        train(
            make_model(),
            first_batch,
            sample_batch,
            _config(steps=1),
            checkpoint_dir=None,
            rank=rank,
            world_size=world_size,
        )

    run_local_processes(worker, 2, device=torch.device("cpu"))
    assert not torch.equal(torch.load(tmp_path / "batch0.pt"), torch.load(tmp_path / "batch1.pt"))


def test_several_ranks_need_a_process_group():
    with pytest.raises(RuntimeError, match="initialised torch.distributed group"):
        train(
            make_model(),
            loss_fn,
            sample_batch,
            _config(steps=1),
            checkpoint_dir=None,
            rank=0,
            world_size=2,
        )


def test_rank_outside_world_is_rejected():
    with pytest.raises(ValueError, match="rank"):
        train(
            make_model(),
            loss_fn,
            sample_batch,
            _config(),
            checkpoint_dir=None,
            rank=2,
            world_size=2,
        )


def test_log_metrics_gets_interval_means_every_log_every_steps():
    logged: list[tuple[int, dict]] = []
    losses: list[float] = []

    def recording_loss_fn(model, batch, generator):
        loss, metrics = loss_fn(model, batch, generator)
        losses.append(float(loss))
        return loss, metrics

    result = train(
        make_model(),
        recording_loss_fn,
        sample_batch,
        _config(log_every=4),
        checkpoint_dir=None,
        log_metrics=lambda m, s: logged.append((s, m)),
    )

    assert [s for s, _ in logged] == [4, 8, 10]
    assert set(logged[0][1]) == {"loss", "mse", "lr", "steps_per_s"}
    assert logged[0][1]["loss"] == pytest.approx(sum(losses[:4]) / 4)
    assert logged[2][1]["loss"] == pytest.approx(sum(losses[8:]) / 2)
    assert [r["step"] for r in result.history] == [4, 8, 10]


def test_nonfinite_loss_stops_before_checkpointing(tmp_path):
    def nan_loss_fn(model, batch, generator):
        return model(batch["x"]).mean() * float("nan"), {}

    with pytest.raises(FloatingPointError, match="step 1"):
        train(
            make_model(),
            nan_loss_fn,
            sample_batch,
            _config(log_every=100, checkpoint_every=1),
            checkpoint_dir=tmp_path,
        )
    assert list(tmp_path.iterdir()) == []


def test_reserved_metric_name_from_loss_fn_is_rejected():
    def clashing_loss_fn(model, batch, generator):
        loss, _ = loss_fn(model, batch, generator)
        return loss, {"lr": 1.0}

    with pytest.raises(ValueError, match="reserved"):
        train(make_model(), clashing_loss_fn, sample_batch, _config(), checkpoint_dir=None)


def test_returned_model_is_on_cpu_in_eval_mode_and_global_determinism_restored():
    before = torch.are_deterministic_algorithms_enabled()
    result = train(make_model(), loss_fn, sample_batch, _config(), checkpoint_dir=None)
    assert not result.model.training
    assert all(p.device.type == "cpu" for p in result.model.parameters())
    assert torch.are_deterministic_algorithms_enabled() == before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_uses_bf16_autocast_and_resumes(tmp_path):
    dtypes: list[torch.dtype] = []

    def autocast_loss_fn(model, batch, generator):
        assert batch["x"].is_cuda and generator.device.type == "cuda"
        dtypes.append(model[0](batch["x"]).dtype)
        return loss_fn(model, batch, generator)

    config = _config(device="cuda", steps=6, checkpoint_every=3, ema_decay=0.9)
    first = train(
        make_model(),
        autocast_loss_fn,
        sample_batch,
        _config(device="cuda", steps=3, checkpoint_every=3, ema_decay=0.9),
        checkpoint_dir=tmp_path,
    )
    resumed = train(make_model(), autocast_loss_fn, sample_batch, config, checkpoint_dir=tmp_path)

    assert set(dtypes) == {torch.bfloat16}
    assert first.final_step == 3 and resumed.resumed_from == tmp_path / "step_00000003.pt"
    assert all(
        p.dtype == torch.float32 and p.device.type == "cpu" for p in resumed.model.parameters()
    )


def test_compile_switch_trains_the_same_model_through_torch_compile(monkeypatch):
    compiled = []
    real_compile = torch.compile

    def recording_compile(module, **kwargs):
        compiled.append(module)
        return real_compile(module, **kwargs)

    monkeypatch.setattr(torch, "compile", recording_compile)
    model = make_model(dropout=0.0)
    config = _config(steps=4, compile=True)
    result = train(model, loss_fn, sample_batch, config, checkpoint_dir=None)
    eager = train(
        make_model(dropout=0.0), loss_fn, sample_batch, _config(steps=4), checkpoint_dir=None
    )
    assert compiled == [model]
    losses = [record["loss"] for record in result.history]
    assert losses == pytest.approx([record["loss"] for record in eager.history], rel=1e-4)
    # The compiled wrapper is only used to train: the raw module is what comes back.
    assert result.model is model
