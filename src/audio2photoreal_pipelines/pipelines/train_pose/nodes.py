"""Node of the ``train_pose`` pipeline."""

from __future__ import annotations

import numpy as np
import torch

from audio2photoreal_pipelines.data.windows import WindowSampler
from audio2photoreal_pipelines.datasets.registered_model import TrainedModel
from audio2photoreal_pipelines.models.denoisers import build_pose_denoiser
from audio2photoreal_pipelines.models.vqvae import VQVAE
from audio2photoreal_pipelines.pipelines.training_template import fit_denoiser, registry_identity


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

    ``objective.guide_poses_vq_share`` is the share of training windows whose guide poses are
    the true keyframes passed through the trained VQ, which is all the guide's tokens can express
    at sampling; the others get the true keyframes (0, upstream's). Trained on true keyframes
    only, the body copies detail the VQ drops (about a fifth of the keyframe variance of the
    synthetic person) and moves too little when it samples from the guide; trained on the VQ's
    only, it follows true keyframes less closely.
    """
    share = objective.get("guide_poses_vq_share", 0.0)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"pose.objective.guide_poses_vq_share: {share!r} is not in [0, 1]")
    prepare_batch = fingerprint = None
    if share > 0:
        vq_model.eval().requires_grad_(False)

        def prepare_batch(batch: dict, generator: torch.Generator) -> dict:
            keyframes, mask = batch["keyframes"], batch["keyframe_mask"]
            vq = vq_model.to(keyframes.device)
            draws = torch.rand(keyframes.shape[0], generator=generator, device=generator.device)
            through_vq = (draws < share).to(keyframes.device)[:, None, None]
            recon = vq.reconstruct(keyframes, mask)
            return {**batch, "keyframes": torch.where(through_vq, recon, keyframes)}

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
