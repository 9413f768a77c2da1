"""Tests for the face and pose denoisers on tiny configurations."""

from __future__ import annotations

import math

import pytest
import torch

from audio2photoreal_pipelines.models.builders import build_face_denoiser, build_pose_denoiser
from audio2photoreal_pipelines.models.denoisers import (
    CausalPoseConvHead,
    FaceDenoiser,
    PoseDenoiser,
    interpolate_keyframes,
)
from audio2photoreal_pipelines.models.diffusion.losses import training_step_loss
from audio2photoreal_pipelines.models.diffusion.sampling import sample, sample_long
from audio2photoreal_pipelines.models.diffusion.schedules import (
    make_sampler,
    make_training_scheduler,
)
from audio2photoreal_pipelines.models.diffusion.windowing import slice_condition
from audio2photoreal_pipelines.parameter_block import ParameterError
from audio2photoreal_pipelines.units import BODY_DIM
from tests.conftest import project_parameters

FEATURES = 16
TINY = dict(dim=32, depth=2, heads=4, ff_dim=64, audio_feature_dim=FEATURES)


def _face(**kwargs) -> FaceDenoiser:
    torch.manual_seed(0)
    return FaceDenoiser(cond_encoder_layers=1, **{**TINY, **kwargs})


def _pose(**kwargs) -> PoseDenoiser:
    torch.manual_seed(0)
    return PoseDenoiser(conv_hidden=16, **{**TINY, **kwargs})


