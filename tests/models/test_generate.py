"""Sampling the face and body: which windows each is diffused in, and where the guide poses go."""

from __future__ import annotations

import re

import pytest
import torch

from audio2photoreal_pipelines.models import generate
from audio2photoreal_pipelines.models.generate import (
    SamplingConfig,
    generate_body_from_keyframes,
    generate_face,
)
from audio2photoreal_pipelines.parameter_block import ParameterError
from audio2photoreal_pipelines.units import KEYFRAME_STRIDE


class _Stub(torch.nn.Module):
    def __init__(self, nfeats: int) -> None:
        super().__init__()
        self.nfeats = nfeats
        self.keyframe_stride = KEYFRAME_STRIDE


@pytest.fixture
def calls(monkeypatch):
    """Every sample_long call's condition and keyword arguments; returns zeros."""
    seen: list[dict] = []

    def fake_sample_long(denoiser, scheduler, cond, *, shape, **kwargs):
        seen.append({"cond": cond, **kwargs})
        return torch.zeros(shape)

    monkeypatch.setattr(generate, "sample_long", fake_sample_long)
    return seen


def test_body_is_diffused_in_its_own_windows_and_the_face_in_the_clip_window(calls):
    config = SamplingConfig(num_repetitions=1, window=600, overlap=60, body_window=150)
    frames, generator = 700, torch.Generator()
    length_mask = torch.ones(2, frames, dtype=torch.bool)
    keyframes = torch.randn(2, 24, 104)
    generate_body_from_keyframes(
        _Stub(104), torch.randn(2, 2334, 8), length_mask, keyframes, config, generator
    )
    generate_face(_Stub(256), torch.randn(2, 2334, 8), length_mask, config, generator)
    body, face = calls
    assert (body["window"], body["overlap"]) == (150, 30)
    assert (face["window"], face["overlap"]) == (600, 60)


def test_body_window_defaults_to_the_clip_window(calls):
    config = SamplingConfig(num_repetitions=1, window=300, overlap=40)
    length_mask = torch.ones(1, 90, dtype=torch.bool)
    generate_body_from_keyframes(
        _Stub(104), torch.randn(1, 300, 8), length_mask, torch.randn(1, 3, 104), config, None
    )
    assert calls[0]["window"] == 300


def test_guide_poses_past_the_clip_end_are_masked(calls):
    length_mask = torch.arange(90)[None] < torch.tensor([[90], [40]])
    keyframes = torch.ones(2, 3, 104)
    generate_body_from_keyframes(
        _Stub(104), torch.randn(2, 300, 8), length_mask, keyframes, SamplingConfig(), None
    )
    cond = calls[0]["cond"]
    assert cond["keyframe_mask"].tolist() == [[True, True, True], [True, True, False]]
    assert cond["keyframes"][1, 2].abs().sum() == 0 and cond["keyframes"][1, 1].min() == 1


def test_max_batch_diffuses_the_rows_in_groups_and_keeps_their_order(monkeypatch):
    seen_rows: list[list[int]] = []

    def row_ids_sample_long(denoiser, scheduler, cond, *, shape, **kwargs):
        rows = cond["audio_features"][:, 0, 0]
        seen_rows.append(rows.tolist())
        return rows.view(-1, 1, 1).expand(shape).clone()

    monkeypatch.setattr(generate, "sample_long", row_ids_sample_long)
    audio = torch.arange(5.0).view(5, 1, 1).expand(5, 300, 8)
    length_mask = torch.ones(5, 90, dtype=torch.bool)
    face = generate_face(
        _Stub(256), audio, length_mask, SamplingConfig(num_repetitions=1, max_batch=2), None
    )
    assert seen_rows == [[0.0, 1.0], [2.0, 3.0], [4.0]]
    assert face.shape == (1, 5, 90, 256)
    assert face[0, :, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"max_batch": 0}, "max_batch: Input should be greater than or equal to 1"),
        ({"sampler": "euler"}, "unknown sampler 'euler'; known: ddim, dpmsolver"),
        ({"overlap": 600}, "overlap 600 must be shorter than its window 600"),
        ({"body_window": 100, "body_overlap": 100}, "body_overlap 100 must be shorter"),
        ({"keyframe_step": 15}, "keyframe_step: unknown key"),
        ({"sampler": "ddim", "steps": 30}, "ddim30: upstream stride 34 does not divide 1000"),
    ],
)
def test_sampling_settings_that_cannot_work_are_refused(settings, problem):
    with pytest.raises(ParameterError, match=re.escape(problem)):
        SamplingConfig.model_validate(settings)


def test_models_trained_with_different_keyframe_strides_are_refused():
    vq, guide, pose = _Stub(104), _Stub(104), _Stub(104)
    guide.keyframe_stride = 15
    length_mask = torch.ones(1, 90, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"keyframe strides differ .*'guide': 15"):
        generate.generate_body(vq, guide, pose, torch.randn(1, 300, 8), length_mask, None, None)
    del guide.keyframe_stride  # a model pickled before strides were stored
    with pytest.raises(ValueError, match=r"'guide': None"):
        generate.generate_body(vq, guide, pose, torch.randn(1, 300, 8), length_mask, None, None)
