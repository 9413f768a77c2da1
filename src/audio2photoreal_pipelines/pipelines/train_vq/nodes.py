"""Node of the ``train_vq`` pipeline."""

from __future__ import annotations

import numpy as np

from audio2photoreal_pipelines.data.windows import WindowSampler
from audio2photoreal_pipelines.datasets.registered_model import TrainedModel
from audio2photoreal_pipelines.models.builders import build_vq
from audio2photoreal_pipelines.models.vqvae import vq_loss
from audio2photoreal_pipelines.pipelines.training_template import fit


def train_vq(
    windows: WindowSampler,
    data_stats: dict[str, np.ndarray],
    model_params: dict,
    train_params: dict,
    objective: dict,
    dataset: dict,
    checkpoints: dict,
) -> tuple[TrainedModel, list[dict]]:
    """Train the VQ-VAE to reconstruct normalised 1 fps keyframes through its residual codes."""

    def loss_fn(vq, batch, generator):
        out = vq(batch["keyframes"], batch["keyframe_mask"])
        return vq_loss(out, batch["keyframes"], batch["keyframe_mask"], **objective)

    return fit(
        lambda: build_vq(model_params),
        loss_fn,
        windows,
        kind="vq",
        train_params=train_params,
        fingerprint={"model": model_params, "objective": objective},
        dataset=dataset,
        checkpoints=checkpoints,
        data_stats=data_stats,
    )
