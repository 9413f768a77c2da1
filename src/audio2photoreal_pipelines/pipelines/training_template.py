"""The shape all four training pipelines share, instantiated once per model under its namespace.

::

    scenes, face_masks, data_stats, audio_features, splits
        │
        ▼
    <ns>.make_windows ──► <ns>.windows ──► <ns>.train ──► <ns>.model            (MLflow registry)
                 params:<ns>.windows       ▲        └──► <ns>.training_history  (08_reporting)
                                           │
       params:<ns>.model, .train, .objective; params:dataset, params:checkpoints; extra inputs

Each pipeline differs only in its train function (which builds its model and loss), its
parameters and its extra inputs (the guide also needs the trained VQ).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from kedro.pipeline import Node, Pipeline

from audio2photoreal_pipelines.data.scenes import Scene, check_person
from audio2photoreal_pipelines.data.stats import data_stats_to_bytes
from audio2photoreal_pipelines.data.windows import WindowSampler
from audio2photoreal_pipelines.datasets.registered_model import TrainedModel
from audio2photoreal_pipelines.models.diffusion.losses import training_step_loss
from audio2photoreal_pipelines.models.diffusion.schedules import make_training_scheduler
from audio2photoreal_pipelines.training.config import TrainConfig
from audio2photoreal_pipelines.training.loop import train_data_parallel
from audio2photoreal_pipelines.training.rng import seed_everything
from audio2photoreal_pipelines.training.tracking import mlflow_metric_logger

SHARED_INPUTS = ("scenes", "face_masks", "data_stats", "audio_features", "splits")
WINDOW_KEYS = {"kind", "split", "min_frames", "max_frames"}


def make_windows(
    scenes: dict[str, Scene],
    face_masks: dict[str, np.ndarray],
    data_stats: dict[str, np.ndarray],
    audio_features: dict[str, np.ndarray],
    splits: dict[str, list[str]],
    windows: dict,
    dataset: dict,
) -> WindowSampler:
    """Random normalised training windows over one split of ``dataset.person``'s scenes."""
    check_person(scenes, dataset["person"])
    unknown = set(windows) - WINDOW_KEYS
    if unknown:
        raise ValueError(
            f"Unknown windows parameter(s) {sorted(unknown)}; known: {sorted(WINDOW_KEYS)}"
        )
    return WindowSampler(
        scenes,
        face_masks,
        data_stats,
        audio_features,
        splits[windows.get("split", "train")],
        kind=windows["kind"],
        min_frames=windows["min_frames"],
        max_frames=windows["max_frames"],
    )


def check_audio_width(windows: WindowSampler, model_params: dict, key: str, kind: str) -> None:
    """Refuse a model whose audio input width ``model_params[key]`` is not the cached features'
    width C, which would otherwise surface as a shape error inside the audio encoder."""
    cached, width = windows.audio_feature_width, model_params.get(key)
    if None not in (cached, width) and cached != width:
        raise ValueError(
            f"{kind}.model.{key} is {width} but the cached audio features (ingest's "
            f"audio_features) are {cached} wide: set audio_feature_dim: {cached} in "
            "conf/base/globals.yml"
        )


def registry_identity(model: torch.nn.Module) -> list[str]:
    """[registered name, version] of a model loaded from the registry, for checkpoint hashes."""
    return [getattr(model, "registry_name", ""), getattr(model, "registry_version", "")]