def _cond(lengths: list[int], frames: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Condition dict for clips of the given valid lengths, padded to `frames`."""
    g = torch.Generator().manual_seed(seed)
    batch, keyframes = len(lengths), math.ceil(frames / 30)
    lengths_t = torch.tensor(lengths)[:, None]
    return {
        "audio_features": torch.randn(batch, round(frames * 10 / 3), FEATURES, generator=g),
        "length_mask": torch.arange(frames)[None] < lengths_t,
        "keyframes": torch.randn(batch, keyframes, 104, generator=g),
        "keyframe_mask": torch.arange(keyframes)[None] * 30 < lengths_t,
    }


def _tracked_pose(**kwargs) -> PoseDenoiser:
    return _pose(keyframe_track=True, audio_to_tokens=True, **kwargs)


MODELS = [(_face, 256), (_pose, 104), (_tracked_pose, 104)]


@pytest.mark.parametrize(("make", "nfeats"), MODELS)
@pytest.mark.parametrize("frames", [17, 75])
def test_output_shape_for_any_length(make, nfeats: int, frames: int) -> None:
    model = make()
    cond = _cond([frames, frames - 5], frames)
    out = model(torch.randn(2, frames, nfeats), torch.tensor([0, 999]), cond, cond_drop_prob=0.5)
    assert out.shape == (2, frames, nfeats)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("make", "nfeats"), MODELS)
def test_valid_frames_ignore_padding(make, nfeats: int) -> None:
    model, frames, length = make().eval(), 60, 33
    cond = _cond([length], frames)
    x = torch.randn(1, frames, nfeats)
    t = torch.tensor([500])
    changed_cond = {k: v.clone() for k, v in cond.items()}
    changed_cond["audio_features"][:, round(length * 10 / 3) + 4 :] += 5.0
    changed_cond["keyframes"][:, 2:] += 5.0  # keyframe 2 (frame 60) is past the length
    changed_x = x.clone()
    changed_x[:, length:] += 5.0
    with torch.no_grad():
        before = model(x, t, cond)[:, :length]
        after = model(changed_x, t, changed_cond)[:, :length]
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)


def test_dropped_face_condition_ignores_audio() -> None:
    model, frames = _face().eval(), 40
    cond, other = _cond([frames], frames, seed=0), _cond([frames], frames, seed=1)
    x, t = torch.randn(1, frames, 256), torch.tensor([300])
    drop, keep = torch.ones(1, dtype=torch.bool), torch.zeros(1, dtype=torch.bool)
    with torch.no_grad():
        dropped = [model.denoise(x, t, model.encode_condition(c, drop)) for c in (cond, other)]
        kept = [model.denoise(x, t, model.encode_condition(c, keep)) for c in (cond, other)]
    torch.testing.assert_close(dropped[0], dropped[1])
    assert (kept[0] - kept[1]).abs().max() > 1e-3


def test_interpolate_keyframes_is_linear_between_valid_keyframes_then_holds() -> None:
    keyframes = torch.tensor([[0.0, 3.0, 6.0, 99.0]])[..., None].expand(1, 4, 2)
    mask = torch.tensor([[True, True, True, False]])
    track = interpolate_keyframes(keyframes, mask, 100, 30)
    assert track.shape == (1, 100, 2)
    expected = torch.cat([torch.arange(60) / 10, torch.full((40,), 6.0)])
    torch.testing.assert_close(track[0, :, 0], expected)
    torch.testing.assert_close(track[..., 0], track[..., 1])
    nothing_valid = interpolate_keyframes(keyframes, torch.zeros(1, 4, dtype=torch.bool), 50, 30)
    assert torch.equal(nothing_valid, torch.zeros(1, 50, 2))


@pytest.mark.parametrize("make", [_pose, _tracked_pose])
def test_pose_drop_groups_null_audio_and_guide_poses_separately(make) -> None:
    model, frames = make().eval(), 60
    cond = _cond([frames], frames)
    moved = {**cond, "keyframes": cond["keyframes"] + 1.0}
    x, t = torch.randn(1, frames, 104), torch.tensor([300])

    def run(c, drop):
        with torch.no_grad():
            return model.denoise(x, t, model.encode_condition(c, torch.tensor(drop)))

    # Keyframes matter unless the guide-pose group (column 1) is dropped.
    assert (run(cond, [[True, False]]) - run(moved, [[True, False]])).abs().max() > 1e-3
    torch.testing.assert_close(run(cond, [[False, True]]), run(moved, [[False, True]]))
    # A (B,) mask drops both groups, as the unconditional CFG pass needs.
    torch.testing.assert_close(run(cond, [True]), run(cond, [[True, True]]))


@pytest.mark.parametrize(("make", "nfeats"), MODELS)
def test_cached_sampling_equals_uncached(make, nfeats: int) -> None:
    model, frames = make(), 45
    cond = _cond([frames, 38], frames)
    scheduler = make_sampler("ddim", num_inference_steps=5)
    kwargs = dict(shape=(2, frames, nfeats), guidance_scale=2.0)
    cached = sample(model, scheduler, cond, generator=torch.Generator().manual_seed(0), **kwargs)
    uncached = sample(
        model,
        scheduler,
        cond,
        use_cache=False,
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    )
    torch.testing.assert_close(cached, uncached)
    assert model.training  # sampling restores the caller's mode


@pytest.mark.parametrize(("make", "nfeats"), MODELS)
def test_batched_guidance_equals_two_separate_passes(make, nfeats: int) -> None:
    model, frames, scale = make().eval(), 40, 2.5
    cond = _cond([frames, 31], frames)
    scheduler = make_sampler("ddim", num_inference_steps=4)
    out = sample(
        model,
        scheduler,
        cond,
        shape=(2, frames, nfeats),
        guidance_scale=scale,
        generator=torch.Generator().manual_seed(0),
    )
    x = torch.randn(2, frames, nfeats, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cond_ctx = model.encode_condition(cond, torch.zeros(2, dtype=torch.bool))
        uncond_ctx = model.encode_condition(cond, torch.ones(2, dtype=torch.bool))
        for t in scheduler.timesteps:
            t_b = torch.full((2,), int(t))
            c, u = model.denoise(x, t_b, cond_ctx), model.denoise(x, t_b, uncond_ctx)
            x0 = u + scale * (c - u)
            x = scheduler.step(x0, t, x).prev_sample
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=1e-4)


def test_conv_head_dropout_follows_train_and_eval() -> None:
    model, frames = _pose(dropout=0.0, conv_dropout=0.5), 30
    cond = _cond([frames], frames)
    x, t = torch.randn(1, frames, 104), torch.tensor([10])
    with torch.no_grad():
        model.train()
        assert (model(x, t, cond) - model(x, t, cond)).abs().max() > 1e-4
        model.eval()
        torch.testing.assert_close(model(x, t, cond), model(x, t, cond), rtol=0, atol=0)


def test_conv_head_is_causal_with_receptive_field_25() -> None:
    head = CausalPoseConvHead(8, hidden=16).eval()
    x = torch.randn(1, 60, 8)
    changed = x.clone()
    changed[:, 30] += 1.0
    with torch.no_grad():
        diff = (head(changed) - head(x)).abs().amax(dim=(0, 2))
    assert head(x).shape == x.shape
    assert diff[:30].max() == 0
    assert diff[30] > 0 and diff[54] > 0 and diff[55:].max() == 0


def test_builders_take_plain_dicts_and_reject_unknown_keys() -> None:
    face = build_face_denoiser({**TINY, "audio_encoder": {"num_layers": 1}})
    pose = build_pose_denoiser({**TINY, "conv_dropout": 0.1})
    assert len(face.audio_encoder.convs) == 1 and face.decoder.num_memories == 1
    assert pose.decoder.num_memories == 2
    with pytest.raises(ParameterError, match="^latent_dim: unknown key"):
        build_face_denoiser({**TINY, "latent_dim": 64})
    with pytest.raises(ParameterError, match="^conv_dropout: unknown key"):
        build_face_denoiser({**TINY, "conv_dropout": 0.1})
    with pytest.raises(ParameterError, match="^audio_encoder.out_dim: unknown key"):
        build_pose_denoiser({**TINY, "audio_encoder": {"out_dim": 8}})


@pytest.mark.parametrize(("make", "nfeats"), MODELS)
def test_any_length_sampling_of_two_and_a_half_windows(make, nfeats: int) -> None:
    model, window, overlap, frames = make(), 36, 6, 90  # windows [0, 36), [30, 66), [60, 90)
    cond = _cond([frames, 80], frames)
    scheduler = make_sampler("ddim", num_inference_steps=4)
    kwargs = dict(guidance_scale=2.0)
    out = sample_long(
        model,
        scheduler,
        cond,
        shape=(2, frames, nfeats),
        window=window,
        overlap=overlap,
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    )
    first = sample(
        model,
        scheduler,
        slice_condition(cond, 0, window),
        shape=(2, window, nfeats),
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    )
    assert out.shape == (2, frames, nfeats) and torch.isfinite(out).all()
    torch.testing.assert_close(out[:, : window - overlap], first[:, : window - overlap])


@pytest.mark.slow
@pytest.mark.parametrize(("make", "no_dropout"), [(_face, {}), (_pose, {"conv_dropout": 0.0})])
def test_denoiser_overfits_a_tiny_batch(make, no_dropout: dict) -> None:
    nfeats, frames, batch = 8, 30, 4
    g = torch.Generator().manual_seed(0)
    phase = torch.rand(batch, 1, nfeats, generator=g)
    speed = 2 * torch.rand(batch, 1, nfeats, generator=g)
    motion = torch.sin(2 * math.pi * (torch.arange(frames)[None, :, None] / frames * speed + phase))
    data = {**_cond([frames] * batch, frames), "motion": motion}
    data["keyframes"] = motion[:, ::30]
    model = make(nfeats=nfeats, dropout=0.0, **no_dropout)
    scheduler = make_training_scheduler()

    def fixed_loss() -> float:
        model.eval()
        with torch.no_grad():
            gen = torch.Generator().manual_seed(123)
            losses = [
                training_step_loss(model, scheduler, data, cond_drop_prob=0.0, generator=gen)[0]
                for _ in range(4)
            ]
        model.train()
        return torch.stack(losses).mean().item()

    before = fixed_loss()
    opt = torch.optim.Adam(model.parameters(), lr=6e-3)
    for _ in range(150):
        loss, _ = training_step_loss(model, scheduler, data, cond_drop_prob=0.0, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert fixed_loss() < before / 10


def test_base_pose_audio_tokens_see_a_stroke_second_back():
    """A stroke moves the body for up to a second after its onset (0.3-0.6 s stroke, 0.4 s
    hold), so the base body model's frame-aligned audio token must see that far back."""
    torch.manual_seed(0)
    params = project_parameters()["pose"]["model"]
    encoder = build_pose_denoiser(params).audio_encoder
    frames, query = 120, 90
    features = torch.randn(1, 400, params["audio_feature_dim"], requires_grad=True)
    encoder(features, frames)[0, query].sum().backward()
    seen = features.grad[0].abs().sum(dim=-1).nonzero()[:, 0]  # feature rows at 100 Hz
    earliest_frame = int(seen.min()) * frames / features.shape[1]
    assert query - earliest_frame >= 27, f"the token sees {query - earliest_frame:.0f} frames back"


def test_base_pose_conv_head_is_wider_than_both_signs_of_the_body():
    """The conv head's first two convs end in a LeakyReLU without a residual path, so all of the
    body's motion passes through `conv_hidden` channels there. Wider than 2 x 104, a channel can
    hold each sign of every feature; the base configuration's 128 scored seed 1's FD_k 1.77x
    Random's against 1.48x for 512 (conf/base/parameters_train_pose.yml)."""
    params = project_parameters()["pose"]["model"]
    head = build_pose_denoiser(params).head[1]
    first, second = head.convs[0], head.convs[1]
    assert (first.in_channels, second.out_channels) == (BODY_DIM, BODY_DIM)
    assert first.out_channels >= 2 * BODY_DIM, f"conv head hidden width {first.out_channels}"
