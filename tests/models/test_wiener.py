"""The per-frequency Wiener gain: what it passes, what it rejects, and that fitting it learns."""

from __future__ import annotations

import pickle

import pytest
import torch

from audio2photoreal_pipelines.models.denoisers import PoseDenoiser
from audio2photoreal_pipelines.models.diffusion.schedules import make_training_scheduler
from audio2photoreal_pipelines.models.wiener import (
    WienerGain,
    fit_wiener_gain,
    local_speed_envelope,
    noise_levels,
)

ALPHAS = make_training_scheduler(1000).alphas_cumprod
FRAMES, FEATURES = 120, 6


def smooth_motion(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Unit-scale motion (B, T, F) below about 2 Hz at 30 fps: white noise under a 15-frame Hann."""
    white = torch.randn(batch, FEATURES, FRAMES + 14, generator=generator)
    window = torch.hann_window(17)[1:-1]
    smooth = torch.nn.functional.conv1d(
        white.reshape(-1, 1, FRAMES + 14), (window / window.norm()).view(1, 1, -1)
    )
    return smooth.reshape(batch, FEATURES, FRAMES).transpose(1, 2)


def blind_predictor(x_t, t, cond):
    """A denoiser that ignores x_t, as the small body model does: it predicts the mean, 0."""
    return torch.zeros_like(x_t)


def fit(generator: torch.Generator) -> tuple[WienerGain, dict[str, list[float]]]:
    def batches():
        return {
            "motion": smooth_motion(16, generator),
            "length_mask": torch.ones(16, FRAMES, dtype=torch.bool),
        }

    return fit_wiener_gain(
        blind_predictor, batches, ALPHAS, num_batches=6, num_levels=12, generator=generator
    )


def test_noise_levels_start_at_zero_end_at_the_last_step_and_crowd_the_low_steps():
    levels = noise_levels(20, 1000)
    assert levels[0] == 0 and levels[-1] == 999
    assert torch.all(levels[1:] > levels[:-1])
    assert (levels < 100).sum() >= 6  # a third of the levels below t = 100
    with pytest.raises(ValueError, match="at least 2"):
        noise_levels(1, 1000)


def test_a_zero_gain_returns_the_network_prediction_and_a_unit_gain_returns_x_t():
    levels = torch.tensor([0, 999])
    x_t = torch.randn(2, 40, FEATURES)
    pred = torch.randn(2, 40, FEATURES)
    mask = torch.ones(2, 40, dtype=torch.bool)
    t = torch.tensor([0, 500])
    zero = WienerGain(ALPHAS, levels, torch.zeros(2, 41, FEATURES))
    torch.testing.assert_close(zero(x_t, t, pred, mask), pred)
    unit = WienerGain(ALPHAS, levels, torch.ones(2, 41, FEATURES))
    expected = x_t / ALPHAS[t].sqrt().view(-1, 1, 1)
    torch.testing.assert_close(unit(x_t, t, pred, mask), expected, atol=1e-4, rtol=1e-4)


def test_padded_frames_do_not_leak_into_valid_ones():
    levels = torch.tensor([0, 999])
    gain = WienerGain(ALPHAS, levels, torch.full((2, 41, FEATURES), 0.5))
    x_t = torch.randn(1, 40, FEATURES)
    mask = torch.arange(40)[None] < 25
    pred = torch.zeros_like(x_t)
    out = gain(x_t, torch.tensor([300]), pred, mask)
    x_t[:, 25:] = 1e6  # only the padding changes
    torch.testing.assert_close(gain(x_t, torch.tensor([300]), pred, mask), out)


def test_fitting_passes_the_detail_x_t_holds_and_rejects_the_noise():
    wiener, report = fit(torch.Generator().manual_seed(0))
    # A blind predictor's error is the motion's variance at every step; the gain recovers
    # nearly all of it where x_t is barely noised, and still most of it at t = 100.
    without, with_gain = report["t0"]
    assert with_gain < 0.01 * without
    without, with_gain = report["t100"]
    assert with_gain < 0.3 * without
    # At t = 700 x_t is mostly noise: the gain helps little and must not hurt.
    without, with_gain = report["t700"]
    assert with_gain <= without
    # The motion lies below ~4 Hz; at a middle step the gain passes it and rejects the rest.
    middle = int(torch.searchsorted(wiener.levels, torch.tensor(200)))
    per_frequency = wiener.gain[middle].mean(-1)  # (K,) from 0 to 15 Hz
    low, high = per_frequency[: per_frequency.shape[0] // 15], per_frequency[-40:]
    assert low.mean() > 0.5 and high.mean() < 0.1


def test_the_fitted_gain_improves_held_out_motion_too():
    wiener, _ = fit(torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    x0 = smooth_motion(16, g)
    mask = torch.ones(16, FRAMES, dtype=torch.bool)
    t = torch.full((16,), 60)
    abar = ALPHAS[60]
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * torch.randn(x0.shape, generator=g)
    blind = torch.zeros_like(x0)
    assert ((wiener(x_t, t, blind, mask) - x0) ** 2).mean() < 0.2 * (x0**2).mean()


def moving_then_still(frames: int = 80) -> torch.Tensor:
    """(1, T, F) prediction that moves steadily in its first half and stands still after."""
    steps = torch.cat([torch.ones(frames // 2), torch.zeros(frames - frames // 2)])
    return torch.cumsum(steps, 0)[None, :, None].expand(1, frames, FEATURES) / FEATURES**0.5


def test_the_envelope_is_one_for_steady_motion_and_follows_the_speed_otherwise():
    mask = torch.ones(1, 80, dtype=torch.bool)
    steady = torch.linspace(0, 5, 80)[None, :, None].expand(1, 80, FEATURES)
    torch.testing.assert_close(local_speed_envelope(steady, mask, 1.4), torch.ones(1, 80))
    envelope = local_speed_envelope(moving_then_still(), mask, 1.0)
    assert envelope[0, 5:30].min() > 1.5 and envelope[0, 50:].max() < 0.2
    assert abs(float(envelope.mean()) - 1.0) < 0.1  # 1 before the still half is clamped up to 1/8


def test_an_envelope_gain_passes_more_where_the_prediction_moves_and_never_more_than_x_t():
    levels = torch.tensor([0, 999])
    mask = torch.ones(1, 80, dtype=torch.bool)
    pred, t = moving_then_still(), torch.tensor([300])
    x_t = torch.randn(1, 80, FEATURES, generator=torch.Generator().manual_seed(0))
    half = torch.full((2, 81, FEATURES), 0.5)
    stationary = WienerGain(ALPHAS, levels, half)(x_t, t, pred, mask) - pred
    shaped = WienerGain(ALPHAS, levels, half, envelope_exponent=1.0)(x_t, t, pred, mask) - pred
    moving, still = slice(10, 30), slice(50, 70)
    assert shaped[:, moving].norm() > 1.2 * stationary[:, moving].norm()
    assert shaped[:, still].norm() < 0.5 * stationary[:, still].norm()
    # A unit gain copies x_t / sqrt(abar) whatever the envelope: a G / (a G + 1 - G) = 1.
    unit = WienerGain(ALPHAS, levels, torch.ones(2, 81, FEATURES), envelope_exponent=2.0)
    expected = x_t / ALPHAS[300].sqrt()
    torch.testing.assert_close(unit(x_t, t, pred, mask), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("true_exponent", [0.0, 1.0])
def test_fitting_the_envelope_recovers_how_the_error_grows_with_the_speed(true_exponent):
    generator = torch.Generator().manual_seed(3)

    def batches():
        # A prediction whose speed drifts slowly within each window, and a truth that departs
        # from it by white noise of variance speed ** true_exponent.
        drift = smooth_motion(16, generator)[..., :1].repeat_interleave(FEATURES, -1)
        speed = torch.exp(1.5 * drift)  # (B, T, F), the same on every feature
        pred = torch.cumsum(speed, 1) / FEATURES**0.5
        noise = torch.randn(pred.shape, generator=generator)
        truth = pred + 0.3 * speed ** (true_exponent / 2) * noise
        return {
            "motion": truth,
            "prediction": pred,
            "length_mask": torch.ones(16, FRAMES, dtype=torch.bool),
        }

    wiener, _ = fit_wiener_gain(
        lambda x_t, t, cond: cond["prediction"],
        batches,
        ALPHAS,
        num_batches=4,
        num_levels=4,
        generator=generator,
        envelope=True,
    )
    assert abs(float(wiener.envelope_exponent) - true_exponent) < 0.2


def test_a_gain_pickled_before_the_envelope_or_the_subspace_existed_loads_as_before():
    gain = WienerGain(ALPHAS, torch.tensor([0, 999]), torch.full((2, 41, FEATURES), 0.5))
    x_t, pred = torch.randn(2, 40, FEATURES), torch.randn(2, 40, FEATURES)
    t, mask = torch.tensor([300, 300]), torch.ones(2, 40, dtype=torch.bool)
    expected = gain(x_t, t, pred, mask)
    # What a gain registered by an older version holds:
    del gain._buffers["envelope_exponent"], gain._buffers["projector"]
    restored = pickle.loads(pickle.dumps(gain))
    assert float(restored.envelope_exponent) == 0.0
    torch.testing.assert_close(restored(x_t, t, pred, mask), expected)


def test_with_a_subspace_share_the_gain_adds_nothing_where_the_motion_does_not_move():
    """Motion in 2 of 6 features' directions: the features-by-feature gain passes x_t's noise
    into the other 4 as well, unless its output is kept to the motion's principal axes."""
    generator = torch.Generator().manual_seed(5)
    mixing = torch.linalg.qr(torch.randn(FEATURES, FEATURES, generator=generator))[0]
    moving, still = mixing[:, :2], mixing[:, 2:]

    def fitted(share):
        draws = torch.Generator().manual_seed(6)  # the same windows and noise for every share

        def batches():
            motion = smooth_motion(16, draws)[..., :2] @ moving.T
            return {"motion": motion, "length_mask": torch.ones(16, FRAMES, dtype=torch.bool)}

        return fit_wiener_gain(
            blind_predictor,
            batches,
            ALPHAS,
            num_batches=4,
            num_levels=8,
            generator=draws,
            subspace_share=share,
        )[0]

    x_t = torch.randn(4, FRAMES, FEATURES, generator=generator) * (1 - ALPHAS[20]).sqrt()
    t, mask = torch.full((4,), 20), torch.ones(4, FRAMES, dtype=torch.bool)
    pred = torch.zeros_like(x_t)
    everywhere = fitted(None)(x_t, t, pred, mask)
    kept = fitted(0.999)(x_t, t, pred, mask)
    leaked = (everywhere @ still).square().mean()
    assert leaked > 0.5 * (everywhere @ moving).square().mean()
    assert (kept @ still).square().mean() < 1e-6 * leaked
    torch.testing.assert_close(kept @ moving, everywhere @ moving, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="not in"):
        fitted(0.0)


def _pose() -> PoseDenoiser:
    torch.manual_seed(0)
    return PoseDenoiser(dim=16, depth=1, heads=2, ff_dim=32, audio_feature_dim=8, conv_hidden=8)


def _cond(batch: int = 2, frames: int = 60) -> dict[str, torch.Tensor]:
    return {
        "audio_features": torch.randn(batch, frames * 10 // 3, 8),
        "length_mask": torch.ones(batch, frames, dtype=torch.bool),
        "keyframes": torch.randn(batch, 2, 104),
        "keyframe_mask": torch.ones(batch, 2, dtype=torch.bool),
    }


def test_the_pose_denoiser_applies_its_gain_and_carries_it_when_pickled():
    pose = _pose().eval()
    cond, x_t = _cond(), torch.randn(2, 60, 104)
    t = torch.tensor([0, 0])
    ctx = pose.encode_condition(cond, torch.zeros(2, dtype=torch.bool))
    plain = pose.denoise(x_t, t, ctx)
    pose.wiener = WienerGain(ALPHAS, torch.tensor([0, 999]), torch.ones(2, 61, 104))
    with_gain = pose.denoise(x_t, t, ctx)
    assert not torch.allclose(plain, with_gain)
    torch.testing.assert_close(with_gain, x_t / ALPHAS[0].sqrt(), atol=1e-4, rtol=1e-4)
    restored = pickle.loads(pickle.dumps(pose))
    torch.testing.assert_close(restored.denoise(x_t, t, ctx), with_gain)
    assert "wiener.gain" in restored.state_dict()


def test_a_pose_denoiser_pickled_before_the_gain_existed_still_loads_and_denoises():
    pose = _pose().eval()
    del pose._modules["wiener"]  # what a model registered by an older version holds
    restored = pickle.loads(pickle.dumps(pose))
    assert restored.wiener is None
    ctx = restored.encode_condition(_cond(), torch.zeros(2, dtype=torch.bool))
    assert restored.denoise(torch.randn(2, 60, 104), torch.tensor([5, 5]), ctx).shape == (
        2,
        60,
        104,
    )
