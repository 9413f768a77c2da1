"""Upstream's trainable parameter counts, recomputed from its layer shapes (docs/upstream.md §3).

Each model function returns the count per named part, so a test can set aside the parts that
differ by design (null embeddings, the audio front end, lip features) and compare the rest.
"""

from __future__ import annotations

from torch import nn

AUDIO_FRAMES = 1998  # vq-wav2vec frames of a 600-frame window: upstream's null-embedding length
KEYFRAMES = 20  # 1 fps keyframes of a 600-frame window
AUDIO_DIM = 1024  # [self 512 | partner 512] vq-wav2vec features
LIP_DIM = 338 * 3  # lip-regressor vertices, face only
# Upstream's are (1, 1998, D) audio and (1, 20, D) pose; ours (1, 1, D), so windows can have any
# length.
NULLS = ("null_cond_embed", "null_pose_embed")


def trainable(module: nn.Module) -> int:
    """Parameters with requires_grad (rotary frequencies and buffers are not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def without(parts: dict[str, int], *names: str) -> int:
    """Total of ``parts`` less the named ones."""
    return sum(count for name, count in parts.items() if name not in names)


def ours_denoiser_shared(model: nn.Module) -> int:
    """Our denoiser's trainable count less its learned audio encoder and null embeddings."""
    nulls = sum(getattr(model, name).numel() for name in NULLS if hasattr(model, name))
    return trainable(model) - trainable(model.audio_encoder) - nulls


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def conv(n_in: int, n_out: int, kernel: int) -> int:
    return n_in * n_out * kernel + n_out


def layer_norm(dim: int) -> int:
    return 2 * dim


def attention(dim: int) -> int:
    return linear(dim, 3 * dim) + linear(dim, dim)  # nn.MultiheadAttention in/out projections


def feed_forward(dim: int, ff: int) -> int:
    return linear(dim, ff) + linear(ff, dim)


def film(dim: int) -> int:
    return linear(dim, 2 * dim)  # Mish -> Linear(dim, 2·dim)


def decoder_layer(dim: int, ff: int, *, cross_attentions: int) -> int:
    """FiLMTransformerDecoderLayer: self-attention, the cross-attentions and FF, each with FiLM."""
    blocks = 1 + cross_attentions
    return (
        blocks * attention(dim)
        + feed_forward(dim, ff)
        + (blocks + 1) * (layer_norm(dim) + film(dim))
    )


def vq() -> dict[str, int]:
    """§3(c): width 64, 4 dilated causal convs each way; codebooks are buffers, not counted."""
    return {
        "encoder": conv(104, 64, 1) + 4 * conv(64, 64, 2),
        "decoder": 4 * conv(64, 64, 2) + conv(64, 104, 1),
        "project_mean_shape": linear(104, 64),  # unused by upstream; we drop it
    }


def guide(*, dim: int = 64, layers: int = 6, ff: int = 1024, vocab: int = 1024) -> dict[str, int]:
    """§3(d): 2 blocks of 6 Conv1d 1024 -> 1024 (kernel 3) + 1x1 conv, then dim 64, 6 layers."""
    return {
        "audio_stack": 12 * conv(AUDIO_DIM, AUDIO_DIM, 3) + conv(AUDIO_DIM, AUDIO_DIM, 1),
        "audio_proj": linear(AUDIO_DIM, dim),
        "null_cond_embed": AUDIO_FRAMES * dim,
        "null_cond_hidden": dim,
        "cond_projection": layer_norm(dim) + 2 * linear(dim, dim),
        "memory_norm": layer_norm(dim),
        "token_embedding": (vocab + 1) * dim,  # incl. START
        "decoder": layers * decoder_layer(dim, ff, cross_attentions=1),
        "head": linear(dim, vocab),
    }


def _denoiser_common(dim: int, nfeats: int) -> dict[str, int]:
    """Input, timestep, pooled-condition and output parts shared by both upstream denoisers."""
    return {
        "input_process": linear(nfeats, dim),
        "time": linear(dim, 4 * dim) + linear(4 * dim, dim) + linear(4 * dim, 2 * dim),
        "audio_proj": linear(AUDIO_DIM, dim),  # the audio columns of the condition projection
        "null_cond_embed": AUDIO_FRAMES * dim,
        "null_cond_hidden": dim,
        "cond_projection": layer_norm(dim) + 2 * linear(dim, dim),
        "norm_cond": layer_norm(dim),
        "final": linear(dim, nfeats),
    }


def face(*, dim: int = 512, layers: int = 8, ff: int = 1024, encoder_layers: int = 2) -> dict:
    """§3(a): audio + lip condition (Linear 2038 -> 512), 2 encoder layers, 8 decoder layers."""
    encoder_layer = attention(dim) + feed_forward(dim, ff) + 2 * layer_norm(dim)
    return {
        **_denoiser_common(dim, 256),
        "lip_proj": LIP_DIM * dim,  # the lip columns of the condition projection
        "cond_encoder": encoder_layers * encoder_layer,
        "decoder": layers * decoder_layer(dim, ff, cross_attentions=1),
    }


def pose(*, dim: int = 256, layers: int = 6, ff: int = 1024, nfeats: int = 104) -> dict:
    """§3(b): audio and guide-pose cross-attention, 6 layers, causal conv head."""
    convs = [(nfeats, 256), (256, nfeats)] + [(nfeats, nfeats)] * 4
    return {
        **_denoiser_common(dim, nfeats),
        "keyframes": linear(nfeats, dim) + layer_norm(dim),  # Linear + frame_norm_cond
        "null_pose_embed": KEYFRAMES * dim,
        "decoder": layers * decoder_layer(dim, ff, cross_attentions=2),
        "conv_head": sum(conv(c_in, c_out, 3) for c_in, c_out in convs) + conv(nfeats, nfeats, 1),
    }
