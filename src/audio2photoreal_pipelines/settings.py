"""Project settings; see https://docs.kedro.org/en/stable/kedro_project_setup/settings.html."""

from kedro.config import OmegaConfigLoader

from audio2photoreal_pipelines.hooks import (
    PersonIdHook,
    ProjectRunLockHook,
    TorchThreadsHook,
    TrackingServerHook,
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
# Parameters merge key by key, so an environment (conf/paper) states only what differs from base.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft"},
}

HOOKS = (TrackingServerHook(), PersonIdHook(), ProjectRunLockHook(), TorchThreadsHook())
