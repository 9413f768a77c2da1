"""The shape all four training pipelines share, instantiated once per model under its namespace.

::

    scenes, face_masks, data_stats, audio_features, splits
        │
        ▼
    <ns>.make_windows ──► <ns>.windows ──► <ns>.train ──► <ns>.model            (MLflow registry)
                 params:<ns>.windows       ▲        └──► <ns>.training_history  (08_reporting)
                                           │
       params:<ns>.model, .train, .objective; params:dataset, params:checkpoints; extra inputs

A model is a ``ModelSpec``: the types of its model and objective blocks, which Kedro validates
before the first node, and how it trains (its model, its loss and what else shapes its
checkpoint). The one ``train`` node here does the rest for every model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from kedro.pipeline import Node, Pipeline

from audio2photoreal_pipelines.data.acquire import DatasetParams
from audio2photoreal_pipelines.data.scenes import Scene, check_person
from audio2photoreal_pipelines.data.stats import data_stats_to_bytes
from audio2photoreal_pipelines.data.windows import WindowSampler
from audio2photoreal_pipelines.datasets.registered_model import TrainedModel
from audio2photoreal_pipelines.models.builders import ModelParams
from audio2photoreal_pipelines.models.diffusion.losses import training_step_loss
from audio2photoreal_pipelines.models.diffusion.schedules import make_training_scheduler
from audio2photoreal_pipelines.parameter_block import ParameterBlock
from audio2photoreal_pipelines.parameters import CheckpointParams, DiffusionObjective, WindowParams
from audio2photoreal_pipelines.training.config import TrainConfig
from audio2photoreal_pipelines.training.loop import LossFn, train_data_parallel
from audio2photoreal_pipelines.training.rng import seed_everything
from audio2photoreal_pipelines.training.tracking import mlflow_metric_logger

SHARED_INPUTS = ("scenes", "face_masks", "data_stats", "audio_features", "splits")


@dataclass(frozen=True)
class TrainingRequest:
    """What the ``train`` node hands a model's spec: the model's kind, the windows, the typed
    blocks, the extra inputs (e.g. the trained VQ) by argument name."""

    kind: str
    windows: WindowSampler
    model: ModelParams
    objective: ParameterBlock
    train: TrainConfig
    extras: Mapping[str, Any]


@dataclass(frozen=True)
class Training:
    """How one model trains: ``build()`` makes it (seeded), ``loss`` is the loop's loss function,
    ``fingerprint`` is what else shapes the result (hashed into the checkpoint folder; a model it
    depends on by its ``RegisteredModule.identity()``), and
    ``finish(module)`` runs once training is done (e.g. fits the body's Wiener gain)."""

    build: Callable[[], torch.nn.Module]
    loss: LossFn
    fingerprint: dict[str, Any]
    finish: Callable[[torch.nn.Module], None] | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One model of the template: its namespace, its blocks' types, how it trains, and the inputs
    it needs beyond the shared ones (argument name -> dataset)."""

    kind: str
    model_params: type[ModelParams]
    objective: type[ParameterBlock]
    training: Callable[[TrainingRequest], Training]
    extra_inputs: Mapping[str, str] = field(default_factory=dict)


def make_windows(
    scenes: dict[str, Scene],
    face_masks: dict[str, np.ndarray],
    data_stats: dict[str, np.ndarray],
    audio_features: dict[str, np.ndarray],
    splits: dict[str, list[str]],
    windows: WindowParams,
    dataset: DatasetParams,
) -> WindowSampler:
    """Random normalised training windows over one split of ``dataset.person``'s scenes."""
    check_person(scenes, dataset.person)
    return WindowSampler(
        scenes,
        face_masks,
        data_stats,
        audio_features,
        splits[windows.split],
        kind=windows.kind,
        min_frames=windows.min_frames,
        max_frames=windows.max_frames,
    )


def check_audio_width(windows: WindowSampler, width: int, key: str) -> None:
    """Refuse a model whose audio input width (``key``) is not the cached features' width C,
    which would otherwise surface as a shape error inside the audio encoder."""
    cached = windows.audio_feature_width
    if cached is not None and cached != width:
        raise ValueError(
            f"{key} is {width} but the cached audio features (ingest's audio_features) are "
            f"{cached} wide: set audio_feature_dim: {cached} in conf/base/globals.yml"
        )


def diffusion_training(
    request: TrainingRequest,
    *,
    prepare_batch: Callable[[dict, torch.Generator], dict] | None = None,
) -> Training:
    """A denoiser trained with the diffusion objective (noise levels, velocity weight, condition
    dropout). ``prepare_batch(batch, generator)`` rewrites each batch before the loss (e.g. the
    condition the model will see at sampling), drawing any randomness from the loss generator."""
    objective: DiffusionObjective = request.objective
    check_audio_width(
        request.windows,
        request.model.audio_feature_dim,
        f"{request.kind}.model.audio_feature_dim",
    )
    scheduler = make_training_scheduler(objective.diffusion_steps)

    def loss(denoiser, batch, generator):
        return training_step_loss(
            denoiser,
            scheduler,
            batch if prepare_batch is None else prepare_batch(batch, generator),
            generator=generator,
            **objective.loss_options(),
        )

    return Training(
        build=request.model.build,
        loss=loss,
        fingerprint={
            "diffusion_steps": objective.diffusion_steps,
            "loss": objective.loss_options(),
        },
    )


def fit(
    training: Training,
    windows: WindowSampler,
    *,
    kind: str,
    train: TrainConfig,
    dataset: DatasetParams,
    checkpoints: CheckpointParams,
    data_stats: dict[str, np.ndarray],
) -> tuple[TrainedModel, list[dict]]:
    """Build a model (seeded) and train it with the shared loop; return it for the registry.

    Checkpoints live in a folder named by the person, the model and a hash of everything that
    shapes the result, so a re-run resumes only a run it could have finished itself.
    """
    seed_everything(train.seed)
    model = training.build()
    stats_hash = hashlib.sha256(data_stats_to_bytes(data_stats)).hexdigest()
    key = json.dumps(
        {**training.fingerprint, "train": train.as_dict(), "stats": stats_hash}, sort_keys=True
    )
    run_hash = hashlib.sha256(key.encode()).hexdigest()[:12]
    checkpoint_dir = Path(checkpoints.root) / dataset.person / kind / run_hash
    result = train_data_parallel(
        model,
        training.loss,
        windows.sample,
        train,
        checkpoint_dir=checkpoint_dir,
        log_metrics=mlflow_metric_logger(kind),
        description=f"train {kind}",
    )
    if training.finish is not None:
        training.finish(result.model)
    tags = {
        "person": dataset.person,
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


def train_node_function(spec: ModelSpec) -> Callable[..., tuple[TrainedModel, list[dict]]]:
    """The ``train`` node of ``spec``'s model, its blocks annotated with their types so that
    Kedro validates them before the first node runs."""

    def train(
        windows: WindowSampler,
        data_stats: dict[str, np.ndarray],
        model: ModelParams,
        objective: ParameterBlock,
        train: TrainConfig,
        dataset: DatasetParams,
        checkpoints: CheckpointParams,
        **extras: Any,
    ) -> tuple[TrainedModel, list[dict]]:
        request = TrainingRequest(spec.kind, windows, model, objective, train, extras)
        training = spec.training(request)
        fingerprint = {"model": model.as_dict(), **training.fingerprint}
        return fit(
            Training(training.build, training.loss, fingerprint, training.finish),
            windows,
            kind=spec.kind,
            train=train,
            dataset=dataset,
            checkpoints=checkpoints,
            data_stats=data_stats,
        )

    # Kedro reads the annotations (kedro.validation) to know each block's type.
    train.__annotations__ = {
        **train.__annotations__,
        "model": spec.model_params,
        "objective": spec.objective,
        "train": TrainConfig,
        "dataset": DatasetParams,
        "checkpoints": CheckpointParams,
    }
    train.__name__ = train.__qualname__ = f"train_{spec.kind}"
    train.__doc__ = spec.training.__doc__
    return train


def create_training_pipeline(spec: ModelSpec) -> Pipeline:
    """One instance of the template: windows, then training, under ``spec.kind``'s namespace."""
    template = Pipeline(
        [
            Node(
                make_windows,
                inputs=[*SHARED_INPUTS, "params:windows", "params:dataset"],
                outputs="windows",
                name="make_windows",
            ),
            Node(
                train_node_function(spec),
                inputs={
                    "windows": "windows",
                    "data_stats": "data_stats",
                    "model": "params:model",
                    "objective": "params:objective",
                    "train": "params:train",
                    "dataset": "params:dataset",
                    "checkpoints": "params:checkpoints",
                    **{arg: arg for arg in spec.extra_inputs},
                },
                outputs=["model", "training_history"],
                name="train",
            ),
        ]
    )
    return Pipeline(
        template,
        namespace=spec.kind,
        inputs={**{name: name for name in SHARED_INPUTS}, **spec.extra_inputs},
        parameters={"params:dataset", "params:checkpoints"},
    )
