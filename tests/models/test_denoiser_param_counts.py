"""Paper-size denoisers have upstream's parameter counts (docs/upstream.md §3(a), §3(b)).

Compared: every trainable parameter except two parts that differ by design.
- The audio front end. Upstream feeds frozen vq-wav2vec features (1024-d, not counted in its
  49.10 M / 13.41 M); ours feeds log-mel features through the learned `AudioEncoder`, which is
  excluded. With `audio_dim=1024` our condition projection has upstream's audio columns
  (Linear 1024 -> 512, Linear 1024 -> 256) and is compared.
- The face's lip columns (upstream's projection is Linear 2038 -> 512 with 1014 lip-vertex
  inputs from a lip regressor that comes only as a download): ours is audio only.
- The null (classifier-free) embeddings: upstream's are (1, 1998, D) audio and (1, 20, D) pose,
  ours (1, 1, D) so that windows can have any length.
The rotary frequencies (a parameter with requires_grad=False) are not counted.
"""

from __future__ import annotations

from audio2photoreal_pipelines.models.builders import build_face_denoiser, build_pose_denoiser
from tests.models import upstream_counts as upstream


def test_face_denoiser_matches_upstream_parameter_count() -> None:
    parts = upstream.face()
    assert round(sum(parts.values()) / 1e6, 2) == 49.10  # the figure in docs/upstream.md §3(a)
    model = build_face_denoiser(
        dict(
            dim=512,
            depth=8,
            heads=8,
            ff_dim=1024,
            cond_encoder_layers=2,
            audio_dim=1024,
            audio_encoder={"hidden_dim": 32},
        )
    )
    compared = upstream.without(parts, *upstream.NULLS, "lip_proj")
    assert abs(upstream.ours_denoiser_shared(model) - compared) / compared < 0.02


def test_pose_denoiser_matches_upstream_parameter_count() -> None:
    parts = upstream.pose()
    assert round(sum(parts.values()) / 1e6, 2) == 13.41  # the figure in docs/upstream.md §3(b)
    model = build_pose_denoiser(dict(dim=256, depth=6, heads=8, ff_dim=1024, audio_dim=1024))
    compared = upstream.without(parts, *upstream.NULLS)
    assert abs(upstream.ours_denoiser_shared(model) - compared) / compared < 0.02
