"""Project hooks: set-up that every `kedro run` needs before its first node."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from kedro.framework.hooks import hook_impl

from audio2photoreal_pipelines.data.acquire import check_person_id
from audio2photoreal_pipelines.training.threads import configure_torch_threads


class TorchThreadsHook:
    """Choose torch's intra-op thread count once per run (see `training.threads`)."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        configure_torch_threads()


class ProjectRunLockError(RuntimeError):
    """Another `kedro run` holds this project's run lock."""


class ProjectRunLockHook:
    """One `kedro run` at a time per project: a second one refuses at once, saying why.

    Two runs would share checkpoint folders, the registry's aliases and the ``data/`` outputs. The
    lock is an OS file lock (``data/.kedro-run.lock``), so a killed run releases it with its
    process; ``data/.kedro-run.pid`` only names the holder in the message.
    """

    def __init__(self) -> None:
        self._lock: FileLock | None = None

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        data = Path(run_params["project_path"]) / "data"
        data.mkdir(exist_ok=True)
        lock = FileLock(data / ".kedro-run.lock")
        holder = data / ".kedro-run.pid"
        try:
            lock.acquire(timeout=0)
        except Timeout:
            who = holder.read_text().strip() if holder.is_file() else "unknown"
            raise ProjectRunLockError(
                f"{lock.lock_file}: another `kedro run` (pid {who}) is using this project; "
                "wait for it to finish. Runs of one project take turns so that they never "
                "write the same checkpoints, data or registry aliases."
            ) from None
        holder.write_text(f"{os.getpid()}\n")
        self._lock = lock

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._release()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class PersonIdHook:
    """Refuse a person id that is a path (``../x``, ``/abs``) before any dataset is touched:
    the id names the data folders and the registered models."""

    @hook_impl
    def before_pipeline_run(self, catalog: Any) -> None:
        check_person_id(catalog.load("params:dataset")["person"])
