"""Running one model's ``train`` node outside a session, as Kedro runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audio2photoreal_pipelines.data.acquire import DatasetParams
from audio2photoreal_pipelines.parameters import CheckpointParams
from audio2photoreal_pipelines.pipelines.training_template import ModelSpec, train_node_function
from audio2photoreal_pipelines.training.config import TrainConfig


def run_train_node(
    spec: ModelSpec,
    windows: Any,
    data_stats: dict[str, np.ndarray],
    block: dict,
    *,
    person: str,
    checkpoint_root: Path,
    **extras: Any,
):
    """``spec``'s train node on ``block`` ({model, objective, train}), each parameter block
    validated by its type first as Kedro does; returns (trained model, history)."""
    return train_node_function(spec)(
        windows,
        data_stats,
        spec.model_params.model_validate(block["model"]),
        spec.objective.model_validate(block["objective"]),
        TrainConfig.model_validate(block["train"]),
        DatasetParams(person=person),
        CheckpointParams(root=str(checkpoint_root)),
        **extras,
    )
