"""``train_pose``: which guide poses the body denoiser learns from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audio2photoreal_pipelines.data.stats import REQUIRED_SHAPES
from audio2photoreal_pipelines.pipelines.train_pose.nodes import train_pose

FRAMES, BODY, AUDIO = 60, 104, 40
MODEL = {
    "dim": 16,
    "depth": 1,
    "heads": 2,
    "ff_dim": 32,
    "dropout": 0.0,
    "conv_hidden": 16,
    "conv_dropout": 0.0,
    "audio_feature_dim": AUDIO,
    "audio_encoder": {"hidden_dim": 16},
    "keyframe_track": True,
    "audio_to_tokens": True,
}
TRAIN = {"steps": 2, "batch_size": 2, "lr": 1e-3, "log_every": 1, "checkpoint_every": 2, "seed": 0}
STATS = {
    key: np.full(shape, 0.0 if key.endswith("_mean") else 1.0)
    for key, shape in REQUIRED_SHAPES.items()
}


class FixedWindows:
    """Stands in for a WindowSampler: the same batch every draw."""

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        motion = torch.randn(batch_size, FRAMES, BODY, generator=g)
        length_mask = torch.ones(batch_size, FRAMES, dtype=torch.bool)
        return {
            "motion": motion,
            "length_mask": length_mask,
            "face_valid": length_mask,
            "audio_features": torch.randn(batch_size, FRAMES * 10 // 3, AUDIO, generator=g),
            "keyframes": motion[:, ::30],
            "keyframe_mask": length_mask[:, ::30],
        }


class RecordingVQ(torch.nn.Module):
    """A VQ whose reconstruction is a fixed shift, recording what it was asked to reconstruct."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def reconstruct(self, keyframes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.seen.append(keyframes.clone())
        return (keyframes + 1.0) * mask.unsqueeze(-1)


def train(tmp_path, guide_poses: str | None, vq: RecordingVQ) -> torch.nn.Module:
    objective = {"diffusion_steps": 100, "lambda_vel": 1.0, "cond_drop_prob": 0.0}
    if guide_poses is not None:
        objective["guide_poses"] = guide_poses
    trained, history = train_pose(
        FixedWindows(),
        STATS,
        MODEL,
        TRAIN,
        objective,
        {"person": "T"},
        {"root": str(tmp_path / guide_poses if guide_poses else tmp_path / "none")},
        vq,
    )
    assert history
    return trained.module


def test_vq_reconstruction_trains_on_the_vqs_keyframes_and_ground_truth_never_asks(tmp_path):
    vq = RecordingVQ()
    on_truth = train(tmp_path, "ground_truth", vq)
    assert vq.seen == []
    through_vq = train(tmp_path, "vq_reconstruction", vq)
    assert len(vq.seen) == TRAIN["steps"]
    assert torch.equal(vq.seen[0], FixedWindows().sample(2, torch.Generator())["keyframes"])
    truth, vq_trained = on_truth.state_dict(), through_vq.state_dict()
    assert any(not torch.equal(truth[k], vq_trained[k]) for k in truth)


def test_missing_source_is_upstreams_ground_truth(tmp_path):
    vq = RecordingVQ()
    train(tmp_path, None, vq)
    assert vq.seen == []


def test_unknown_source_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"pose.objective.guide_poses: 'vq'"):
        train(tmp_path, "vq", RecordingVQ())
