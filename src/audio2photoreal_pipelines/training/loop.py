"""The one training loop shared by the VQ-VAE, guide, face and body models.

Each update ``k = 1..steps`` draws ``sample_batch(batch_size, data_generator)``, moves it to the
device, computes ``loss_fn(model, batch, loss_generator)`` (under bf16 autocast on CUDA), clips
the gradient norm, takes an AdamW step, advances the learning-rate schedule and updates the EMA.

Randomness, all of it checkpointed so that a resumed run ends bit-identical to an uninterrupted one
on CPU:

- ``data_generator``: a CPU ``torch.Generator`` for the window sampler;
- ``loss_generator``: a ``torch.Generator`` on the training device for diffusion noise, timesteps
  and condition dropout; draw with ``torch.randn(shape, generator=g, device=g.device)``;
- the global torch (dropout), numpy and python RNGs, seeded at a fresh start.

Seeds are derived from ``(config.seed, rank, stream)``, so each data-parallel process draws its own
windows. With ``world_size`` > 1 (inside `training.distributed.run_local_processes`) the module is
wrapped in `DistributedDataParallel`, which averages the gradients; the logged means are averaged
over the ranks, every rank's RNG state is gathered into the checkpoint, and every side effect goes
through `_RankZeroSideEffects`, so only rank 0 logs and writes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from audio2photoreal_pipelines.training.checkpoint import (
    CheckpointError,
    load_latest_checkpoint,
    remove_stale_temporaries,
    write_checkpoint,
)
from audio2photoreal_pipelines.training.config import TrainConfig
from audio2photoreal_pipelines.training.device import autocast_context, select_device, set_tf32
from audio2photoreal_pipelines.training.distributed import (
    all_ranks_true,
    check_group,
    gather_by_rank,
    joined_group,
    mean_over_ranks,
    run_local_processes,
)
from audio2photoreal_pipelines.training.rng import (
    capture_global_rng,
    derive_seed,
    restore_global_rng,
    seed_everything,
)
from audio2photoreal_pipelines.training.schedule import build_optimizer

logger = logging.getLogger(__name__)

LossFn = Callable[
    [nn.Module, dict[str, Tensor], torch.Generator], tuple[Tensor, Mapping[str, float | Tensor]]
]
SampleBatch = Callable[[int, torch.Generator], Mapping[str, Tensor]]
MetricLogger = Callable[[dict[str, float], int], None]
CheckpointCallback = Callable[[Path, int], None]

_DATA_STREAM, _LOSS_STREAM, _GLOBAL_STREAM = 0, 1, 2
_RESERVED_METRICS = frozenset({"step", "loss", "lr", "steps_per_s", "grad_norm"})
# Changing these between an interruption and the resume does not change the trained weights.
_RESUME_SAFE_FIELDS = frozenset(
    {"steps", "log_every", "checkpoint_every", "keep_checkpoints", "device"}
)


@dataclass
class TrainResult:
    """What `train` hands back.

    ``model`` is the EMA of the weights when ``config.ema_decay`` is set (a copy of the same class;
    the module passed in keeps the raw weights), else the trained module itself. Both are returned
    on CPU in eval mode, so they pickle and load anywhere. ``history`` has one dict per log step
    (``step``, ``loss`` and the ``loss_fn`` metrics averaged since the previous log step, ``lr``
    of that step, ``grad_norm`` when clipping, ``steps_per_s``), including those logged before a
    resume. ``final_checkpoint`` is the file holding the final state (rank 0 with a checkpoint
    folder only).
    """

    model: nn.Module
    history: list[dict[str, float]]
    final_step: int
    resumed_from: Path | None
    final_checkpoint: Path | None


def train(
    model: nn.Module,
    loss_fn: LossFn,
    sample_batch: SampleBatch,
    config: TrainConfig,
    *,
    checkpoint_dir: Path | None,
    log_metrics: MetricLogger | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    rank: int = 0,
    world_size: int = 1,
    description: str = "train",
) -> TrainResult:
    """Train `model` for ``config.steps`` updates, resuming from the newest valid checkpoint.

    ``loss_fn(model, batch, loss_generator) -> (scalar loss, metrics)`` must take all of its
    randomness from ``loss_generator`` (or the global torch RNG, as dropout does). Only rank 0
    logs, shows the progress bar, calls ``log_metrics(metrics, step)`` every ``log_every`` steps
    and writes checkpoints (every ``checkpoint_every`` steps and at the end, then
    ``on_checkpoint(path, step)``). ``checkpoint_dir=None`` trains without checkpoints.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
    check_group(rank, world_size)
    device = select_device(config.device)
    effects = _RankZeroSideEffects(
        enabled=rank == 0,
        checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
        keep=config.keep_checkpoints,
        log_metrics=log_metrics,
        on_checkpoint=on_checkpoint,
        description=description,
    )
    model.to(device)
    set_tf32(device, config.tf32)
    state = _TrainingState(model, config, device, rank, world_size)
    resumed_from = _resume(state, effects) if checkpoint_dir is not None else None
    final_checkpoint = resumed_from if effects.enabled else None
    if state.step < config.steps:
        if world_size > 1:
            # Broadcasts rank 0's weights, then averages the gradients in every backward pass.
            state.forward_model = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        if config.compile:
            state.forward_model = torch.compile(state.forward_model)
        with _deterministic_algorithms(device):
            final_checkpoint = _run_steps(state, loss_fn, sample_batch, effects)
    else:
        effects.info(
            "%s: already at step %d of %d; nothing to train", description, state.step, config.steps
        )
    trained = state.ema.module if state.ema is not None else model
    model.cpu().eval()
    trained.cpu().eval()
    return TrainResult(
        model=trained,
        history=state.history,
        final_step=state.step,
        resumed_from=resumed_from,
        final_checkpoint=final_checkpoint,
    )