def fit(
    build_model: Callable[[], torch.nn.Module],
    loss_fn: Callable,
    windows: WindowSampler,
    *,
    kind: str,
    train_params: dict,
    fingerprint: dict,
    dataset: dict,
    checkpoints: dict,
    data_stats: dict[str, np.ndarray],
) -> tuple[TrainedModel, list[dict]]:
    """Build a model (seeded) and train it with the shared loop; return it for the registry.

    Checkpoints live in a folder named by the person, the model and a hash of everything that
    shapes the result, so a re-run resumes only a run it could have finished itself.
    """
    config = TrainConfig.from_params(train_params)
    seed_everything(config.seed)
    model = build_model()
    stats_hash = hashlib.sha256(data_stats_to_bytes(data_stats)).hexdigest()
    key = json.dumps({**fingerprint, "train": train_params, "stats": stats_hash}, sort_keys=True)
    run_hash = hashlib.sha256(key.encode()).hexdigest()[:12]
    checkpoint_dir = Path(checkpoints["root"]) / dataset["person"] / kind / run_hash
    result = train_data_parallel(
        model,
        loss_fn,
        windows.sample,
        config,
        checkpoint_dir=checkpoint_dir,
        log_metrics=mlflow_metric_logger(kind),
        description=f"train {kind}",
    )
    tags = {
        "person": dataset["person"],
        "kind": kind,
        "steps": str(result.final_step),
        "data_stats_sha256": stats_hash,
        **{
            f"data_stats.{k}": f"{float(data_stats[k][0]):.6g}"
            for k in sorted(data_stats)
            if k.endswith("_std_flat")
        },
    }
    trained = TrainedModel(module=result.model, tags=tags, checkpoint=result.final_checkpoint)
    return trained, result.history


def fit_denoiser(
    build_denoiser: Callable[[dict], torch.nn.Module],
    windows: WindowSampler,
    *,
    kind: str,
    model_params: dict,
    train_params: dict,
    objective: dict,
    dataset: dict,
    checkpoints: dict,
    data_stats: dict[str, np.ndarray],
    prepare_batch: Callable[[dict, torch.Generator], dict] | None = None,
    fingerprint: dict | None = None,
) -> tuple[TrainedModel, list[dict]]:
    """``fit`` with the diffusion objective (steps, velocity weight, condition dropout).

    ``prepare_batch(batch, generator)`` rewrites each batch before the loss (e.g. the condition
    the model will see at sampling), drawing any randomness from the loss generator;
    ``fingerprint`` adds what else shapes the result to the checkpoint hash.
    """
    check_audio_width(windows, model_params, "audio_feature_dim", kind)
    scheduler = make_training_scheduler(objective["diffusion_steps"])

    def loss_fn(denoiser, batch, generator):
        return training_step_loss(
            denoiser,
            scheduler,
            batch if prepare_batch is None else prepare_batch(batch, generator),
            lambda_vel=objective["lambda_vel"],
            cond_drop_prob=objective["cond_drop_prob"],
            generator=generator,
        )

    return fit(
        lambda: build_denoiser(model_params),
        loss_fn,
        windows,
        kind=kind,
        train_params=train_params,
        fingerprint={"model": model_params, "objective": objective, **(fingerprint or {})},
        dataset=dataset,
        checkpoints=checkpoints,
        data_stats=data_stats,
    )


def create_training_pipeline(
    *, namespace: str, train_func: Callable, extra_inputs: dict[str, str] | None = None
) -> Pipeline:
    """One instance of the template: windows, then training, under ``namespace``."""
    extra_inputs = extra_inputs or {}
    template = Pipeline(
        [
            Node(
                make_windows,
                inputs=[*SHARED_INPUTS, "params:windows", "params:dataset"],
                outputs="windows",
                name="make_windows",
            ),
            Node(
                train_func,
                inputs={
                    "windows": "windows",
                    "data_stats": "data_stats",
                    "model_params": "params:model",
                    "train_params": "params:train",
                    "objective": "params:objective",
                    "dataset": "params:dataset",
                    "checkpoints": "params:checkpoints",
                    **{arg: arg for arg in extra_inputs},
                },
                outputs=["model", "training_history"],
                name="train",
            ),
        ]
    )
    return Pipeline(
        template,
        namespace=namespace,
        inputs={**{name: name for name in SHARED_INPUTS}, **extra_inputs},
        parameters={"params:dataset", "params:checkpoints"},
    )
