"""Tests for the diffusion schedule, loss, guidance and any-length sampling."""

from __future__ import annotations

import math

import pytest
import torch

from audio2photoreal_pipelines.models.diffusion.losses import diffusion_loss, training_step_loss
from audio2photoreal_pipelines.models.diffusion.sampling import sample, sample_long
from audio2photoreal_pipelines.models.diffusion.schedules import (
    SAMPLERS,
    make_sampler,
    make_training_scheduler,
    q_sample,
)
from audio2photoreal_pipelines.models.diffusion.windowing import slice_condition, window_starts
from tests.models.toys import GaussianToy, SmoothCurveToy


def _cosine_alpha_bar(t: torch.Tensor, steps: int) -> torch.Tensor:
    return torch.cos(((t / steps) + 0.008) / 1.008 * math.pi / 2) ** 2


def _cosine_betas(steps: int = 1000) -> torch.Tensor:
    t = torch.arange(steps, dtype=torch.float64)
    return torch.clamp(1 - _cosine_alpha_bar(t + 1, steps) / _cosine_alpha_bar(t, steps), max=0.999)


def test_training_schedule_is_upstream_cosine() -> None:
    betas = _cosine_betas()
    scheduler = make_training_scheduler()
    torch.testing.assert_close(scheduler.betas.double(), betas, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        scheduler.alphas_cumprod.double(), torch.cumprod(1 - betas, 0), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize(("steps", "stride"), [(25, 40), (100, 10), (500, 2), (1000, 1)])
def test_ddim_timesteps_match_upstream_respacing(steps: int, stride: int) -> None:
    scheduler = make_sampler("ddim", num_inference_steps=steps)
    assert len(range(0, 1000, stride)) == steps
    assert scheduler.timesteps.tolist() == list(range(0, 1000, stride))[::-1]


def test_ddim_rejects_strides_diffusers_cannot_reproduce() -> None:
    # Upstream's ddim334 has stride 3; diffusers would step by 1000 // 334 = 2.
    with pytest.raises(ValueError, match="stride 3"):
        make_sampler("ddim", num_inference_steps=334)


def test_samplers_share_the_training_schedule() -> None:
    reference = make_training_scheduler().alphas_cumprod
    for name in SAMPLERS:
        scheduler = make_sampler(name, num_inference_steps=50)
        assert isinstance(scheduler, SAMPLERS[name][0])
        assert scheduler.config.prediction_type == "sample"
        torch.testing.assert_close(scheduler.alphas_cumprod, reference)
    assert make_sampler("dpmsolver", num_inference_steps=10).config.algorithm_type == "dpmsolver++"
    with pytest.raises(ValueError, match=r"unknown sampler 'euler'; expected one of \['ddim'"):
        make_sampler("euler", num_inference_steps=50)


def test_a_sampler_added_to_the_registry_is_built_by_name(monkeypatch) -> None:
    from diffusers import EulerDiscreteScheduler

    monkeypatch.setitem(SAMPLERS, "euler", (EulerDiscreteScheduler, {}))
    scheduler = make_sampler("euler", num_inference_steps=20)
    assert isinstance(scheduler, EulerDiscreteScheduler) and len(scheduler.timesteps) == 20
    assert scheduler.config.prediction_type == "sample"


def test_q_sample_is_closed_form() -> None:
    scheduler = make_training_scheduler()
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(3, 5, 4, generator=g), torch.randn(3, 5, 4, generator=g)
    t = torch.tensor([0, 500, 999])
    abar = torch.cumprod(1 - _cosine_betas(), 0)[t].float().view(-1, 1, 1)
    expected = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    torch.testing.assert_close(q_sample(scheduler, x0, noise, t), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("t", [1, 300, 999])
def test_ddpm_step_is_the_closed_form_posterior(t: int) -> None:
    scheduler = make_training_scheduler()
    scheduler.set_timesteps(1000)
    g = torch.Generator().manual_seed(1)
    x_t, x0 = torch.randn(2, 6, 3, generator=g), torch.randn(2, 6, 3, generator=g)
    abar = scheduler.alphas_cumprod.double()
    a_t, a_prev = abar[t], abar[t - 1]
    beta = 1 - a_t / a_prev
    mean = (a_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - a_prev) * x_t) / (1 - a_t)
    var = (1 - a_prev) / (1 - a_t) * beta
    z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(7))
    out = scheduler.step(x0, t, x_t, generator=torch.Generator().manual_seed(7)).prev_sample
    # float32 schedule: at t = 1 the coefficients divide by 1 - abar_1 ~ 1e-4.
    torch.testing.assert_close(out, (mean + var.sqrt() * z).float(), atol=2e-4, rtol=0)


