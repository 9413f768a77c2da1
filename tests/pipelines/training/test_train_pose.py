"""``train_pose``: which guide poses the body denoiser learns from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audio2photoreal_pipelines.data.stats import REQUIRED_SHAPES
from audio2photoreal_pipelines.datasets.registered_model import RegisteredModule
from audio2photoreal_pipelines.models.denoisers import PoseDenoiser
from audio2photoreal_pipelines.pipelines.train_pose.nodes import POSE_SPEC
from tests.pipelines.training.conftest import run_train_node

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


def train_pose(windows, data_stats, model, train, objective, dataset, checkpoints, vq):
    """The body's train node as Kedro runs it, in the argument order of these tests."""
    block = {"model": model, "objective": objective, "train": train}
    return run_train_node(
        POSE_SPEC,
        windows,
        data_stats,
        block,
        person=dataset["person"],
        checkpoint_root=checkpoints["root"],
        vq_model=RegisteredModule(vq, "a2p-T-vq", "1"),
    )


class FixedWindows:
    """Stands in for a WindowSampler: the same batch every draw."""

    audio_feature_width = AUDIO

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


def train(tmp_path, share: float | None, vq: RecordingVQ) -> torch.nn.Module:
    objective = {"lambda_vel": 1.0, "cond_drop_prob": 0.0}
    if share is not None:
        objective["guide_poses_vq_share"] = share
    trained, history = train_pose(
        FixedWindows(),
        STATS,
        MODEL,
        TRAIN,
        objective,
        {"person": "T"},
        {"root": str(tmp_path / f"share{share}")},
        vq,
    )
    assert history
    return trained.module


def keyframes_the_model_saw(monkeypatch, tmp_path, share: float) -> torch.Tensor:
    """Every training batch's guide poses (steps x batch, K, F), as the denoiser received them."""
    seen = []
    original = PoseDenoiser.encode_condition

    def recording(self, cond, drop):
        seen.append(cond["keyframes"].clone())
        return original(self, cond, drop)

    monkeypatch.setattr(PoseDenoiser, "encode_condition", recording)
    train(tmp_path / "recorded", share, RecordingVQ())  # a fresh run, not a resume
    return torch.cat(seen)


def test_share_zero_trains_on_true_keyframes_and_never_asks_the_vq(monkeypatch, tmp_path):
    vq = RecordingVQ()
    train(tmp_path, 0.0, vq)
    assert vq.seen == []
    truth = FixedWindows().sample(2, torch.Generator())["keyframes"]
    seen = keyframes_the_model_saw(monkeypatch, tmp_path, 0.0)
    assert all(torch.equal(rows, truth) for rows in seen.split(2))


def test_share_one_trains_on_the_vqs_reconstruction_of_the_true_keyframes(monkeypatch, tmp_path):
    truth = FixedWindows().sample(2, torch.Generator())["keyframes"]
    seen = keyframes_the_model_saw(monkeypatch, tmp_path, 1.0)
    assert all(torch.equal(rows, truth + 1.0) for rows in seen.split(2))


def test_a_half_share_mixes_true_and_vq_windows(monkeypatch, tmp_path):
    truth = FixedWindows().sample(2, torch.Generator())["keyframes"]
    seen = keyframes_the_model_saw(monkeypatch, tmp_path, 0.5)
    rows = truth.repeat(seen.shape[0] // 2, 1, 1)
    from_vq = (seen == rows + 1.0).flatten(1).all(1)
    true = (seen == rows).flatten(1).all(1)
    assert bool((from_vq | true).all()) and from_vq.any() and true.any()


def test_the_share_changes_the_trained_weights(tmp_path):
    truth, through_vq = (train(tmp_path, s, RecordingVQ()).state_dict() for s in (0.0, 1.0))
    assert any(not torch.equal(truth[k], through_vq[k]) for k in truth)


def test_missing_share_is_upstreams_true_keyframes(tmp_path):
    vq = RecordingVQ()
    train(tmp_path, None, vq)
    assert vq.seen == []


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_share_outside_zero_to_one_is_refused_naming_the_key(tmp_path, share):
    with pytest.raises(
        ValueError, match=r"^guide_poses_vq_share: Input should be (greater|less) than or equal"
    ):
        train(tmp_path, share, RecordingVQ())


def test_a_wiener_gain_is_fitted_after_training_and_only_when_asked(tmp_path):
    objective = {"lambda_vel": 1.0, "cond_drop_prob": 0.0}
    args = (FixedWindows(), STATS, MODEL, TRAIN)
    person, vq = {"person": "T"}, RecordingVQ()
    plain, _ = train_pose(*args, objective, person, {"root": str(tmp_path)}, vq)
    assert plain.module.wiener is None
    gained, _ = train_pose(
        *args,
        {**objective, "wiener_gain": {"levels": 4, "batches": 1, "subspace_share": 0.9}},
        person,
        {"root": str(tmp_path)},
        vq,
    )
    # Same checkpoint (the gain does not shape training), now with a gain on the same weights.
    assert gained.checkpoint == plain.checkpoint
    assert gained.module.wiener is not None and len(gained.module.wiener.levels) == 4
    # What the gain adds is kept to the axes holding 90 % of the windows' velocity variance.
    rank = int(torch.linalg.matrix_rank(gained.module.wiener.projector))
    assert 0 < rank < 104
    with pytest.raises(ValueError, match="wiener_gain.batchs: unknown key"):
        train_pose(
            *args,
            {**objective, "wiener_gain": {"levels": 4, "batchs": 1}},
            person,
            {"root": str(tmp_path)},
            vq,
        )


def test_a_model_audio_width_other_than_the_cached_features_is_refused_before_training(tmp_path):
    objective = {"lambda_vel": 1.0, "cond_drop_prob": 0.0}
    with pytest.raises(ValueError, match=r"pose\.model\.audio_feature_dim is 80 .* are 40 wide"):
        train_pose(
            FixedWindows(),
            STATS,
            {**MODEL, "audio_feature_dim": 80},
            TRAIN,
            objective,
            {"person": "T"},
            {"root": str(tmp_path)},
            RecordingVQ(),
        )
    assert not any(tmp_path.rglob("*.pt"))  # refused before a checkpoint was written
