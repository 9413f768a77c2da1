"""The one training loop shared by every model, with its device, config and checkpoint helpers.

`tracking` (MLflow) is imported on its own, so that training itself never needs MLflow.
"""

from audio2photoreal_pipelines.training.config import TrainConfig
from audio2photoreal_pipelines.training.device import autocast_context, select_device
from audio2photoreal_pipelines.training.loop import TrainResult, train, train_data_parallel
from audio2photoreal_pipelines.training.rng import seed_everything

__all__ = [
    "TrainConfig",
    "TrainResult",
    "autocast_context",
    "seed_everything",
    "select_device",
    "train",
    "train_data_parallel",
]
