"""Model blocks: every YAML key is a constructor keyword; unknown, missing or refused values fail
on one line naming the key, before anything is built."""

from __future__ import annotations

import re

import pytest

from audio2photoreal_pipelines.models.builders import (
    FaceParams,
    GuideParams,
    PoseParams,
    VQParams,
    build_guide,
    build_vq,
)
from audio2photoreal_pipelines.parameter_block import ParameterError
from audio2photoreal_pipelines.units import KEYFRAME_STRIDE

VQ_PARAMS = {"input_dim": 12, "width": 8, "num_quantizers": 2, "codebook_size": 16}
GUIDE_PARAMS = {
    "audio_dim": 10,
    "dim": 16,
    "depth": 1,
    "heads": 2,
    "ff_dim": 32,
    "level_embedding": True,
    "audio_encoder": {"hidden_dim": 24, "num_layers": 2, "dilations": [1, 2]},
}


def test_build_vq_uses_every_key():
    vq = build_vq(VQ_PARAMS | {"dilations": [1, 1, 2], "threshold_ema_dead_code": 0})
    assert vq.encoder[0].in_channels == 12 and vq.encoder[0].out_channels == 8
    assert (vq.num_quantizers, vq.codebook_size) == (2, 16)
    assert vq.keyframe_stride == KEYFRAME_STRIDE  # stored with the model, checked at sampling
    assert [conv.dilation[0] for conv in vq.encoder[2::2]] == [1, 1, 2]
    assert vq.rvq.layers[0]._codebook.threshold_ema_dead_code == 0


def test_build_vq_rejects_unknown_keys():
    with pytest.raises(ParameterError, match=r"^latent_dim: unknown key"):
        build_vq(VQ_PARAMS | {"latent_dim": 512})


def test_build_guide_takes_vocabulary_from_the_vq():
    vq = build_vq(VQ_PARAMS)
    guide = build_guide(GUIDE_PARAMS, vq=vq)
    assert (guide.codebook_size, guide.num_quantizers) == (16, 2)
    assert guide.keyframe_stride == KEYFRAME_STRIDE
    assert guide.head.out_features == 16 and guide.token_embedding.num_embeddings == 17
    assert guide.audio_encoder.convs[1].dilation == (2,)
    assert guide.audio_encoder.convs[0].out_channels == 24
    assert guide.level_embedding is not None


def test_build_guide_rejects_a_vocabulary_that_disagrees_with_the_vq():
    with pytest.raises(ValueError, match="guide.model.codebook_size: 32 but the VQ has 16"):
        build_guide(GUIDE_PARAMS | {"codebook_size": 32}, vq=build_vq(VQ_PARAMS))


def test_build_guide_rejects_unknown_and_missing_keys():
    with pytest.raises(ParameterError, match=r"^num_audio_layers: unknown key"):
        build_guide(GUIDE_PARAMS | {"num_audio_layers": 2})
    with pytest.raises(ParameterError, match=r"^audio_dim: Field required"):
        build_guide({k: v for k, v in GUIDE_PARAMS.items() if k != "audio_dim"})
    bad_audio = GUIDE_PARAMS | {"audio_encoder": {"layers": 3}}
    with pytest.raises(ParameterError, match=r"^audio_encoder.layers: unknown key"):
        build_guide(bad_audio)


@pytest.mark.parametrize(
    ("block", "settings", "problem"),
    [
        (FaceParams, {"dim": 130, "heads": 4}, "dim 130 must split into 4 heads"),
        (PoseParams, {"depth": True}, "depth: Input should be a valid integer, got True"),
        (PoseParams, {"keyframe_stride": 15}, "keyframe_stride: unknown key"),
        (VQParams, {"keyframe_stride": 15}, "keyframe_stride: unknown key"),
        (GuideParams, {"audio_dim": 80, "keyframe_stride": 15}, "keyframe_stride: unknown key"),
        (VQParams, {"width": -3}, "VQVAE refuses these parameters"),
        (GuideParams, {"audio_dim": 80, "dropout": "x"}, "dropout: Input should be a valid number"),
    ],
)
def test_a_value_the_model_refuses_fails_before_anything_is_built(block, settings, problem):
    with pytest.raises(ParameterError, match=re.escape(problem)):
        block.model_validate(settings)
