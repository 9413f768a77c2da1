"""Node of the ``train_face`` pipeline."""

from __future__ import annotations

import logging

import numpy as np

from audio2photoreal_pipelines.data.windows import WindowSampler
from audio2photoreal_pipelines.datasets.registered_model import TrainedModel
from audio2photoreal_pipelines.models.denoisers import build_face_denoiser
from audio2photoreal_pipelines.pipelines.training_template import fit_denoiser

logger = logging.getLogger(__name__)


def train_face(
    windows: WindowSampler,
    data_stats: dict[str, np.ndarray],
    model_params: dict,
    train_params: dict,
    objective: dict,
    dataset: dict,
    checkpoints: dict,
) -> tuple[TrainedModel, list[dict]]:
    """Train the face denoiser to predict clean face codes from noisy ones and the audio."""
    return fit_denoiser(
        build_face_denoiser,
        windows,
        kind="face",
        model_params=model_params,
        train_params=train_params,
        objective=objective,
        dataset=dataset,
        checkpoints=checkpoints,
        data_stats=data_stats,
    )
