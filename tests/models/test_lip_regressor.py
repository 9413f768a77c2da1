"""Tests for the optional lip regressor and its checkpoint loader (synthesised checkpoints)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from audio2photoreal_pipelines.models.lip_regressor import (
    LipRegressor,
    checkpoint_key,
    load_lip_regressor,
)

TINY = dict(
    n_vertices=5,
    dim=8,
    heads=2,
    ff_dim=16,
    encoder_layers=1,
    decoder_layers=2,
    feature_layers=((8, 10, 5), (8, 8, 4), (8, 4, 2), (8, 4, 2), (8, 4, 2), (8, 1, 1)),
    aggregator_layers=((12, 2, 1), (12, 3, 1)),  # 8 -> 12 exercises the residual projection
    chunk_frames=4,
)


def _save_upstream_layout(model: LipRegressor, path: Path, drop: str | None = None) -> None:
    """Write the model's weights under upstream's key names, plus keys the loader ignores."""
    state = {checkpoint_key(k): v for k, v in model.state_dict().items() if k != drop}
    state["audio_encoder.wav2vec_model.wav2vec_predictions.project_to_steps.weight"] = torch.ones(1)
    torch.save({"model_state_dict": state, "iteration": 200000}, path)


def test_output_is_per_frame_lip_vertices_from_channel_0() -> None:
    torch.manual_seed(0)
    model = LipRegressor(**TINY)
    audio = torch.randn(2, 1600 * 10 + 100, 2)  # 10 frames and a partial one; 3 chunks
    out = model(audio)
    partner_changed = audio.clone()
    partner_changed[..., 1] = 0.0
    assert out.shape == (2, 10, 15)
    torch.testing.assert_close(model(partner_changed), out)
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.train().training


def test_loader_reads_the_upstream_key_layout(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = LipRegressor(**TINY)
    path = tmp_path / "iter-0200000.pt"
    _save_upstream_layout(source, path)
    torch.manual_seed(1)
    loaded = load_lip_regressor(path, **TINY)
    audio = torch.randn(1, 1600 * 6, 2)
    torch.testing.assert_close(loaded(audio), source(audio))
    assert "regression_model.transformer_decoder.1.cross_attn.cross_attn.k_proj_weight" in {
        checkpoint_key(k) for k in loaded.state_dict()
    }


def test_loader_names_the_file_and_missing_keys(tmp_path: Path) -> None:
    source = LipRegressor(**TINY)
    path = tmp_path / "partial.pt"
    _save_upstream_layout(source, path, drop="project_output.weight")
    with pytest.raises(ValueError, match=r"partial\.pt.*1 .*missing: project_output\.weight"):
        load_lip_regressor(path, **TINY)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt.*model_state_dict"):
        load_lip_regressor(tmp_path / "other.pt", **TINY)


def test_loader_rejects_shape_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "wide.pt"
    _save_upstream_layout(LipRegressor(**{**TINY, "n_vertices": 6}), path)
    with pytest.raises(ValueError, match=r"wide\.pt.*project_output\.weight.*shape"):
        load_lip_regressor(path, **TINY)