def test_loss_hand_computed_with_velocity() -> None:
    x0 = torch.zeros(1, 3, 2)
    x0_hat = torch.tensor([[[1.0, 1.0], [3.0, 1.0], [5.0, 5.0]]])
    length = torch.tensor([[True, True, False]])
    loss, metrics = diffusion_loss(x0_hat, x0, length_mask=length, lambda_vel=0.5)
    rot = (1 + 1 + 9 + 1) / (2 * 2)  # two valid frames x two features
    vel = (2**2 + 0**2) / (1 * 2)  # one valid difference (frame 1 - frame 0)
    assert metrics["rot_mse"].item() == pytest.approx(rot)
    assert metrics["vel_mse"].item() == pytest.approx(vel)
    assert loss.item() == pytest.approx(rot + 0.5 * vel)


def test_loss_averages_per_sample_then_over_batch() -> None:
    x0 = torch.zeros(2, 4, 1)
    x0_hat = torch.ones(2, 4, 1) * torch.tensor([1.0, 2.0]).view(2, 1, 1)
    length = torch.tensor([[True, False, False, False], [True, True, True, True]])
    loss, _ = diffusion_loss(x0_hat, x0, length_mask=length)
    assert loss.item() == pytest.approx((1.0 + 4.0) / 2)


def test_loss_ignores_missing_face_frames() -> None:
    g = torch.Generator().manual_seed(2)
    x0, x0_hat = torch.randn(2, 5, 3, generator=g), torch.randn(2, 5, 3, generator=g)
    length = torch.ones(2, 5, dtype=torch.bool)
    face_valid = length.clone()
    face_valid[0, 2] = False
    changed = x0.clone()
    changed[0, 2] += 100.0
    before, _ = diffusion_loss(x0_hat, x0, length_mask=length, frame_mask=face_valid)
    after, _ = diffusion_loss(x0_hat, changed, length_mask=length, frame_mask=face_valid)
    unmasked, _ = diffusion_loss(x0_hat, changed, length_mask=length)
    assert after.item() == pytest.approx(before.item())
    assert unmasked.item() > before.item() + 100


def test_loss_with_empty_sample_is_finite_and_ignores_it() -> None:
    x0_hat = torch.ones(2, 3, 2, requires_grad=True)
    length = torch.tensor([[True, True, True], [False, False, False]])
    loss, _ = diffusion_loss(x0_hat, torch.zeros(2, 3, 2), length_mask=length, lambda_vel=1.0)
    loss.backward()
    assert loss.item() == pytest.approx(1.0)
    assert torch.isfinite(x0_hat.grad).all()
    empty, _ = diffusion_loss(x0_hat, torch.zeros(2, 3, 2), length_mask=torch.zeros(2, 3).bool())
    assert empty.item() == 0.0


