"""Node of the ``train_pose`` pipeline."""

from __future__ import annotations

import numpy as np

from audio2photoreal_pipelines.data.windows import WindowSampler
from audio2photoreal_pipelines.datasets.registered_model import TrainedModel
from audio2photoreal_pipelines.models.denoisers import build_pose_denoiser
from audio2photoreal_pipelines.models.vqvae import VQVAE
from audio2photoreal_pipelines.pipelines.training_template import fit_denoiser, registry_identity

GUIDE_POSE_SOURCES = ("ground_truth", "vq_reconstruction")


def train_pose(
    windows: WindowSampler,
    data_stats: dict[str, np.ndarray],
    model_params: dict,
    train_params: dict,
    objective: dict,
    dataset: dict,
    checkpoints: dict,
    vq_model: VQVAE,
) -> tuple[TrainedModel, list[dict]]:
    """Train the body denoiser on noisy poses, the audio and the 1 fps guide poses.

    ``objective.guide_poses`` says which guide poses it learns from: the true keyframes
    (``ground_truth``, as upstream) or the same keyframes passed through the trained VQ
    (``vq_reconstruction``), which is all the guide's tokens can express at sampling. Trained on
    the true ones, the body copies detail the VQ drops (about a fifth of the keyframe variance
    of the synthetic person) and moves too little when it samples from the guide.
    """
    source = objective.get("guide_poses", "ground_truth")
    if source not in GUIDE_POSE_SOURCES:
        raise ValueError(
            f"pose.objective.guide_poses: {source!r} is not one of {list(GUIDE_POSE_SOURCES)}"
        )
    prepare_batch = fingerprint = None
    if source == "vq_reconstruction":
        vq_model.eval().requires_grad_(False)

        def prepare_batch(batch: dict) -> dict:
            vq = vq_model.to(batch["keyframes"].device)
            keyframes = vq.reconstruct(batch["keyframes"], batch["keyframe_mask"])
            return {**batch, "keyframes": keyframes}

        fingerprint = {"vq": registry_identity(vq_model)}
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
        prepare_batch=prepare_batch,
        fingerprint=fingerprint,
    )
