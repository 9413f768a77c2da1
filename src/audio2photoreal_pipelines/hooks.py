"""Project hooks: set-up that every `kedro run` needs before its first node."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

from audio2photoreal_pipelines.training.threads import configure_torch_threads


class TorchThreadsHook:
    """Choose torch's intra-op thread count once per run (see `training.threads`)."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        configure_torch_threads()
