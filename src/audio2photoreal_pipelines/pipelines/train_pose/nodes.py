"""Node of the ``train_pose`` pipeline."""

from __future__ import annotations

import numpy as np

from audio2photoreal_pipelines.data.windows import WindowSampler
from audio2photoreal_pipelines.datasets.registered_model import TrainedModel
from audio2photoreal_pipelines.models.denoisers import build_pose_denoiser
from audio2photoreal_pipelines.pipelines.training_template import fit_denoiser


def train_pose(
    windows: WindowSampler,
    data_stats: dict[str, np.ndarray],
    model_params: dict,
    train_params: dict,
    objective: dict,
    dataset: dict,
    checkpoints: dict,
) -> tuple[TrainedModel, list[dict]]:
    """Train the body denoiser on noisy poses, the audio and the 1 fps guide poses."""
    return fit_denoiser(
        build_pose_denoiser,
        windows,
        kind="pose",
        model_params=model_params,
        train_params=train_params,
        objective=objective,
        dataset=dataset,
        checkpoints=checkpoints,
        data_stats=data_stats,
    )
