"""Residual VQ-VAE on keyframes: shapes, causality, codes, losses and per-level statistics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from audio2photoreal_pipelines.models.vqvae import VQVAE, code_statistics, vq_loss

FEATURES = 12


def make_vq(**kwargs) -> VQVAE:
    torch.manual_seed(0)
    params = dict(input_dim=FEATURES, width=16, num_quantizers=3, codebook_size=32)
    return VQVAE(**(params | kwargs))


def keyframes(batch: int = 8, length: int = 6, *, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, FEATURES, generator=g)


def initialised(vq: VQVAE, x: torch.Tensor) -> VQVAE:
    """Run one training pass (k-means init), then switch to eval."""
    vq.train()(x)
    return vq.eval()


def test_forward_shapes_and_code_range():
    vq = make_vq()
    x = keyframes()
    out = vq(x)
    assert out.recon.shape == x.shape
    assert out.codes.shape == (8, 6, 3) and out.codes.dtype == torch.long
    assert 0 <= out.codes.min() and out.codes.max() < 32
    assert out.perplexity.shape == out.usage.shape == (3,)
    assert out.commit_loss.ndim == 0 and out.commit_loss > 0


def test_encoder_and_decoder_are_causal():
    x = keyframes()
    vq = initialised(make_vq(), x)
    changed = x.clone()
    changed[:, 4:] += 3.0
    a, b = vq(x), vq(changed)
    assert torch.equal(a.codes[:, :4], b.codes[:, :4])
    torch.testing.assert_close(a.recon[:, :4], b.recon[:, :4])
    assert not torch.equal(a.codes[:, 4:], b.codes[:, 4:])


def test_decode_of_encode_equals_forward_reconstruction():
    x = keyframes()
    vq = initialised(make_vq(), x)
    codes = vq.encode(x)
    out = vq(x)
    assert torch.equal(codes, out.codes)
    torch.testing.assert_close(vq.decode(codes), out.recon, atol=1e-5, rtol=0)


def test_encode_never_updates_codebooks_even_in_training_mode():
    x = keyframes()
    vq = initialised(make_vq(), x).train()
    before = vq.rvq.codebooks.clone()
    vq.encode(x + 1.0)
    assert torch.equal(before, vq.rvq.codebooks)
    vq(x + 1.0)
    assert not torch.equal(before, vq.rvq.codebooks)


def test_eval_commitment_matches_the_library_training_loss():
    """ResidualVQ reports commitment only in training; our eval recomputation agrees with it."""
    x = keyframes()
    vq = initialised(make_vq(), x).train()
    latent = vq._latent(x)
    _, _, losses, all_codes = vq.rvq(latent, return_all_codes=True, freeze_codebook=True)
    torch.testing.assert_close(vq._commitment(latent, all_codes, None), losses.mean())
    mask = torch.ones(8, 6, dtype=torch.bool)
    mask[:3, 4:] = False
    _, _, masked_losses, codes = vq.rvq(
        latent, mask=mask, return_all_codes=True, freeze_codebook=True
    )
    torch.testing.assert_close(vq._commitment(latent, codes, mask), masked_losses.mean())


def test_straight_through_gradients_reach_the_encoder():
    vq = make_vq().train()
    x = keyframes()
    loss, _ = vq_loss(vq(x), x)
    loss.backward()
    assert vq.encoder[0].weight.grad is not None and vq.encoder[0].weight.grad.abs().sum() > 0
    assert vq.decoder[-1].weight.grad.abs().sum() > 0


def test_vq_loss_ignores_padded_keyframes():
    x = keyframes()
    vq = initialised(make_vq(), x)
    mask = torch.ones(8, 6, dtype=torch.bool)
    mask[:, 5] = False
    out = vq(x, mask)
    target = x.clone()
    loss, metrics = vq_loss(out, target, mask, commit_weight=0.02)
    target[:, 5] = 100.0
    loss_changed, _ = vq_loss(out, target, mask, commit_weight=0.02)
    expected = F.smooth_l1_loss(out.recon[:, :5], x[:, :5], beta=1.0)
    assert metrics["recon"] == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() == pytest.approx(expected.item() + 0.02 * out.commit_loss.item(), rel=1e-5)
    assert loss_changed.item() == pytest.approx(loss.item())
    assert {f"perplexity_{q}" for q in range(3)} | {f"usage_{q}" for q in range(3)} <= set(metrics)


def test_code_statistics_per_level():
    codes = torch.zeros(2, 4, 3, dtype=torch.long)
    codes[..., 0] = torch.arange(8).reshape(2, 4) % 4  # 4 codes, uniform
    codes[..., 2] = torch.tensor([[0, 0, 0, 1], [0, 0, 0, 1]])  # p = (3/4, 1/4)
    perplexity, usage = code_statistics(codes, 16)
    p = torch.tensor([0.75, 0.25])
    torch.testing.assert_close(
        perplexity, torch.tensor([4.0, 1.0, math.exp(-(p * p.log()).sum().item())])
    )
    torch.testing.assert_close(usage, torch.tensor([4 / 16, 1 / 16, 2 / 16]))
    mask = torch.tensor([[True, True, False, False], [False, False, False, False]])
    perplexity, usage = code_statistics(codes, 16, mask)
    torch.testing.assert_close(perplexity[0], torch.tensor(2.0))


def test_small_vq_learns_to_reconstruct_smooth_keyframes():
    """A few hundred steps on smooth low-rank keyframes halve the reconstruction error."""
    torch.manual_seed(0)
    basis = torch.randn(3, FEATURES)
    vq = make_vq(codebook_size=16)
    optimiser = torch.optim.AdamW(vq.parameters(), lr=3e-3)

    def batch() -> torch.Tensor:
        phase = torch.rand(16, 1, 3) * 6.28
        t = torch.arange(6).view(1, 6, 1) * 0.5
        return torch.sin(t + phase) @ basis

    first = None
    for _ in range(150):
        x = batch()
        loss, metrics = vq_loss(vq(x), x)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        first = first if first is not None else metrics["recon"]
    vq.eval()
    x = batch()
    _, metrics = vq_loss(vq(x), x)
    assert metrics["recon"] < 0.5 * first


def test_paper_size_vq_trains_on_a_tiny_batch():
    """k-means init and dead-code reset with 4·20 vectors for 1024 codes (upstream.md §10.8)."""
    torch.manual_seed(0)
    vq = VQVAE(input_dim=104, width=64, num_quantizers=4, codebook_size=1024).train()
    x = torch.randn(4, 20, 104)
    out = vq(x)
    loss, metrics = vq_loss(out, x)
    loss.backward()
    assert out.codes.shape == (4, 20, 4)
    assert torch.isfinite(loss)
    # Only 80 vectors exist, so at most 80 of the 1024 codes can be in use per level.
    assert all(metrics[f"usage_{q}"] <= 80 / 1024 for q in range(4))


def test_reconstruct_is_decode_of_encode_masked_and_never_updates_codebooks():
    x = keyframes()
    vq = initialised(make_vq(), x).train()  # even in training mode it must not learn
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    mask = torch.ones(x.shape[:2], dtype=torch.bool)
    mask[:, -2:] = False
    recon = vq.reconstruct(x, mask)
    assert torch.allclose(recon[:, :-2], vq.decode(vq.encode(x, mask))[:, :-2])
    assert torch.equal(recon[:, -2:], torch.zeros_like(recon[:, -2:]))
    assert not recon.requires_grad
    after = vq.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
