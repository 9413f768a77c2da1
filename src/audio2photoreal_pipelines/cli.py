"""Project commands: Kedro's own ``kedro run``, with bad input reported as one clear message.

A wrong parameter, a corrupt scene file, a failed download, a full disk, a second run of a busy
project or an MLflow store that cannot be opened (corrupt, locked; kedro-mlflow opens it before
the first node) is the user's to fix, not a bug, so it is shown as its message alone;
``A2P_TRACEBACK=1 kedro run ...`` shows the traceback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import click
import mlflow
import yaml
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError
from kedro.validation.exceptions import ParameterValidationError
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import DBAPIError

from audio2photoreal_pipelines.data.download import DownloadError
from audio2photoreal_pipelines.hooks import ProjectRunLockError, TrackingServerUnreachable
from audio2photoreal_pipelines.training.checkpoint import CheckpointWriteError

INPUT_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    DownloadError,
    DatasetError,
    ProjectRunLockError,
    CheckpointWriteError,
    TrackingServerUnreachable,
)


def tracking_store_problem(err: BaseException) -> str | None:
    """One line on why the MLflow store failed, if that is what `err` (or its cause) is."""
    chain = []
    seen: BaseException | None = err
    while seen is not None:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    # The database's own words where there are any: MLflow's wrapper prefixes them with the
    # driver's exception class.
    for kinds in (DBAPIError, DBAPIError | MlflowException):
        found = next((e for e in chain if isinstance(e, kinds)), None)
        if found is not None:
            reason = str(getattr(found, "orig", None) or found).splitlines()[0]
            return (
                f"the MLflow tracking store {mlflow.get_tracking_uri()} cannot be used: {reason}. "
                "Nothing was trained or changed. Free, fix or move the store aside (it is left "
                "as it is), or set mlflow_tracking_uri in conf/base/mlflow.yml"
            )
    return None


# Kedro's report of a block that failed validation (kedro/validation/parameter_validator.py).
_BLOCK_PROBLEM = re.compile(
    r"- Parameter '(?P<block>[^']+)': (?:Failed to instantiate \w+ for parameter '[^']+': )?"
    r"(?P<problems>.*)"
)
_KEY = re.compile(r"[\w.]+")


def parameter_problems(
    err: ParameterValidationError, runtime: dict[str, Any], conf: Path, env: str
) -> str:
    """One line per bad parameter, each naming its key and where it was set: ``--params``, or
    the file of ``conf/<env>`` or ``conf/base`` that holds it (or its nearest enclosing block)."""
    lines = []
    for line in str(err).splitlines()[1:]:
        match = _BLOCK_PROBLEM.fullmatch(line)
        if match is None:
            lines.append(line)
            continue
        # ParameterBlock reports "<key>: <problem>; ..." (parameter_block.describe).
        for problem in match["problems"].split("; "):
            key, separator, message = problem.partition(": ")
            if separator and _KEY.fullmatch(key):
                key = f"{match['block']}.{key}"
            else:
                key, message = match["block"], problem
            lines.append(
                f"parameter {key}: {message} (set in {_parameter_source(key, runtime, conf, env)})"
            )
    return "\n".join(lines)


def _parameter_source(key: str, runtime: dict[str, Any], conf: Path, env: str) -> str:
    parts = key.split(".")
    files = [
        path for folder in (env, "base") for path in sorted((conf / folder).glob("parameters*.yml"))
    ]
    sources = [("--params", runtime)] + [(str(path), _read_yaml(path)) for path in files]
    for depth in range(len(parts), 0, -1):
        for name, tree in sources:
            if _holds(tree, parts[:depth]):
                return name
    return "no parameters file"


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _holds(tree: Any, parts: list[str]) -> bool:
    for part in parts:
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


class _RunWithConciseInputErrors(click.Command):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as err:
            if isinstance(err, ParameterValidationError):
                message = parameter_problems(
                    err,
                    ctx.params.get("params") or {},
                    Path(ctx.params.get("conf_source") or "conf"),
                    ctx.params.get("env") or "local",
                )
            elif isinstance(err, INPUT_ERRORS):
                message = str(err)
            else:
                message = tracking_store_problem(err)
            if message is None or os.environ.get("A2P_TRACEBACK"):
                raise
            click.secho(
                f"Error: {message}\nSet A2P_TRACEBACK=1 to see the traceback.",
                err=True,
                fg="red",
            )
            ctx.exit(1)


@click.group(name="audio2photoreal_pipelines")
def cli() -> None:
    """Commands of the audio2photoreal-pipelines project."""


cli.add_command(
    _RunWithConciseInputErrors(
        name="run",
        callback=kedro_run.callback,
        params=kedro_run.params,
        help=kedro_run.help,
        short_help=kedro_run.short_help,
    )
)
