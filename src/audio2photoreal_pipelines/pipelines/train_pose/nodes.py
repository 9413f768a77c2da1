"""The body denoiser's spec for the training template."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from audio2photoreal_pipelines.data.windows import WindowSampler
from audio2photoreal_pipelines.datasets.registered_model import RegisteredModule
from audio2photoreal_pipelines.models.builders import PoseParams
from audio2photoreal_pipelines.models.denoisers import PoseDenoiser
from audio2photoreal_pipelines.models.diffusion.schedules import make_training_scheduler
from audio2photoreal_pipelines.models.vqvae import VQVAE
from audio2photoreal_pipelines.models.wiener import fit_wiener_gain
from audio2photoreal_pipelines.parameters import PoseObjective
from audio2photoreal_pipelines.pipelines.training_template import (
    ModelSpec,
    Training,
    TrainingRequest,
    diffusion_training,
)
from audio2photoreal_pipelines.training.tracking import mlflow_metric_logger

logger = logging.getLogger(__name__)


def pose_training(request: TrainingRequest) -> Training:
    """Train the body denoiser on noisy poses, the audio and the 1 fps guide poses.

    ``objective.guide_poses_vq_share`` is the share of training windows whose guide poses are
    the true keyframes passed through the trained VQ, which is all the guide's tokens can express
    at sampling; the others get the true keyframes (0, upstream's). Trained on true keyframes
    only, the body copies detail the VQ drops (about a fifth of the keyframe variance of the
    synthetic person) and moves too little when it samples from the guide; trained on the VQ's
    only, it follows true keyframes less closely.

    ``objective.wiener_gain`` ({levels, batches, ...}, or null for upstream's plain x0 denoiser)
    fits the per-frequency gain of models/wiener.py on that many training batches once training
    is done, so that samples keep the detail of x_t that the network alone smooths away.
    """
    objective: PoseObjective = request.objective
    registered_vq: RegisteredModule = request.extras["vq_model"]
    vq_model: VQVAE = registered_vq.module
    share = objective.guide_poses_vq_share
    prepare_batch = None
    if share > 0:
        vq_model.eval().requires_grad_(False)

        def prepare_batch(batch: dict, generator: torch.Generator) -> dict:
            keyframes, mask = batch["keyframes"], batch["keyframe_mask"]
            vq = vq_model.to(keyframes.device)
            draws = torch.rand(keyframes.shape[0], generator=generator, device=generator.device)
            through_vq = (draws < share).to(keyframes.device)[:, None, None]
            recon = vq.reconstruct(keyframes, mask)
            return {**batch, "keyframes": torch.where(through_vq, recon, keyframes)}

    training = diffusion_training(request, prepare_batch=prepare_batch)
    # The gain is fitted after training, so it does not shape the checkpoint (nor its hash).
    fingerprint = dict(training.fingerprint)
    if share > 0:
        fingerprint.update(guide_poses_vq_share=share, vq=registered_vq.identity())
    finish = None
    if objective.wiener_gain is not None:

        def finish(pose: PoseDenoiser) -> None:
            fit_pose_wiener_gain(
                pose,
                request.windows,
                prepare_batch,
                objective,
                batch_size=request.train.batch_size,
                seed=request.train.seed,
            )

    return Training(training.build, training.loss, fingerprint, finish)


def fit_pose_wiener_gain(
    pose: PoseDenoiser,
    windows: WindowSampler,
    prepare_batch: Callable[[dict, torch.Generator], dict] | None,
    objective: PoseObjective,
    *,
    batch_size: int,
    seed: int,
) -> None:
    """Fit ``pose.wiener`` on training windows drawn with `seed`, and log how it changes x0 MSE."""
    settings = objective.wiener_gain
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
        make_training_scheduler(objective.diffusion_steps).alphas_cumprod,
        num_batches=settings.batches,
        num_levels=settings.levels,
        generator=generator,
        envelope=settings.envelope,
        subspace_share=settings.subspace_share,
    )
    pose.wiener = wiener.to(device)
    exponent = float(wiener.envelope_exponent)
    logger.info(
        "pose: Wiener gain fitted on %d training windows (envelope exponent %.2f); "
        "x0 MSE without -> with it: %s",
        settings.batches * batch_size,
        exponent,
        ", ".join(f"{k} {a:.4f} -> {b:.4f}" for k, (a, b) in report.items()),
    )
    log_metrics = mlflow_metric_logger("pose")
    log_metrics({"wiener_envelope_exponent": exponent}, 0)
    for step, (without, with_gain) in report.items():
        log_metrics(
            {f"wiener_{step}_x0_mse_without": without, f"wiener_{step}_x0_mse": with_gain}, 0
        )


POSE_SPEC = ModelSpec(
    kind="pose",
    model_params=PoseParams,
    objective=PoseObjective,
    training=pose_training,
    extra_inputs={"vq_model": "vq.model"},
)