def test_training_step_loss_fits_a_learnable_mean() -> None:
    class LearnableMean(GaussianToy):
        def __init__(self) -> None:
            super().__init__(std=0.5)
            self.mu = torch.nn.Parameter(torch.zeros(()))

        def encode_condition(self, cond, drop):
            return self.mu.expand(drop.shape[0], 1, 1)

    model, scheduler = LearnableMean(), make_training_scheduler()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(3)
    for _ in range(200):
        motion = 3.0 + 0.5 * torch.randn(16, 4, 1, generator=g)
        batch = {"motion": motion, "length_mask": torch.ones(16, 4, dtype=torch.bool)}
        loss, metrics = training_step_loss(model, scheduler, batch, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert set(metrics) == {"rot_mse"}
    assert model.mu.item() == pytest.approx(3.0, abs=0.15)


def _mu_cond(batch: int, mu: float) -> dict[str, torch.Tensor]:
    return {"mu": torch.full((batch, 1, 1), mu)}


def test_ddim_eta1_full_steps_matches_ddpm_in_distribution() -> None:
    # DDIM with eta = 1 on all 1000 steps uses the DDPM posterior variance, so both are the
    # same Markov chain. With N = 4000 independent samples of std 0.5, the standard error of
    # a mean is 0.5 / sqrt(4000) = 0.008 and of a std about 0.5 / sqrt(8000) = 0.0056;
    # independent seeds give differences with sqrt(2) times that, so 5 standard errors bound
    # the mean (0.056) and std (0.04) gaps.
    n, mu, std = 4000, 1.5, 0.5
    toy = GaussianToy(std=std)
    ddim = make_sampler("ddim", num_inference_steps=1000)
    a = sample(
        toy,
        ddim,
        _mu_cond(n, mu),
        shape=(n, 1, 1),
        eta=1.0,
        generator=torch.Generator().manual_seed(0),
    )
    b = sample(
        toy,
        make_training_scheduler(),
        _mu_cond(n, mu),
        shape=(n, 1, 1),
        generator=torch.Generator().manual_seed(1),
    )
    assert abs(a.mean() - b.mean()) < 0.056
    assert abs(a.std() - b.std()) < 0.04
    assert abs(b.mean() - mu) < 0.04 and abs(b.std() - std) < 0.03


def test_guidance_one_is_the_conditional_prediction_in_one_pass() -> None:
    toy = GaussianToy(std=0.3)
    scheduler = make_sampler("ddim", num_inference_steps=10)
    cond = _mu_cond(4, 2.0)
    out = sample(
        toy,
        scheduler,
        cond,
        shape=(4, 3, 2),
        guidance_scale=1.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert set(toy.batch_sizes) == {4}
    x = torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(0))
    for t in scheduler.timesteps:
        x0 = toy(x, torch.full((4,), int(t)), cond)
        x = scheduler.step(x0, t, x).prev_sample
    torch.testing.assert_close(out, x0)


def test_batched_guidance_equals_two_separate_passes() -> None:
    toy, scale = GaussianToy(std=0.3), 3.0
    scheduler = make_sampler("ddim", num_inference_steps=10)
    cond = _mu_cond(4, 2.0)
    out = sample(
        toy,
        scheduler,
        cond,
        shape=(4, 3, 2),
        guidance_scale=scale,
        generator=torch.Generator().manual_seed(0),
    )
    assert set(toy.batch_sizes) == {8}
    x = torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(0))
    keep, drop = torch.zeros(4, dtype=torch.bool), torch.ones(4, dtype=torch.bool)
    for t in scheduler.timesteps:
        t_b = torch.full((4,), int(t))
        c = toy.denoise(x, t_b, toy.encode_condition(cond, keep))
        u = toy.denoise(x, t_b, toy.encode_condition(cond, drop))
        x0 = u + scale * (c - u)
        x = scheduler.step(x0, t, x).prev_sample
    torch.testing.assert_close(out, x0)
    # Guidance pushes beyond the conditional mean (2.0) away from the null mean (0.0).
    assert out.mean() > 2.0


@pytest.mark.parametrize("name", ["ddim", "dpmsolver"])
def test_cached_equals_uncached_and_sampling_is_repeatable(name: str) -> None:
    toy = GaussianToy(std=0.3)
    scheduler = make_sampler(name, num_inference_steps=20)
    runs = [
        sample(
            toy,
            scheduler,
            _mu_cond(3, 1.0),
            shape=(3, 4, 2),
            guidance_scale=2.0,
            use_cache=cache,
            generator=torch.Generator().manual_seed(5),
        )
        for cache in (True, False, True)
    ]
    torch.testing.assert_close(runs[0], runs[1])
    torch.testing.assert_close(runs[0], runs[2])


def test_window_starts_cover_any_length() -> None:
    assert window_starts(100, 600, 60) == [0]
    assert window_starts(1500, 600, 60) == [0, 540, 1080]
    with pytest.raises(ValueError):
        window_starts(100, 50, 50)


