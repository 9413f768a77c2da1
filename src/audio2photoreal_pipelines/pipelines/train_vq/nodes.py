"""The VQ-VAE's spec for the training template."""

from __future__ import annotations

from audio2photoreal_pipelines.models.builders import VQParams
from audio2photoreal_pipelines.models.vqvae import vq_loss
from audio2photoreal_pipelines.parameters import VQObjective
from audio2photoreal_pipelines.pipelines.training_template import (
    ModelSpec,
    Training,
    TrainingRequest,
)


def vq_training(request: TrainingRequest) -> Training:
    """Train the VQ-VAE to reconstruct normalised 1 fps keyframes through its residual codes."""
    objective: VQObjective = request.objective

    def loss(vq, batch, generator):
        out = vq(batch["keyframes"], batch["keyframe_mask"])
        return vq_loss(
            out, batch["keyframes"], batch["keyframe_mask"], commit_weight=objective.commit_weight
        )

    return Training(
        build=request.model.build, loss=loss, fingerprint={"objective": objective.as_dict()}
    )


VQ_SPEC = ModelSpec(kind="vq", model_params=VQParams, objective=VQObjective, training=vq_training)
