"""Project hooks: set-up that every `kedro run` needs before its first node."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from filelock import FileLock, Timeout
from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook

from audio2photoreal_pipelines.data.acquire import DatasetParams
from audio2photoreal_pipelines.parameter_block import ParameterBlock
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
    the id names the data folders and the registered models. Kedro validates ``params:dataset``
    only for the pipelines that take it; the id names folders for every pipeline."""

    @hook_impl
    def before_pipeline_run(self, catalog: Any) -> None:
        DatasetParams.model_validate(catalog.load("params:dataset"))


class TrackingServerUnreachable(RuntimeError):
    """The MLflow tracking server named in mlflow.yml does not answer."""


def check_tracking_server(uri: str | None, timeout_seconds: float = 5.0) -> None:
    """Raise `TrackingServerUnreachable` in one line if an http(s) ``uri`` does not answer.

    Any HTTP answer counts; file and database stores are not probed (the CLI reports their
    faults).
    """
    if not uri or urlparse(uri).scheme not in ("http", "https"):
        return
    try:
        requests.get(uri.rstrip("/") + "/health", timeout=timeout_seconds)
    except requests.Timeout:
        reason = f"no answer within {timeout_seconds:g} s"
    except requests.ConnectionError:
        reason = "the connection was refused or the host is unknown"
    except requests.RequestException as exc:
        reason = type(exc).__name__
    else:
        return
    raise TrackingServerUnreachable(
        f"the MLflow tracking server {uri} cannot be reached: {reason}. Nothing was run. Start "
        "it, or set server.mlflow_tracking_uri in conf/local/mlflow.yml (conf/base uses "
        "sqlite:///mlflow.db)"
    )


class TrackingServerHook:
    """Fail in seconds when mlflow.yml names a tracking server that does not answer.

    MLflow retries an unreachable server with backoff for about four minutes (measured) before
    the run fails; this probe runs first (``tryfirst``, before kedro-mlflow's own hook).
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        loader = context.config_loader
        loader.config_patterns.setdefault("mlflow", ["mlflow*", "mlflow*/**", "**/mlflow*"])
        try:
            server = loader["mlflow"].get("server") or {}
        except MissingConfigException:
            return
        check_tracking_server(server.get("mlflow_tracking_uri"))


class TypedParamsMlflowHook(MlflowHook):
    """kedro-mlflow's hook (registered here in place of its own, settings.py), logging each typed
    parameter block key by key, ``vq.train.steps``, as it does for plain dicts: it flattens only
    dicts, and would log a block as one string."""

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any], is_async: bool):
        plain = {
            name: value.as_dict() if isinstance(value, ParameterBlock) else value
            for name, value in inputs.items()
        }
        # Returns None: a dict returned here would replace the node's own inputs.
        super().before_node_run(node, catalog, plain, is_async)
