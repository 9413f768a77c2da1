"""Paper-size denoisers have upstream's parameter counts (upstream.md §3(a), §3(b)).

Compared: every trainable parameter except two parts that differ by design.
- The audio front end. Upstream feeds frozen vq-wav2vec features (1024-d, not counted in its
  49.10 M / 13.41 M); ours feeds log-mel features through the learned `AudioEncoder`, which is
  excluded. With `audio_dim=1024` (and `lip_dim=1014` for the face) our condition projection has
  upstream's shape (Linear 2038 -> 512, Linear 1024 -> 256) and is compared.
- The null (classifier-free) embeddings: upstream's are (1, 1998, D) audio and (1, 20, D) pose,
  ours (1, 1, D) so that windows can have any length.
The rotary frequencies (a parameter with requires_grad=False) are not counted.
"""

from __future__ import annotations

from torch import nn

from audio2photoreal_pipelines.models.denoisers import build_face_denoiser, build_pose_denoiser


def _trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def _layer_norm(d: int) -> int:
    return 2 * d


def _attention(d: int) -> int:
    return 4 * d * d + 4 * d  # nn.MultiheadAttention: in_proj 3d² + 3d, out_proj d² + d


def _feed_forward(d: int, ff: int) -> int:
    return _linear(d, ff) + _linear(ff, d)


def _film(d: int) -> int:
    return _linear(d, 2 * d)  # Mish -> Linear(d, 2d)


def _upstream_common(d: int, nfeats: int, cond_dim: int) -> int:
    """Input, timestep and pooled-condition parts shared by both upstream denoisers."""
    return (
        _linear(nfeats, d)  # input_process
        + _linear(d, 4 * d)  # time_mlp (sinusoidal -> Linear -> Mish)
        + _linear(4 * d, d)  # to_time_cond
        + _linear(4 * d, 2 * d)  # to_time_tokens
        + _linear(cond_dim, d)  # condition projection
        + d  # null_cond_hidden (1, d)
        + _layer_norm(d)
        + 2 * _linear(d, d)  # non_attn_cond_projection
        + _layer_norm(d)  # norm_cond
        + _linear(d, nfeats)  # final layer
    )


def _ours_without_front_end_and_nulls(model: nn.Module, null_names: tuple[str, ...]) -> int:
    nulls = sum(getattr(model, name).numel() for name in null_names)
    return _trainable(model) - _trainable(model.audio_encoder) - nulls


def test_face_denoiser_matches_upstream_parameter_count() -> None:
    d, ff, layers, enc_layers = 512, 1024, 8, 2
    decoder_layer = 2 * _attention(d) + _feed_forward(d, ff) + 3 * _layer_norm(d) + 3 * _film(d)
    encoder_layer = _attention(d) + _feed_forward(d, ff) + 2 * _layer_norm(d)
    upstream = (
        _upstream_common(d, 256, 1024 + 338 * 3)
        + enc_layers * encoder_layer
        + layers * decoder_layer
        + 1998 * d  # null_cond_embed (1, 1998, d)
    )
    assert round(upstream / 1e6, 2) == 49.10  # the figure in upstream.md §3(a)
    model = build_face_denoiser(
        dict(
            dim=d,
            depth=layers,
            heads=8,
            ff_dim=ff,
            cond_encoder_layers=enc_layers,
            audio_dim=1024,
            audio_encoder={"hidden_dim": 32},
            lip_dim=338 * 3,
        )
    )
    ours = _ours_without_front_end_and_nulls(model, ("null_cond_embed",))
    compared = upstream - 1998 * d
    assert abs(ours - compared) / compared < 0.02


def test_pose_denoiser_matches_upstream_parameter_count() -> None:
    d, ff, layers, nfeats = 256, 1024, 6, 104
    decoder_layer = 3 * _attention(d) + _feed_forward(d, ff) + 4 * _layer_norm(d) + 4 * _film(d)
    convs = [(nfeats, 256), (256, nfeats)] + [(nfeats, nfeats)] * 4
    conv_head = sum(c_in * c_out * 3 + c_out for c_in, c_out in convs) + _linear(nfeats, nfeats)
    guide = _linear(nfeats, d) + _layer_norm(d)  # keyframe Linear + frame_norm_cond
    upstream = (
        _upstream_common(d, nfeats, 1024)
        + guide
        + layers * decoder_layer
        + conv_head
        + 1998 * d  # null_cond_embed (1, 1998, d)
        + 20 * d  # null_pose_embed (1, 20, d)
    )
    assert round(upstream / 1e6, 2) == 13.41  # the figure in upstream.md §3(b)
    model = build_pose_denoiser(dict(dim=d, depth=layers, heads=8, ff_dim=ff, audio_dim=1024))
    ours = _ours_without_front_end_and_nulls(model, ("null_cond_embed", "null_pose_embed"))
    compared = upstream - 1998 * d - 20 * d
    assert abs(ours - compared) / compared < 0.02
