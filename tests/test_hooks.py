"""Project hooks: one run at a time per project."""

from __future__ import annotations

import os

import pytest

from audio2photoreal_pipelines.hooks import ProjectRunLockError, ProjectRunLockHook


def test_the_run_lock_is_held_for_the_run_and_released_after_it(tmp_path):
    params = {"project_path": str(tmp_path)}
    first, second = ProjectRunLockHook(), ProjectRunLockHook()
    first.before_pipeline_run(params)
    assert (tmp_path / "data" / ".kedro-run.pid").read_text() == f"{os.getpid()}\n"
    with pytest.raises(ProjectRunLockError, match=f"pid {os.getpid()}"):
        second.before_pipeline_run(params)
    first.after_pipeline_run()
    second.before_pipeline_run(params)  # free again
    second.on_pipeline_error()  # a failed run releases it too
    first.before_pipeline_run(params)
    first.after_pipeline_run()
