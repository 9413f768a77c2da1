"""The parameters a ``kedro run --env <env>`` sees, for code that runs outside a session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader

from audio2photoreal_pipelines.settings import CONFIG_LOADER_ARGS


def load_parameters(conf_source: str | Path, env: str = "base") -> dict[str, Any]:
    """All parameters of ``env`` merged over base, globals resolved, with the project's settings."""
    loader = OmegaConfigLoader(str(conf_source), **{**CONFIG_LOADER_ARGS, "default_run_env": env})
    return loader["parameters"]
