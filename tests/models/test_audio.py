"""Audio front ends: log-mel features, the learned encoder and the vq-wav2vec extractor, read
from fairseq checkpoints by datasets/fairseq_checkpoint.py."""

from __future__ import annotations

import argparse
import math

import pytest
import torch

from audio2photoreal_pipelines.datasets.fairseq_checkpoint import read_fairseq_checkpoint
from audio2photoreal_pipelines.models.audio import (
    LOG_OFFSET,
    VQ_WAV2VEC_CONV_LAYERS,
    AudioEncoder,
    LogMelFeatures,
    VqWav2VecFeatures,
    build_vq_wav2vec,
    make_feature_extractor,
)
from audio2photoreal_pipelines.units import SAMPLE_RATE

SMALL_CONV_LAYERS = [(8, 10, 5), (8, 8, 4), (8, 4, 2), (8, 4, 2), (8, 4, 2)]


def load_vq_wav2vec(path, sample_rate: int = SAMPLE_RATE) -> VqWav2VecFeatures:
    """The extractor of a fairseq checkpoint file, read as the catalog's vq_wav2vec reads it."""
    model_state, args = read_fairseq_checkpoint(path)
    return build_vq_wav2vec(model_state, args, source=str(path), sample_rate=sample_rate)


class NotAllowlisted:
    """A pickled object the weights-only unpickler must not construct (like fairseq meters)."""

    def __init__(self) -> None:
        self.count = 3


def fairseq_checkpoint(conv_layers, *, seed: int = 0, **args) -> dict:
    """A fairseq-style checkpoint dict: extractor keys plus unrelated aggregator keys."""
    g = torch.Generator().manual_seed(seed)
    model, in_dim = {}, 1
    for i, (dim, kernel, _) in enumerate(conv_layers):
        prefix = f"feature_extractor.conv_layers.{i}"
        model[f"{prefix}.0.weight"] = torch.randn(dim, in_dim, kernel, generator=g) * 0.3
        model[f"{prefix}.2.weight"] = 1 + 0.1 * torch.randn(dim, generator=g)
        model[f"{prefix}.2.bias"] = 0.1 * torch.randn(dim, generator=g)
        in_dim = dim
    model["feature_aggregator.conv_layers.0.1.weight"] = torch.randn(4, 4, 2, generator=g)
    model["vector_quantizer.vars"] = torch.randn(1, 4, 4, generator=g)
    namespace = argparse.Namespace(conv_feature_layers=str(list(conv_layers)), **args)
    return {"model": model, "args": namespace, "extra_state": {"meter": NotAllowlisted()}}