def train_data_parallel(
    model: nn.Module,
    loss_fn: LossFn,
    sample_batch: SampleBatch,
    config: TrainConfig,
    *,
    checkpoint_dir: Path | None,
    log_metrics: MetricLogger | None = None,
    description: str = "train",
) -> TrainResult:
    """`train` in ``config.processes`` local processes (plain `train` for one).

    The processes only train and write checkpoints (rank 0). This process then loads the final
    checkpoint through `train`'s resume, with nothing left to train, and logs its history: MLflow
    is touched from here alone, because a forked process must not reuse the parent's database
    connection. A killed run resumes from its last checkpoint, whatever the number of processes.

    In a process that already belongs to a group (a torchrun job), this trains as its rank.
    """
    group = joined_group()
    train_as = partial(
        train,
        model,
        loss_fn,
        sample_batch,
        config,
        checkpoint_dir=checkpoint_dir,
        description=description,
    )
    if group is not None:
        if config.processes != 1:
            raise ValueError(
                f"{description}: processes={config.processes} inside a torchrun job; torchrun "
                "starts the processes, so set processes to 1"
            )
        rank, world_size = group
        return train_as(rank=rank, world_size=world_size)
    if config.processes == 1:
        return train_as(log_metrics=log_metrics)
    if checkpoint_dir is None:
        raise ValueError(
            f"{description}: processes={config.processes} needs a checkpoint folder, "
            "through which the trained weights come back"
        )

    def worker(rank: int, world_size: int) -> None:
        train_as(rank=rank, world_size=world_size)

    logger.info("%s: training in %d processes", description, config.processes)
    run_local_processes(worker, config.processes, device=select_device(config.device))
    result = train_as()
    if log_metrics is not None:
        for record in result.history:
            log_metrics({k: v for k, v in record.items() if k != "step"}, int(record["step"]))
    return result


