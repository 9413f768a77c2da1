"""Dropout with integer-draw masks: the rate, the scaling, its gradient and eval mode."""

from __future__ import annotations

import pytest
import torch

from audio2photoreal_pipelines.models.dropout import Dropout, keep_scale_mask


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5])
def test_every_element_is_dropped_at_rate_p(p):
    """Each of the four 16-bit quarters of a 64-bit draw drops at p, not just their average."""
    torch.manual_seed(0)
    mask = keep_scale_mask(torch.Size((400_000,)), p, dtype=torch.float32)
    assert mask.unique().tolist() == pytest.approx([0.0, 1 / (1 - p)])
    dropped = (mask == 0).float().view(-1, 4)  # column j: quarter j of each draw
    tolerance = 5 * (p * (1 - p) / dropped.shape[0]) ** 0.5
    for quarter in dropped.T:
        assert quarter.mean().item() == pytest.approx(p, abs=tolerance)


def test_neighbouring_elements_are_dropped_independently():
    torch.manual_seed(0)
    dropped = keep_scale_mask(torch.Size((400_000,)), 0.5, dtype=torch.float32) == 0
    both = (dropped[:-1] & dropped[1:]).float().mean().item()
    assert both == pytest.approx(0.25, abs=0.005)


def test_training_output_keeps_the_mean_and_its_gradient_is_the_mask():
    torch.manual_seed(0)
    x = torch.full((64, 1000), 2.0, requires_grad=True)
    y = Dropout(0.2).train()(x)
    assert y.mean().item() == pytest.approx(2.0, rel=0.02)
    kept = y != 0
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 2.0 / 0.8))
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.8)


def test_same_seed_same_mask_and_bfloat16_keeps_its_dtype():
    x = torch.ones(8, 100, dtype=torch.bfloat16)
    torch.manual_seed(3)
    a = Dropout(0.3).train()(x)
    torch.manual_seed(3)
    b = Dropout(0.3).train()(x)
    assert a.dtype == torch.bfloat16 and torch.equal(a, b)


def test_eval_mode_and_zero_rate_return_the_input():
    x = torch.randn(4, 5)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0).train()(x) is x


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_rates_outside_zero_to_one_are_rejected(p):
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(p)
