"""Project settings; see https://docs.kedro.org/en/stable/kedro_project_setup/settings.html."""

from kedro.config import OmegaConfigLoader

from audio2photoreal_pipelines.hooks import (
    PersonIdHook,
    ProjectRunLockHook,
    TorchThreadsHook,
    TrackingServerHook,
    TypedParamsMlflowHook,
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
# Parameters merge key by key, so an environment (conf/paper) states only what differs from base.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft"},
}

# kedro-mlflow's hook is registered by the project, in the place its plugin entry point took (last,
# so called first), as a subclass that logs typed parameter blocks key by key.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)  # its distribution name as Kedro reads it
HOOKS = (
    TrackingServerHook(),
    PersonIdHook(),
    ProjectRunLockHook(),
    TorchThreadsHook(),
    TypedParamsMlflowHook(),
)
