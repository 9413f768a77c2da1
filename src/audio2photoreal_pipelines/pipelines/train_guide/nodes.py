"""The guide transformer's spec for the training template."""

from __future__ import annotations

import torch

from audio2photoreal_pipelines.datasets.registered_model import RegisteredModule
from audio2photoreal_pipelines.models.builders import GuideParams, build_guide
from audio2photoreal_pipelines.models.guide import guide_loss
from audio2photoreal_pipelines.parameters import GuideObjective
from audio2photoreal_pipelines.pipelines.training_template import (
    ModelSpec,
    Training,
    TrainingRequest,
    check_audio_width,
)


def guide_training(request: TrainingRequest) -> Training:
    """Train the guide to predict the frozen VQ's tokens of each window from its audio."""
    objective: GuideObjective = request.objective
    registered_vq: RegisteredModule = request.extras["vq_model"]
    vq_model = registered_vq.module
    check_audio_width(request.windows, request.model.audio_dim, "guide.model.audio_dim")
    vq_model.eval().requires_grad_(False)

    def loss(guide, batch, generator):
        vq = vq_model.to(batch["keyframes"].device)
        with torch.no_grad():
            tokens = vq.encode(batch["keyframes"], batch["keyframe_mask"])
        logits = guide(
            tokens,
            batch["audio_features"],
            frame_mask=batch["length_mask"],
            cond_drop_prob=objective.cond_drop_prob,
            generator=generator,
        )
        return guide_loss(
            logits, tokens, batch["keyframe_mask"], label_smoothing=objective.label_smoothing
        )

    return Training(
        build=lambda: build_guide(request.model, vq=vq_model),
        loss=loss,
        fingerprint={"objective": objective.as_dict(), "vq": registered_vq.identity()},
    )


GUIDE_SPEC = ModelSpec(
    kind="guide",
    model_params=GuideParams,
    objective=GuideObjective,
    training=guide_training,
    extra_inputs={"vq_model": "vq.model"},
)