class _IntervalMetrics:
    """Per-step metrics summed since the last log step (checkpointed, so resumed logs match)."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor | float] = {}
        self.count = 0

    def add(self, metrics: Mapping[str, Tensor | float]) -> None:
        for name, value in metrics.items():
            # Tensors stay on the device: no host sync until the next log or checkpoint step.
            value = value.detach().float() if isinstance(value, Tensor) else float(value)
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.count += 1

    def loss_is_finite(self) -> bool:
        return self.count == 0 or math.isfinite(float(self.sums["loss"]))

    def pop_means(self) -> dict[str, float]:
        means = {name: float(total) / self.count for name, total in self.sums.items()}
        self.sums, self.count = {}, 0
        return means

    def state_dict(self) -> dict[str, Any]:
        sums = {k: v.cpu() if isinstance(v, Tensor) else v for k, v in self.sums.items()}
        return {"sums": sums, "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any], device: torch.device) -> None:
        self.sums = {
            k: v.to(device) if isinstance(v, Tensor) else v for k, v in state["sums"].items()
        }
        self.count = state["count"]


class _TrainingState:
    """Everything a checkpoint holds, and how to save and restore it."""

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        device: torch.device,
        rank: int,
        world_size: int,
    ) -> None:
        self.model, self.config, self.device = model, config, device
        self.rank, self.world_size = rank, world_size
        self.forward_model: nn.Module = model  # what the loss calls: DDP-wrapped when distributed
        self.optimizer, self.scheduler = build_optimizer(model, config)
        self.ema = None
        if config.ema_decay is not None:
            # Buffers are averaged too, so that e.g. a codebook kept as a buffer follows the EMA.
            self.ema = AveragedModel(
                model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True
            )
        self.data_generator = torch.Generator()
        self.loss_generator = torch.Generator(device=device)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.interval = _IntervalMetrics()
        self.seed_generators(config.seed)
        seed_everything(derive_seed(config.seed, rank, _GLOBAL_STREAM))

    def seed_generators(self, *keys: int) -> None:
        self.data_generator.manual_seed(derive_seed(*keys, self.rank, _DATA_STREAM))
        self.loss_generator.manual_seed(derive_seed(*keys, self.rank, _LOSS_STREAM))

    def rng_by_rank(self) -> dict[int, dict[str, Any]]:
        """This rank's generator states, gathered from every rank when distributed."""
        local = {
            "data": self.data_generator.get_state(),
            "loss": self.loss_generator.get_state(),
            **capture_global_rng(self.device),
        }
        return gather_by_rank(local) if self.world_size > 1 else {self.rank: local}

    def state_dict(self, rng: dict[int, dict[str, Any]]) -> dict[str, Any]:
        return {
            "config": self.config.as_dict(),
            "device_type": self.device.type,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "rng": rng,
            "history": list(self.history),
            "interval": self.interval.state_dict(),
        }

    def load_state_dict(
        self, checkpoint: Mapping[str, Any], path: Path, warn: Callable[..., None]
    ) -> None:
        if (checkpoint["ema"] is None) != (self.ema is None):
            raise ValueError(
                f"{path}: written with ema_decay={checkpoint['config'].get('ema_decay')!r}, "
                f"cannot resume with ema_decay={self.config.ema_decay!r}"
            )
        try:
            self.model.load_state_dict(checkpoint["model"])
            if self.ema is not None:
                self.ema.load_state_dict(checkpoint["ema"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        except (RuntimeError, ValueError) as error:
            raise ValueError(f"{path}: does not fit this model: {error}") from None
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.step = checkpoint["step"]
        self.history = list(checkpoint["history"])
        self.interval.load_state_dict(checkpoint["interval"], self.device)
        rng = checkpoint["rng"].get(self.rank)
        if rng is None or checkpoint["device_type"] != self.device.type:
            # Generator states do not transfer between device types (or to a missing rank).
            warn(
                "%s: no RNG state for rank %d on %s; reseeding, so randomness will differ "
                "from an uninterrupted run",
                path,
                self.rank,
                self.device.type,
            )
            self.seed_generators(self.config.seed, self.step)
            seed_everything(derive_seed(self.config.seed, self.step, self.rank, _GLOBAL_STREAM))
            return
        self.data_generator.set_state(rng["data"])
        self.loss_generator.set_state(rng["loss"])
        restore_global_rng(rng, self.device)

    def changed_fields(self, saved: Mapping[str, Any]) -> list[str]:
        current = self.config.as_dict()
        return sorted(
            name
            for name, value in current.items()
            if name not in _RESUME_SAFE_FIELDS and _plain(saved.get(name)) != _plain(value)
        )


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


class _RankZeroSideEffects:
    """Every side effect of training in one place: logs, progress bar, metrics, checkpoints.

    All of them are no-ops off rank 0, so data-parallel processes cannot race or repeat them.
    """

    def __init__(
        self,
        *,
        enabled: bool,
        checkpoint_dir: Path | None,
        keep: int,
        log_metrics: MetricLogger | None,
        on_checkpoint: CheckpointCallback | None,
        description: str,
    ) -> None:
        self.enabled = enabled
        self.checkpoint_dir = checkpoint_dir
        self.keep = keep
        self.log_metrics = log_metrics
        self.on_checkpoint = on_checkpoint
        self.description = description
        self._bar: tqdm | None = None

    def info(self, message: str, *args: Any) -> None:
        if self.enabled:
            logger.info(message, *args)

    def warning(self, message: str, *args: Any) -> None:
        if self.enabled:
            logger.warning(message, *args)

    def remove_stale_temporaries(self) -> None:
        if self.enabled and self.checkpoint_dir is not None:
            for path in remove_stale_temporaries(self.checkpoint_dir):
                logger.warning("Removed %s, left by a checkpoint write that was interrupted", path)

    @contextmanager
    def progress(self, start_step: int, total: int) -> Iterator[None]:
        self._bar = tqdm(
            total=total,
            initial=start_step,
            desc=self.description,
            unit="step",
            disable=not self.enabled,
            dynamic_ncols=True,
        )
        try:
            yield
        finally:
            self._bar.close()
            self._bar = None

    def step_done(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def record(self, metrics: dict[str, float], step: int) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix(
                step=step,
                loss=f"{metrics['loss']:.4g}",
                it_s=f"{metrics['steps_per_s']:.3g}",
                refresh=False,
            )
        if self.log_metrics is not None:
            self.log_metrics({k: v for k, v in metrics.items() if k != "step"}, step)

    def checkpoint(self, step: int, state: Callable[[], dict[str, Any]]) -> Path | None:
        if not self.enabled or self.checkpoint_dir is None:
            return None
        path = write_checkpoint(self.checkpoint_dir, step, state(), keep=self.keep)
        logger.info("%s: wrote checkpoint %s (step %d)", self.description, path, step)
        if self.on_checkpoint is not None:
            self.on_checkpoint(path, step)
        return path


def _resume(state: _TrainingState, effects: _RankZeroSideEffects) -> Path | None:
    """Load the newest valid checkpoint into `state`; return its path (None: fresh start)."""
    directory = effects.checkpoint_dir
    effects.remove_stale_temporaries()

    def skip(path: Path, error: CheckpointError) -> None:
        effects.warning("Skipping checkpoint %s: %s", path, error)

    found = load_latest_checkpoint(directory, on_skip=skip)
    if found is None:
        effects.info(
            "%s: no checkpoint in %s; starting from step 0", effects.description, directory
        )
        return None
    path, checkpoint = found
    if checkpoint["step"] > state.config.steps:
        raise ValueError(
            f"{path} is at step {checkpoint['step']}, beyond steps={state.config.steps}: "
            f"raise steps or use another checkpoint folder"
        )
    changed = state.changed_fields(checkpoint["config"])
    if changed:
        effects.warning(
            "%s was written with different %s; the result will differ from an uninterrupted run",
            path,
            ", ".join(changed),
        )
    state.load_state_dict(checkpoint, path, effects.warning)
    effects.info("%s: resuming from %s at step %d", effects.description, path, state.step)
    return path


def _run_steps(
    state: _TrainingState,
    loss_fn: LossFn,
    sample_batch: SampleBatch,
    effects: _RankZeroSideEffects,
) -> Path | None:
    """Train from ``state.step`` to ``config.steps``; return the last checkpoint written."""
    config = state.config
    last_checkpoint = None
    state.model.train()
    clock_step, clock_time = state.step, time.perf_counter()
    with effects.progress(state.step, config.steps):
        while state.step < config.steps:
            lr = state.optimizer.param_groups[0]["lr"]
            state.interval.add(_update(state, loss_fn, sample_batch))
            state.step += 1
            step = state.step
            effects.step_done()
            is_last = step == config.steps
            if step % config.log_every == 0 or is_last:
                _raise_if_nonfinite(state, effects.description)
                now = time.perf_counter()
                rate = (step - clock_step) / max(now - clock_time, 1e-9)
                clock_step, clock_time = step, now
                means = {**state.interval.pop_means(), "lr": lr, "steps_per_s": rate}
                record = {"step": step, **mean_over_ranks(means, state.device)}
                state.history.append(record)
                effects.record(record, step)
            if step % config.checkpoint_every == 0 or is_last:
                _raise_if_nonfinite(state, effects.description)
                rng = state.rng_by_rank()  # a collective: every rank takes part
                last_checkpoint = (
                    effects.checkpoint(step, lambda rng=rng: state.state_dict(rng))
                    or last_checkpoint
                )
    return last_checkpoint


def _update(
    state: _TrainingState, loss_fn: LossFn, sample_batch: SampleBatch
) -> dict[str, Tensor | float]:
    """One optimizer update; return this step's metrics (tensors left on the device)."""
    batch = sample_batch(state.config.batch_size, state.data_generator)
    if not isinstance(batch, Mapping):
        raise TypeError(f"sample_batch must return a dict of tensors, got {type(batch).__name__}")
    batch = {
        k: v.to(state.device, non_blocking=True) if isinstance(v, Tensor) else v
        for k, v in batch.items()
    }
    state.optimizer.zero_grad(set_to_none=True)
    with autocast_context(state.device, bf16=state.config.bf16):
        loss, metrics = loss_fn(state.forward_model, batch, state.loss_generator)
    if not isinstance(loss, Tensor) or loss.ndim != 0:
        raise TypeError("loss_fn must return (scalar loss tensor, metrics dict)")
    clashes = _RESERVED_METRICS & set(metrics)
    if clashes:
        raise ValueError(f"loss_fn metrics use reserved name(s) {sorted(clashes)}")
    loss.backward()
    step_metrics: dict[str, Tensor | float] = {"loss": loss, **metrics}
    if state.config.grad_clip_norm is not None:
        step_metrics["grad_norm"] = nn.utils.clip_grad_norm_(
            state.model.parameters(), state.config.grad_clip_norm
        )
    state.optimizer.step()
    state.scheduler.step()
    if state.ema is not None:
        state.ema.update_parameters(state.model)
    return step_metrics


def _raise_if_nonfinite(state: _TrainingState, description: str) -> None:
    if not all_ranks_true(state.interval.loss_is_finite(), state.device):
        raise FloatingPointError(
            f"{description}: the loss became non-finite at or before step {state.step}; "
            "stopping before the state is logged or checkpointed"
        )


@contextmanager
def _deterministic_algorithms(device: torch.device) -> Iterator[None]:
    """Deterministic kernels on CPU for the duration of training, then the caller's setting."""
    if device.type != "cpu":
        yield
        return
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
