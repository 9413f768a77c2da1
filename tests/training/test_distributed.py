"""Data-parallel training in 2 gloo processes on the CPU, against one process."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from audio2photoreal_pipelines.training import TrainConfig, train, train_data_parallel
from audio2photoreal_pipelines.training.checkpoint import read_checkpoint
from audio2photoreal_pipelines.training.distributed import run_local_processes
from tests.training.toy import RESUME_CONFIG, loss_fn, make_model, sample_batch

CPU = torch.device("cpu")
GLOBAL_BATCH = 16
INPUTS = torch.randn(64, 4, generator=torch.Generator().manual_seed(5))
TARGETS = INPUTS @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.3 * INPUTS[:, :1] ** 2


def _mlp() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))


def _mse(model: nn.Module, batch: dict[str, Tensor], generator: torch.Generator):
    return ((model(batch["x"]) - batch["y"]) ** 2).mean(), {}


def _rows_in_order() -> object:
    """A sampler that walks the data in a fixed order: global batch k is rows 16k ... 16k + 15.

    Each process gets its own copy (fork), and ``torch.distributed`` tells it which part of the
    global batch is its own, so 2 x 8 rows are exactly the 16 rows one process would take.
    """
    calls = [0]

    def sample(batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        start = (calls[0] * GLOBAL_BATCH + rank * batch_size) % len(INPUTS)
        calls[0] += 1
        rows = slice(start, start + batch_size)
        return {"x": INPUTS[rows], "y": TARGETS[rows]}

    return sample


def _config(**changes) -> TrainConfig:
    base = TrainConfig(
        steps=20,
        batch_size=GLOBAL_BATCH,
        lr=0.05,
        log_every=1,
        checkpoint_every=10,
        seed=0,
        device="cpu",
    )
    return base.model_copy(update=changes)


def test_two_processes_follow_one_process_with_the_same_global_batch(tmp_path):
    single = train(
        _mlp(), _mse, _rows_in_order(), _config(), checkpoint_dir=None, description="one"
    )
    logged: list[tuple[int, float]] = []
    parallel = train_data_parallel(
        _mlp(),
        _mse,
        _rows_in_order(),
        _config(batch_size=GLOBAL_BATCH // 2, processes=2),
        checkpoint_dir=tmp_path,
        log_metrics=lambda metrics, step: logged.append((step, metrics["loss"])),
        description="two",
    )
    single_loss = [record["loss"] for record in single.history]
    parallel_loss = [record["loss"] for record in parallel.history]
    assert len(parallel_loss) == 20
    # Gradients are averaged over the ranks: the same updates up to float rounding.
    assert parallel_loss == pytest.approx(single_loss, rel=1e-4)
    assert parallel_loss[-1] < 0.5 * parallel_loss[0]
    for a, b in zip(single.model.parameters(), parallel.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # MLflow sees rank 0's history once, logged by the calling process.
    assert [step for step, _ in logged] == list(range(1, 21))


def _train_and_save(folder: Path, config: TrainConfig, checkpoint_dir: Path | None):
    """A worker that trains the noisy toy (random windows, noise, dropout) and saves its weights."""

    def worker(rank: int, world_size: int) -> None:
        result = train(
            make_model(),
            loss_fn,
            sample_batch,
            config,
            checkpoint_dir=checkpoint_dir,
            rank=rank,
            world_size=world_size,
        )
        torch.save(result.model.state_dict(), folder / f"rank{rank}.pt")
        torch.save(result.history, folder / f"history{rank}.pt")

    return worker


def test_ranks_draw_their_own_data_and_end_with_identical_weights(tmp_path):
    config = RESUME_CONFIG.model_copy(update=dict(processes=2))
    run_local_processes(_train_and_save(tmp_path, config, tmp_path / "ckpt"), 2, device=CPU)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    # The logged means are averaged over the ranks, so both ranks record the same history.
    assert torch.load(tmp_path / "history0.pt") == torch.load(tmp_path / "history1.pt")
    # Each rank drew its own windows and noise: its RNG state is in the checkpoint.
    final = read_checkpoint(tmp_path / "ckpt" / f"step_{config.steps:08d}.pt")
    assert set(final["rng"]) == {0, 1}
    assert not torch.equal(final["rng"][0]["data"], final["rng"][1]["data"])
    one_process = train(make_model(), loss_fn, sample_batch, RESUME_CONFIG, checkpoint_dir=None)
    assert not torch.equal(one_process.model.state_dict()["0.weight"], rank0["0.weight"])


def test_two_processes_resume_to_the_same_weights(tmp_path):
    config = RESUME_CONFIG.model_copy(update=dict(processes=2))
    (tmp_path / "a").mkdir()
    run_local_processes(_train_and_save(tmp_path / "a", config, tmp_path / "ca"), 2, device=CPU)
    # Stop after the first checkpoint, then run again to the end: the resume restores every
    # rank's RNG state, so the result is the uninterrupted one.
    stopped = config.model_copy(update=dict(steps=config.checkpoint_every))
    for folder, run_config in (("b1", stopped), ("b", config)):
        (tmp_path / folder).mkdir()
        run_local_processes(
            _train_and_save(tmp_path / folder, run_config, tmp_path / "cb"), 2, device=CPU
        )
    uninterrupted, resumed = (
        torch.load(tmp_path / "a" / "rank0.pt"),
        torch.load(tmp_path / "b" / "rank0.pt"),
    )
    for name in uninterrupted:
        assert torch.equal(uninterrupted[name], resumed[name]), name


def test_a_failing_rank_fails_the_caller_with_its_error():
    def worker(rank: int, world_size: int) -> None:
        if rank == 1:
            raise ValueError("rank 1 could not read its shard")

    with pytest.raises(Exception, match="rank 1 could not read its shard"):
        run_local_processes(worker, 2, device=CPU)


def test_several_processes_need_a_checkpoint_folder():
    with pytest.raises(ValueError, match="needs a checkpoint folder"):
        train_data_parallel(
            _mlp(), _mse, _rows_in_order(), _config(processes=2), checkpoint_dir=None
        )
