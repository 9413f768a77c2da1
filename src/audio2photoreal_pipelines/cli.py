"""Project commands: Kedro's own ``kedro run``, with bad input reported as one clear message.

A wrong parameter, a corrupt scene file, a failed download or a second run of a busy project is
the user's to fix, not a bug, so
it is shown as its message alone; ``A2P_TRACEBACK=1 kedro run ...`` shows the traceback.
"""

from __future__ import annotations

import os

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError

from audio2photoreal_pipelines.data.download import DownloadError
from audio2photoreal_pipelines.hooks import ProjectRunLockError

INPUT_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    DownloadError,
    DatasetError,
    ProjectRunLockError,
)


class _RunWithConciseInputErrors(click.Command):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except INPUT_ERRORS as err:
            if os.environ.get("A2P_TRACEBACK"):
                raise
            click.secho(
                f"Error: {err}\nSet A2P_TRACEBACK=1 to see the traceback.",
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
