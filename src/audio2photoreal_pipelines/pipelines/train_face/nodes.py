"""The face denoiser's spec for the training template."""

from __future__ import annotations

from audio2photoreal_pipelines.models.builders import FaceParams
from audio2photoreal_pipelines.parameters import DiffusionObjective
from audio2photoreal_pipelines.pipelines.training_template import (
    ModelSpec,
    Training,
    TrainingRequest,
    diffusion_training,
)


def face_training(request: TrainingRequest) -> Training:
    """Train the face denoiser to predict clean face codes from noisy ones and the audio."""
    return diffusion_training(request)


FACE_SPEC = ModelSpec(
    kind="face", model_params=FaceParams, objective=DiffusionObjective, training=face_training
)
