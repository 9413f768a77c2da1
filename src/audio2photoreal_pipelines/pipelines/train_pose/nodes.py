"""Node of the ``train_pose`` pipeline."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

from audio2photoreal_pipelines.data.windows import WindowSampler
from audio2photoreal_pipelines.datasets.registered_model import TrainedModel
from audio2photoreal_pipelines.models.denoisers import PoseDenoiser, build_pose_denoiser
from audio2photoreal_pipelines.models.diffusion.schedules import make_training_scheduler
from audio2photoreal_pipelines.models.vqvae import VQVAE
from audio2photoreal_pipelines.models.wiener import fit_wiener_gain
from audio2photoreal_pipelines.pipelines.training_template import fit_denoiser, registry_identity
from audio2photoreal_pipelines.training.tracking import mlflow_metric_logger

logger = logging.getLogger(__name__)


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

    ``objective.wiener_gain`` ({levels, batches}, or null for upstream's plain x0 denoiser) fits
    the per-frequency gain of models/wiener.py on that many training batches once training is
    done, so that samples keep the detail of x_t that the network alone smooths away.
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
    # The gain is fitted after training, so it does not shape the checkpoint (nor its hash).
    training_objective = {k: v for k, v in objective.items() if k != "wiener_gain"}
    trained, history = fit_denoiser(
        build_pose_denoiser,
        windows,
        kind="pose",
        model_params=model_params,
        train_params=train_params,
        objective=training_objective,
        dataset=dataset,
        checkpoints=checkpoints,
        data_stats=data_stats,
        prepare_batch=prepare_batch,
        fingerprint=fingerprint,
    )
    if objective.get("wiener_gain"):
        fit_pose_wiener_gain(
            trained.module,
            windows,
            prepare_batch,
            objective,
            batch_size=train_params["batch_size"],
            seed=train_params["seed"],
        )
    return trained, history


def fit_pose_wiener_gain(
    pose: PoseDenoiser,
    windows: WindowSampler,
    prepare_batch: Callable[[dict, torch.Generator], dict] | None,
    objective: dict,
    *,
    batch_size: int,
    seed: int,
) -> None:
    """Fit ``pose.wiener`` on training windows drawn with `seed`, and log how it changes x0 MSE."""
    settings = objective["wiener_gain"]
    unknown = sorted(set(settings) - {"levels", "batches", "envelope", "subspace_share"})
    if unknown:
        raise ValueError(
            f"pose.objective.wiener_gain: unknown keys {unknown}; expected levels, batches, "
            "envelope, subspace_share"
        )
    device = next(pose.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    pose.eval()
    pose.wiener = None  # the gain is fitted on the network's own predictions

    def draw() -> dict:
        batch = windows.sample(batch_size, generator)
        if prepare_batch is not None:
            batch = prepare_batch(batch, generator)
        return {k: v.to(device) for k, v in batch.items()}

    def predict_x0(x_t: torch.Tensor, t: torch.Tensor, cond: dict) -> torch.Tensor:
        no_drop = torch.zeros(x_t.shape[0], dtype=torch.bool, device=device)
        return pose.denoise(x_t, t, pose.encode_condition(cond, no_drop))

    wiener, report = fit_wiener_gain(
        predict_x0,
        draw,
        make_training_scheduler(objective["diffusion_steps"]).alphas_cumprod,
        num_batches=settings["batches"],
        num_levels=settings["levels"],
        generator=generator,
        envelope=bool(settings.get("envelope", False)),
        subspace_share=settings.get("subspace_share"),
    )
    pose.wiener = wiener.to(device)
    exponent = float(wiener.envelope_exponent)
    logger.info(
        "pose: Wiener gain fitted on %d training windows (envelope exponent %.2f); "
        "x0 MSE without -> with it: %s",
        settings["batches"] * batch_size,
        exponent,
        ", ".join(f"{k} {a:.4f} -> {b:.4f}" for k, (a, b) in report.items()),
    )
    log_metrics = mlflow_metric_logger("pose")
    log_metrics({"wiener_envelope_exponent": exponent}, 0)
    for step, (without, with_gain) in report.items():
        log_metrics(
            {f"wiener_{step}_x0_mse_without": without, f"wiener_{step}_x0_mse": with_gain}, 0
        )
