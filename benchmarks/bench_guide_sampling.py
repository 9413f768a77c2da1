"""Guide transformer sampling: KV-cached vs uncached `GuideTransformer.generate`.

Uncached decoding re-runs the whole token prefix and re-projects the audio memory at every one
of the K·Q steps. Upstream also re-runs its audio encoder at every step, which `generate` never
does; `upstream_like_estimate_s` adds that cost (decode steps x `audio_encode_s`) to the uncached
time; upstream runs each repetition as its own call (so it encodes the clips once per sample
per step), which makes this a lower bound.
The paper size runs a smaller workload (one clip) to keep CPU runs to minutes.
Run: python benchmarks/bench_guide_sampling.py
"""

from __future__ import annotations

from typing import Any

import torch
from _timing import interleaved_medians, machine_info, model_params, print_json, ratio

from audio2photoreal_pipelines.models.builders import build_guide
from audio2photoreal_pipelines.training.device import select_device

AUDIO_FEATURES_PER_KEYFRAME = 100  # 1 s of 100 Hz features per 1 fps keyframe
# Workload per model size: clips x samples_per_clip sequences of KEYFRAMES keyframes each.
KEYFRAMES = 20
SIZES = {
    "base": {"clips": 4, "samples_per_clip": 5, "repeats": 3},
    "paper": {"clips": 1, "samples_per_clip": 5, "repeats": 3},
}
QUICK = {"keyframes": 2, "clips": 1, "samples_per_clip": 2, "repeats": 1}


def bench_size(
    params: dict[str, Any],
    *,
    keyframes: int,
    clips: int,
    samples_per_clip: int,
    repeats: int,
    device: torch.device,
) -> dict[str, Any]:
    """Seconds per `generate` call with and without the cache, for one model size."""
    torch.manual_seed(0)
    guide = build_guide(params).to(device).eval()
    features = torch.randn(
        clips, keyframes * AUDIO_FEATURES_PER_KEYFRAME, params["audio_dim"], device=device
    )
    tokens: dict[str, torch.Tensor] = {}

    def generate(use_cache: bool) -> None:
        tokens[str(use_cache)] = guide.generate(
            features,
            keyframes,
            num_samples=samples_per_clip,
            use_cache=use_cache,
            generator=torch.Generator(device).manual_seed(0),
        )

    def encode() -> None:
        with torch.no_grad():
            guide.encode_audio(features)

    seconds = interleaved_medians(
        {
            "cached": lambda: generate(True),
            "uncached": lambda: generate(False),
            "encode": encode,
        },
        repeats=repeats,
        device=device,
    )
    steps = keyframes * guide.num_quantizers
    upstream_like = seconds["uncached"] + steps * seconds["encode"]
    return {
        "parameters": sum(p.numel() for p in guide.parameters()),
        "keyframes": keyframes,
        "clips": clips,
        "samples_per_clip": samples_per_clip,
        "decode_steps": steps,
        "repeats": repeats,
        "cached_s_per_call": round(seconds["cached"], 4),
        "uncached_s_per_call": round(seconds["uncached"], 4),
        "cache_speedup": ratio(seconds["uncached"], seconds["cached"]),
        "audio_encode_s": round(seconds["encode"], 5),
        "upstream_like_estimate_s": round(upstream_like, 4),
        "upstream_like_over_cached": ratio(upstream_like, seconds["cached"]),
        "tokens_identical": torch.equal(tokens["True"], tokens["False"]),
    }


def main(*, quick: bool = False) -> dict[str, Any]:
    """Results for every model size whose conf/<size>/parameters_train_guide.yml exists."""
    device = select_device()
    results: dict[str, Any] = {"machine": machine_info(device)}
    for size, workload in SIZES.items():
        params = model_params(size, "parameters_train_guide.yml", "guide")
        if params is None:
            results[size] = {"skipped": f"conf/{size}/parameters_train_guide.yml not found"}
            continue
        if quick and size != "base":
            results[size] = {"skipped": "quick run: base size only"}
            continue
        options = QUICK if quick else {"keyframes": KEYFRAMES, **workload}
        results[size] = bench_size(params, **options, device=device)
    return results


if __name__ == "__main__":
    print_json(main())