@pytest.mark.parametrize("num_frames", [1, 7, 150, 600])
def test_log_mel_frame_count_is_n_over_480_plus_one(num_frames):
    features = LogMelFeatures()
    num_samples = num_frames * 1600
    out = features(torch.randn(1, num_samples, 2) * 0.1)
    assert out.shape == (1, num_samples // 480 + 1, 80)
    assert features.num_frames(num_samples) == out.shape[1]


@pytest.mark.parametrize("num_samples", [958, 1439, 2000])
def test_log_mel_frame_count_for_any_length(num_samples):
    features = LogMelFeatures()
    out = features(torch.randn(1, num_samples, 2))
    assert out.shape[1] == math.ceil(num_samples / 3) // 160 + 1 == features.num_frames(num_samples)


def test_log_mel_channel_zero_comes_first():
    features = LogMelFeatures(n_mels=16)
    speech = torch.randn(2, 4800)
    out = features(torch.stack([speech, torch.zeros_like(speech)], dim=-1))
    silent_value = torch.log(torch.tensor(LOG_OFFSET))
    torch.testing.assert_close(out[..., 16:], torch.full_like(out[..., 16:], silent_value))
    assert (out[..., :16] > silent_value + 1).all()


def test_log_mel_rejects_too_short_waveform():
    with pytest.raises(ValueError, match="too short"):
        LogMelFeatures()(torch.randn(1, 300, 2))


@pytest.mark.parametrize("pool_first", [False, True])
@pytest.mark.parametrize("num_frames", [5, 30, 61])
def test_audio_encoder_pools_to_the_motion_frame_count(num_frames, pool_first):
    encoder = AudioEncoder(80, 24, hidden_dim=32, pool_first=pool_first)
    out = encoder(torch.randn(2, round(num_frames * 10 / 3), 80), num_frames)
    assert out.shape == (2, num_frames, 24)


@pytest.mark.parametrize("pool_first", [False, True])
def test_audio_encoder_ignores_padded_features(pool_first):
    torch.manual_seed(0)
    encoder = AudioEncoder(20, 16, hidden_dim=16, pool_first=pool_first).eval()
    features = torch.randn(2, 100, 20)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[1, 18:] = False
    changed = features.clone()
    changed[1, 60:] = 7.0  # feature frames of padded motion frames 18..29
    a = encoder(features, 30, mask)
    b = encoder(changed, 30, mask)
    torch.testing.assert_close(a, b)
    assert (a[1, 18:] == 0).all() and (a[1, :18].abs().sum(-1) > 0).all()


@pytest.mark.parametrize("pool_first", [False, True])
def test_audio_encoder_time_alignment_of_pooled_tokens(pool_first):
    """A feature impulse at 100 Hz frame j lands in motion frame round(j * 3 / 10)."""
    encoder = AudioEncoder(4, 4, num_layers=0, input_proj=False, pool_first=pool_first)
    with torch.no_grad():
        encoder.out.weight.copy_(torch.eye(4))
        encoder.out.bias.zero_()
    features = torch.zeros(1, 200, 4)
    features[0, 100] = 1.0
    out = encoder(features, 60)
    assert out[0, :, 0].argmax().item() == 30


def test_pool_first_convolves_at_the_motion_frame_rate():
    """Kernel 5 after pooling reaches 2 motion frames each side (not 2 feature steps)."""
    torch.manual_seed(0)
    encoder = AudioEncoder(4, 4, num_layers=1, kernel_size=5, input_proj=False, pool_first=True)
    features = torch.zeros(1, 200, 4)
    base = encoder(features, 60)
    features[0, 100:103] = 1.0  # 100 Hz steps 100..102 pool into motion frame 30 only
    changed = (encoder(features, 60) - base).abs().sum(-1)[0] > 1e-4
    assert changed.nonzero().flatten().tolist() == [28, 29, 30, 31, 32]


def test_pool_first_needs_same_padding():
    with pytest.raises(ValueError, match="pool_first needs padding='same'"):
        AudioEncoder(4, 4, padding="valid", pool_first=True)


def test_upstream_pre_audio_shape_drops_48_frames():
    encoder = AudioEncoder(
        16,
        8,
        hidden_dim=16,
        num_layers=12,
        kernel_size=3,
        dilations=(1, 2, 3),
        activation="leaky_relu",
        padding="valid",
        input_proj=False,
        pointwise_out=True,
    )
    assert encoder.shrink == 48
    assert encoder(torch.randn(1, 60, 16), 4).shape == (1, 4, 8)
    with pytest.raises(ValueError, match="too few"):
        encoder(torch.randn(1, 48, 16), 4)


def test_default_extractor_has_fairseq_layout_and_receptive_field():
    extractor = VqWav2VecFeatures()
    assert (extractor.receptive_field, extractor.hop) == (465, 160)
    keys = set(extractor.conv_layers.state_dict())
    assert {"0.0.weight", "4.2.weight", "4.2.bias"} <= keys
    assert len(keys) == 3 * len(VQ_WAV2VEC_CONV_LAYERS)
    assert extractor.feature_dim == 512


@pytest.mark.parametrize("legacy_format", [False, True])
def test_load_vq_wav2vec_gives_1998_frames_for_a_600_frame_window(tmp_path, legacy_format):
    path = tmp_path / "vq-wav2vec.pt"
    torch.save(
        fairseq_checkpoint(SMALL_CONV_LAYERS, log_compression=True),
        path,
        _use_new_zipfile_serialization=not legacy_format,
    )
    extractor = load_vq_wav2vec(path, sample_rate=16_000)
    out = extractor(torch.randn(1, 320_000, 2))
    assert out.shape == (1, 1998, 16)
    assert (out >= 0).all()  # log(|x| + 1) compression


def test_loaded_weights_are_used_and_frozen(tmp_path):
    checkpoint = fairseq_checkpoint(SMALL_CONV_LAYERS)
    path = tmp_path / "vq.pt"
    torch.save(checkpoint, path)
    extractor = load_vq_wav2vec(path)
    assert torch.equal(
        extractor.conv_layers[1][0].weight,
        checkpoint["model"]["feature_extractor.conv_layers.1.0.weight"],
    )
    assert not any(p.requires_grad for p in extractor.parameters())
    extractor.train()
    assert not extractor.training


def test_extractor_output_is_self_then_partner(tmp_path):
    path = tmp_path / "vq.pt"
    torch.save(fairseq_checkpoint(SMALL_CONV_LAYERS), path)
    extractor = load_vq_wav2vec(path, sample_rate=16_000)
    wave = torch.randn(1, 4000, 2)
    a = extractor(wave)
    b = extractor(wave.flip(-1))
    torch.testing.assert_close(a[..., :8], b[..., 8:])
    assert not torch.allclose(a[..., :8], a[..., 8:])


def test_checkpoint_args_switch_log_compression_and_skips(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(fairseq_checkpoint(SMALL_CONV_LAYERS, log_compression=False), path)
    plain = load_vq_wav2vec(path, sample_rate=16_000)
    assert not plain.log_compression and not plain.skip_connections
    skip_path = tmp_path / "skip.pt"
    torch.save(
        fairseq_checkpoint(SMALL_CONV_LAYERS, skip_connections_feat=True, residual_scale=0.25),
        skip_path,
    )
    skip = load_vq_wav2vec(skip_path, sample_rate=16_000)
    assert skip.skip_connections and skip.residual_scale == pytest.approx(0.5)
    wave = torch.randn(1, 4000, 2)
    assert not torch.allclose(plain(wave), skip(wave))


def test_missing_key_fails_naming_file_and_key(tmp_path):
    checkpoint = fairseq_checkpoint(SMALL_CONV_LAYERS)
    del checkpoint["model"]["feature_extractor.conv_layers.3.2.bias"]
    path = tmp_path / "broken.pt"
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=r"broken\.pt.*feature_extractor\.conv_layers\.3\.2\.bias"):
        load_vq_wav2vec(path)


def test_unknown_extractor_key_fails(tmp_path):
    checkpoint = fairseq_checkpoint(SMALL_CONV_LAYERS)
    checkpoint["model"]["feature_extractor.conv_layers.9.0.weight"] = torch.zeros(1)
    path = tmp_path / "extra.pt"
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=r"unexpected key 'feature_extractor\.conv_layers\.9"):
        load_vq_wav2vec(path)


def test_non_checkpoint_file_fails_clearly(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_vq_wav2vec(path)


def test_feature_extractor_is_log_mel_without_a_checkpoint():
    extractor = make_feature_extractor(n_mels=8)
    assert isinstance(extractor, LogMelFeatures) and extractor.n_mels == 8


def test_vq_wav2vec_with_another_hop_is_rejected(tmp_path):
    path = tmp_path / "hop80.pt"
    torch.save(fairseq_checkpoint([(8, 10, 5), (8, 8, 4), (8, 4, 2), (8, 4, 2)]), path)
    with pytest.raises(ValueError, match="hops 80 samples"):
        make_feature_extractor(vq_wav2vec=load_vq_wav2vec(path))
