"""Paper-size VQ-VAE and guide against upstream's parameter counts (upstream.md §3(c), §3(d)).

Upstream's counts are recomputed here from its layer shapes, so the arithmetic is visible.
"""

from __future__ import annotations

import torch

from audio2photoreal_pipelines.models.builders import build_guide, build_vq

PAPER_VQ = {"input_dim": 104, "width": 64, "num_quantizers": 4, "codebook_size": 1024}
# Upstream's guide `pre_audio`: 2 blocks of 6 Conv1d 1024 -> 1024 (kernel 3, dilations
# 1, 2, 3, 1, 2, 3, no padding, LeakyReLU 0.2, dropout 0.2), a 1x1 conv, then Linear 1024 -> 64.
PAPER_GUIDE = {
    "audio_dim": 1024,
    "codebook_size": 1024,
    "num_quantizers": 4,
    "dim": 64,
    "depth": 6,
    "heads": 4,
    "ff_dim": 1024,
    "dropout": 0.1,
    "level_embedding": False,
    "audio_encoder": {
        "hidden_dim": 1024,
        "num_layers": 12,
        "kernel_size": 3,
        "dilations": [1, 2, 3],
        "activation": "leaky_relu",
        "dropout": 0.2,
        "padding": "valid",
        "input_proj": False,
        "pointwise_out": True,
    },
}


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def conv(n_in: int, n_out: int, kernel: int) -> int:
    return n_in * n_out * kernel + n_out


def layer_norm(dim: int) -> int:
    return 2 * dim


def trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_paper_vq_matches_upstream_layer_shapes():
    """Upstream's ≈ 86 k counts the unused `project_mean_shape` Linear 104 -> 64; we drop it."""
    encoder = conv(104, 64, 1) + 4 * conv(64, 64, 2)  # 6,720 + 4 · 8,256
    decoder = 4 * conv(64, 64, 2) + conv(64, 104, 1)  # 4 · 8,256 + 6,760
    unused_mean_shape = linear(104, 64)  # 6,720
    upstream = encoder + decoder + unused_mean_shape
    assert abs(upstream - 86_000) / 86_000 < 0.02  # 86,248: the "≈ 86 k" of upstream.md
    assert abs((upstream - unused_mean_shape) - 86_000) / 86_000 > 0.02  # 79,528 would not be

    vq = build_vq(PAPER_VQ)
    assert trainable(vq) == upstream - unused_mean_shape
    codebook_entries = sum(layer._codebook.embed.numel() for layer in vq.rvq.layers)
    assert codebook_entries == 4 * 1024 * 64  # ≈ 0.26 M buffer entries, not parameters


def test_paper_guide_matches_upstream_layer_shapes():
    """Whole model, with the upstream-shaped audio pre-net (input: 1024-d vq-wav2vec features).

    The only difference: upstream's null audio embedding has a fixed length of 1998 frames
    (1, 1998, 64); ours is (1, 1, 64), broadcast over time so any window length works.
    """
    dim, ff, vocab, layers = 64, 1024, 1024, 6
    audio_stack = 12 * conv(1024, 1024, 3) + conv(1024, 1024, 1)  # pre_audio + 1x1 conv
    attention = linear(dim, 3 * dim) + linear(dim, dim)  # nn.MultiheadAttention in/out proj
    film = linear(dim, 2 * dim)
    decoder_layer = (
        2 * attention  # self- and cross-attention
        + linear(dim, ff)
        + linear(ff, dim)  # feed-forward
        + 3 * layer_norm(dim)
        + 3 * film
    )
    upstream_null_audio = 1998 * dim
    upstream = (
        audio_stack
        + linear(1024, dim)  # audio projection
        + upstream_null_audio
        + dim  # null_cond_hidden
        + layer_norm(dim)
        + 2 * linear(dim, dim)  # non_attn_cond_projection
        + layer_norm(dim)  # memory norm
        + (vocab + 1) * dim  # token embedding incl. START
        + layers * decoder_layer
        + linear(dim, vocab)  # head
    )
    assert round(upstream / 1e6, 2) == 40.29 and round(audio_stack / 1e6, 1) == 38.8

    guide = build_guide(PAPER_GUIDE)
    ours = trainable(guide)
    assert abs(ours - upstream) / upstream < 0.02
    assert upstream - ours == upstream_null_audio - dim
    assert trainable(guide.audio_encoder) == audio_stack + linear(1024, dim)
    assert trainable(guide.decoder) == layers * decoder_layer
