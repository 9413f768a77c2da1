"""The parameters a ``kedro run --env <env>`` sees, and the typed blocks that hold them.

Blocks with a home of their own live there: the dataset and synthetic person (data/acquire.py,
data/synthetic.py), training (training/config.py), each model (models/builders.py) and sampling
(serving.py). The rest are here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from kedro.config import OmegaConfigLoader
from pydantic import Field, field_validator, model_validator
from torch import nn

from audio2photoreal_pipelines.models.audio import (
    VqWav2VecFeatures,
    feature_width,
    make_feature_extractor,
)
from audio2photoreal_pipelines.models.diffusion.schedules import NUM_TRAIN_TIMESTEPS
from audio2photoreal_pipelines.parameter_block import (
    Count,
    ParameterBlock,
    PositiveCount,
    Share,
    Switch,
)
from audio2photoreal_pipelines.settings import CONFIG_LOADER_ARGS


def load_parameters(conf_source: str | Path, env: str = "base") -> dict[str, Any]:
    """All parameters of ``env`` merged over base, globals resolved, with the project's settings."""
    loader = OmegaConfigLoader(str(conf_source), **{**CONFIG_LOADER_ARGS, "default_run_env": env})
    return loader["parameters"]


class CheckpointParams(ParameterBlock):
    """``params:checkpoints``: where resumable training checkpoints live."""

    root: str


class SplitParams(ParameterBlock):
    """``params:split``: upstream's rule, the last ``num_val + num_test`` sorted scenes held out."""

    num_val: Count = 2
    num_test: PositiveCount = 4


class TestChunkParams(ParameterBlock):
    """``params:test_chunks``: non-overlapping test chunks, shuffled with ``seed``."""

    chunk_frames: PositiveCount = 600
    seed: Count = 10


class AudioFeatureParams(ParameterBlock):
    """``params:audio_features``: log-mel, or upstream's frozen vq-wav2vec with a checkpoint.

    ``vq_wav2vec_checkpoint`` is globals' entry, which the catalog's ``vq_wav2vec`` reads too.
    ``feature_dim`` is globals' ``audio_feature_dim``, which the models take as input width; it
    must be the width these settings give, 2 x n_mels or 2 x 512.
    """

    n_mels: PositiveCount = 40
    vq_wav2vec_checkpoint: str | None = None
    feature_dim: PositiveCount

    @model_validator(mode="after")
    def _width_agrees(self) -> AudioFeatureParams:
        width = feature_width(self.n_mels, self.vq_wav2vec_checkpoint)
        if width != self.feature_dim:
            raise ValueError(
                f"these features are {width} wide but audio_feature_dim (conf/base/globals.yml) "
                f"is {self.feature_dim}"
            )
        return self

    def extractor(self, vq_wav2vec: VqWav2VecFeatures | None) -> nn.Module:
        """The feature extractor these settings describe, given the catalog's ``vq_wav2vec``."""
        if (vq_wav2vec is None) != (self.vq_wav2vec_checkpoint is None):
            raise ValueError(
                f"audio_features.vq_wav2vec_checkpoint is {self.vq_wav2vec_checkpoint!r} but the "
                f"catalog's vq_wav2vec {'is' if vq_wav2vec is None else 'is not'} empty: set the "
                "checkpoint once, as vq_wav2vec_checkpoint in conf/base/globals.yml"
            )
        return make_feature_extractor(n_mels=self.n_mels, vq_wav2vec=vq_wav2vec)


class EvaluateParams(ParameterBlock):
    """``params:evaluate``: metric settings (docs/metrics.md)."""

    seed: Count = 0
    baseline_stride: PositiveCount = 150
    num_pairs: PositiveCount = 10000
    bc_sigma: Annotated[float, Field(gt=0)] = 0.3
    bc_drop_seconds: Annotated[float, Field(ge=0)] = 2.0


class PromotionRule(ParameterBlock):
    metric: str
    mode: Literal["min", "max"]


class PromotionParams(ParameterBlock):
    """``params:promotion``: per model, the metrics on which a candidate must beat its champion."""

    rules: dict[
        Literal["vq", "guide", "face", "pose"],
        Annotated[list[PromotionRule], Field(min_length=1)],
    ]


class WindowParams(ParameterBlock):
    """``params:<model>.windows``: random training windows of ``min_frames..max_frames``."""

    kind: Literal["face", "body"]
    split: Literal["train", "val", "test"] = "train"
    min_frames: PositiveCount
    max_frames: PositiveCount

    @model_validator(mode="after")
    def _lengths_ordered(self) -> WindowParams:
        if self.min_frames > self.max_frames:
            raise ValueError(
                f"min_frames {self.min_frames} is more than max_frames {self.max_frames}"
            )
        return self


class VQObjective(ParameterBlock):
    """``params:vq.objective``: the weight of the commitment loss (models/vqvae.py ``vq_loss``)."""

    commit_weight: Annotated[float, Field(ge=0)] = 0.02


class GuideObjective(ParameterBlock):
    """``params:guide.objective``: label smoothing and the audio's dropout for guidance."""

    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.1
    cond_drop_prob: Share = 0.2


class DiffusionObjective(ParameterBlock):
    """``params:face.objective``: noise levels, the velocity loss weight, condition dropout."""

    diffusion_steps: PositiveCount = NUM_TRAIN_TIMESTEPS
    lambda_vel: Annotated[float, Field(ge=0)] = 0.0
    cond_drop_prob: Share = 0.2

    @field_validator("diffusion_steps")
    @classmethod
    def _the_samplers_schedule(cls, steps: int) -> int:
        # Sampling builds its schedule with NUM_TRAIN_TIMESTEPS steps (models/generate.py): any
        # other count would train on one schedule and sample on another.
        if steps != NUM_TRAIN_TIMESTEPS:
            raise ValueError(f"must be {NUM_TRAIN_TIMESTEPS}, the schedule sampling uses")
        return steps

    def loss_options(self) -> dict[str, float]:
        """What shapes each training step's loss (and so the checkpoint)."""
        return {"lambda_vel": self.lambda_vel, "cond_drop_prob": self.cond_drop_prob}


class WienerGainParams(ParameterBlock):
    """The per-frequency gain fitted after the body denoiser's training (models/wiener.py)."""

    levels: PositiveCount
    batches: PositiveCount
    envelope: Switch = False
    subspace_share: Annotated[float, Field(gt=0, le=1)] | None = None


class PoseObjective(DiffusionObjective):
    """``params:pose.objective``: the diffusion objective, the share of windows whose guide poses
    pass through the VQ, and the Wiener gain (null: the network's x0 alone, upstream's)."""

    guide_poses_vq_share: Share = 0.0
    wiener_gain: WienerGainParams | None = None
