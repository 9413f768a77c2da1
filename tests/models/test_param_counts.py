"""Paper-size VQ-VAE and guide against upstream's parameter counts (docs/upstream.md §3(c), §3(d)).

Upstream's counts are recomputed in `upstream_counts` from its layer shapes, so the arithmetic is
visible.
"""

from __future__ import annotations

from audio2photoreal_pipelines.models.builders import build_guide, build_vq
from tests.models import upstream_counts as upstream
from tests.models.upstream_counts import trainable

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


def test_paper_vq_matches_upstream_layer_shapes():
    """Upstream's ≈ 86 k counts the unused `project_mean_shape` Linear 104 -> 64; we drop it."""
    parts = upstream.vq()
    total = sum(parts.values())
    assert abs(total - 86_000) / 86_000 < 0.02  # 86,248: the "≈ 86 k" of docs/upstream.md
    used = total - parts["project_mean_shape"]
    assert abs(used - 86_000) / 86_000 > 0.02  # 79,528 would not be

    vq = build_vq(PAPER_VQ)
    assert trainable(vq) == used
    codebook_entries = sum(layer._codebook.embed.numel() for layer in vq.rvq.layers)
    assert codebook_entries == 4 * 1024 * 64  # ≈ 0.26 M buffer entries, not parameters


def test_paper_guide_matches_upstream_layer_shapes():
    """Whole model, with the upstream-shaped audio pre-net (input: 1024-d vq-wav2vec features).

    The only difference: upstream's null audio embedding has a fixed length of 1998 frames
    (1, 1998, 64); ours is (1, 1, 64), broadcast over time so any window length works.
    """
    parts = upstream.guide()
    total = sum(parts.values())
    assert round(total / 1e6, 2) == 40.29 and round(parts["audio_stack"] / 1e6, 1) == 38.8

    guide = build_guide(PAPER_GUIDE)
    ours = trainable(guide)
    assert abs(ours - total) / total < 0.02
    assert total - ours == parts["null_cond_embed"] - 64
    assert trainable(guide.audio_encoder) == parts["audio_stack"] + parts["audio_proj"]
    assert trainable(guide.decoder) == parts["decoder"]
