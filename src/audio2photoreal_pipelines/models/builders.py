"""Build models from plain parameter dicts (the YAML), rejecting unknown or missing keys.

Every key maps to a constructor keyword, so no setting can be parsed and then ignored (as
several of upstream's are, docs/upstream.md §10.3).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from audio2photoreal_pipelines.models.audio import AudioEncoder
from audio2photoreal_pipelines.models.guide import GuideTransformer
from audio2photoreal_pipelines.models.vqvae import VQVAE


def check_params(
    name: str, params: Mapping[str, Any], target: Callable, *, exclude: Iterable[str] = ()
) -> None:
    """Raise ValueError naming `name` on keys target does not take or required ones missing."""
    excluded = set(exclude)
    signature = inspect.signature(target)
    accepted = {
        key
        for key, p in signature.parameters.items()
        if key not in excluded and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }
    required = {
        key for key in accepted if signature.parameters[key].default is inspect.Parameter.empty
    }
    unknown = sorted(set(params) - accepted)
    missing = sorted(required - set(params))
    if unknown or missing:
        raise ValueError(
            f"{name}: unknown parameters {unknown}, missing parameters {missing}; "
            f"accepted: {sorted(accepted)}"
        )


def build_vq(params: Mapping[str, Any]) -> VQVAE:
    """VQVAE from params: input_dim, width, num_quantizers, codebook_size, dilations, decay,
    kmeans_init, kmeans_iters, threshold_ema_dead_code (all optional)."""
    check_params("vq parameters", params, VQVAE)
    kwargs = dict(params)
    if "dilations" in kwargs:
        kwargs["dilations"] = tuple(kwargs["dilations"])
    return VQVAE(**kwargs)


def build_guide(params: Mapping[str, Any], *, vq: VQVAE | None = None) -> GuideTransformer:
    """GuideTransformer from params (audio_dim required; `audio_encoder` is a nested dict of
    AudioEncoder options). With a trained `vq`, codebook_size and num_quantizers default to its
    own and must agree with it when given."""
    check_params("guide parameters", params, GuideTransformer)
    kwargs = dict(params)
    if vq is not None:
        for key, value in (
            ("codebook_size", vq.codebook_size),
            ("num_quantizers", vq.num_quantizers),
        ):
            if kwargs.setdefault(key, value) != value:
                raise ValueError(f"guide parameters: {key}={kwargs[key]} but the VQ has {value}")
    audio = dict(kwargs.get("audio_encoder") or {})
    check_params(
        "guide parameters: audio_encoder", audio, AudioEncoder, exclude=("in_dim", "out_dim")
    )
    if "dilations" in audio:
        audio["dilations"] = tuple(audio["dilations"])
    kwargs["audio_encoder"] = audio
    return GuideTransformer(**kwargs)