def test_slice_condition_aligns_features_keyframes_and_pads() -> None:
    frames = 90
    cond = {
        "audio_features": torch.arange(300.0).view(1, 300, 1),
        "length_mask": torch.ones(1, frames, dtype=torch.bool),
        "keyframes": torch.arange(3.0).view(1, 3, 1),
        "keyframe_mask": torch.ones(1, 3, dtype=torch.bool),
        "face_valid": torch.arange(90) % 2 == 0,
    }
    cond["face_valid"] = cond["face_valid"][None]
    piece = slice_condition(cond, 60, 45)
    assert piece["face_valid"][0].tolist() == [i % 2 == 0 for i in range(60, 90)] + [False] * 15
    assert piece["audio_features"][0, 0, 0] == 200  # round(60 * 10 / 3)
    assert piece["audio_features"].shape == (1, 150, 1)
    assert piece["length_mask"].tolist() == [[True] * 30 + [False] * 15]
    assert piece["keyframes"][0, :, 0].tolist() == [2.0, 0.0]  # frames 60 and 90 (past the end)
    assert piece["keyframe_mask"].tolist() == [[True, False]]
    with pytest.raises(ValueError, match="multiple of 30"):
        slice_condition(cond, 45, 30)
    with pytest.raises(ValueError, match="unknown"):
        slice_condition({"lips": torch.zeros(1, 3)}, 0, 3)


def _largest_step_ratio(x: torch.Tensor) -> float:
    """Largest mean |x[t+1] - x[t]| over frames, relative to the median frame step."""
    steps = x.diff(dim=1).abs().mean(dim=(0, 2))
    return (steps.max() / steps.median()).item()


def test_sample_long_shape_and_continuous_joins() -> None:
    toy = SmoothCurveToy(length_scale=6.0)
    scheduler = make_sampler("ddim", num_inference_steps=25)
    batch, frames = 32, 100
    cond = {"length_mask": torch.ones(batch, frames, dtype=torch.bool)}

    def run(overlap: int) -> torch.Tensor:
        return sample_long(
            toy,
            scheduler,
            cond,
            shape=(batch, frames, 2),
            window=40,
            overlap=overlap,
            generator=torch.Generator().manual_seed(0),
        )

    inpainted = run(overlap=10)  # windows [0, 40), [30, 70), [60, 100)
    independent = run(overlap=0)  # windows [0, 40), [40, 80), [80, 100): jumps at 40, 80
    assert inpainted.shape == (batch, frames, 2)
    # Measured: about 2x the median step for a few frames after each seam (1.2x inside one
    # window) against 9x for independent windows.
    assert _largest_step_ratio(inpainted) < 2.5
    assert _largest_step_ratio(independent) > 5.0


def test_sample_long_shorter_than_one_window_is_one_sample() -> None:
    toy = GaussianToy(std=0.3)
    scheduler = make_sampler("ddim", num_inference_steps=10)
    cond = {"mu": torch.ones(2, 1, 1)}
    kwargs = dict(shape=(2, 7, 3), guidance_scale=2.0)
    long = sample_long(
        toy,
        scheduler,
        lambda s, n: cond,
        window=20,
        overlap=5,
        generator=torch.Generator().manual_seed(4),
        **kwargs,
    )
    short = sample(toy, scheduler, cond, generator=torch.Generator().manual_seed(4), **kwargs)
    torch.testing.assert_close(long, short)


def test_sigma_based_scheduler_samples_the_right_distribution() -> None:
    # Euler keeps x_t in sigma space (x0 + sigma * noise, std up to ~sigma_max); the denoiser
    # was trained on variance-preserving x_t, which `sample` gets from scale_model_input.
    # Unscaled, the exact toy would see inputs up to sigma_max times too large.
    from diffusers import EulerDiscreteScheduler

    n, mu, std = 4000, 1.5, 0.5
    euler = EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="sample",
        timestep_spacing="leading",
    )
    euler.set_timesteps(50)
    x0 = sample(
        GaussianToy(std=std),
        euler,
        _mu_cond(n, mu),
        shape=(n, 1, 1),
        generator=torch.Generator().manual_seed(0),
    )
    assert abs(x0.mean() - mu) < 0.05 and abs(x0.std() - std) < 0.05


def test_inpainting_refuses_a_sigma_based_scheduler() -> None:
    from diffusers import EulerDiscreteScheduler

    euler = EulerDiscreteScheduler(num_train_timesteps=1000, prediction_type="sample")
    euler.set_timesteps(10)
    with pytest.raises(ValueError, match="variance-preserving sampler"):
        sample(
            GaussianToy(std=0.5),
            euler,
            _mu_cond(2, 0.0),
            shape=(2, 1, 1),
            known=torch.zeros(2, 1, 1),
            known_mask=torch.ones(1, dtype=torch.bool),
        )
