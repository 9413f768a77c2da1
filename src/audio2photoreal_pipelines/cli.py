"""Project commands: Kedro's own ``kedro run``, with bad input reported as one clear message.

A wrong parameter, a corrupt scene file, a failed download, a full disk, a second run of a busy
project or an MLflow store that cannot be opened (corrupt, locked; kedro-mlflow opens it before
the first node) is the user's to fix, not a bug, so it is shown as its message alone;
``A2P_TRACEBACK=1 kedro run ...`` shows the traceback.
"""

from __future__ import annotations

import os

import click
import mlflow
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError
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


class _RunWithConciseInputErrors(click.Command):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as err:
            message = str(err) if isinstance(err, INPUT_ERRORS) else tracking_store_problem(err)
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
