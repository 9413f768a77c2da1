"""Node of the ``train_guide`` pipeline."""

from __future__ import annotations

import numpy as np
import torch

from audio2photoreal_pipelines.data.windows import WindowSampler
from audio2photoreal_pipelines.datasets.registered_model import TrainedModel
from audio2photoreal_pipelines.models.builders import build_guide
from audio2photoreal_pipelines.models.guide import guide_loss
from audio2photoreal_pipelines.models.vqvae import VQVAE
from audio2photoreal_pipelines.pipelines.training_template import (
    check_audio_width,
    fit,
    registry_identity,
)


def train_guide(
    windows: WindowSampler,
    data_stats: dict[str, np.ndarray],
    model_params: dict,
    train_params: dict,
    objective: dict,
    dataset: dict,
    checkpoints: dict,
    vq_model: VQVAE,
) -> tuple[TrainedModel, list[dict]]:
    """Train the guide to predict the frozen VQ's tokens of each window from its audio."""
    check_audio_width(windows, model_params, "audio_dim", "guide")
    vq_model.eval().requires_grad_(False)
    cond_drop_prob = objective["cond_drop_prob"]
    label_smoothing = objective["label_smoothing"]

    def loss_fn(guide, batch, generator):
        vq = vq_model.to(batch["keyframes"].device)
        with torch.no_grad():
            tokens = vq.encode(batch["keyframes"], batch["keyframe_mask"])
        logits = guide(
            tokens,
            batch["audio_features"],
            frame_mask=batch["length_mask"],
            cond_drop_prob=cond_drop_prob,
            generator=generator,
        )
        return guide_loss(logits, tokens, batch["keyframe_mask"], label_smoothing=label_smoothing)

    fingerprint = {
        "model": model_params,
        "objective": objective,
        "vq": registry_identity(vq_model),
    }
    return fit(
        lambda: build_guide(model_params, vq=vq_model),
        loss_fn,
        windows,
        kind="guide",
        train_params=train_params,
        fingerprint=fingerprint,
        dataset=dataset,
        checkpoints=checkpoints,
        data_stats=data_stats,
    )
