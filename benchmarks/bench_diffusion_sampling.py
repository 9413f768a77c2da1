"""Diffusion sampling of the face and body denoisers: condition cache, and DDIM vs DPM-Solver.

`models.diffusion.sampling.sample` with use_cache=True encodes the condition (audio encoder, face
condition encoder, cross-attention K/V) once per clip; use_cache=False re-encodes it at every
step, as upstream does. Both run classifier-free guidance (cond + uncond as one batch of 2).
Real-time factor = seconds of motion generated per second of compute.
Run: python benchmarks/bench_diffusion_sampling.py
"""

from __future__ import annotations

from typing import Any

import torch
from _timing import interleaved_medians, machine_info, model_params, print_json, ratio

from audio2photoreal_pipelines.data.windows import feature_index
from audio2photoreal_pipelines.models.builders import build_face_denoiser, build_pose_denoiser
from audio2photoreal_pipelines.models.diffusion.sampling import sample
from audio2photoreal_pipelines.models.diffusion.schedules import make_sampler
from audio2photoreal_pipelines.training.device import select_device
from audio2photoreal_pipelines.units import BODY_DIM, FACE_DIM, FPS, KEYFRAME_STRIDE

# (builder, YAML section, motion features, guidance scale as in upstream's demo).
MODELS = {
    "face": (build_face_denoiser, "face", FACE_DIM, 10.0),
    "body": (build_pose_denoiser, "pose", BODY_DIM, 2.0),
}


def condition(kind: str, params: dict[str, Any], frames: int, device: torch.device) -> dict:
    """Random audio features (and 1 fps guide poses for the body) for one clip of `frames`."""
    generator = torch.Generator().manual_seed(1)
    num_features = feature_index(frames)
    cond = {
        "audio_features": torch.randn(
            1, num_features, params["audio_feature_dim"], generator=generator
        ),
        "length_mask": torch.ones(1, frames, dtype=torch.bool),
    }
    if kind == "body":
        keyframes = frames // KEYFRAME_STRIDE
        cond["keyframes"] = torch.randn(1, keyframes, BODY_DIM, generator=generator)
        cond["keyframe_mask"] = torch.ones(1, keyframes, dtype=torch.bool)
    return {key: value.to(device) for key, value in cond.items()}


def bench_model(
    kind: str,
    params: dict[str, Any],
    *,
    frames: int,
    ddim_steps: int,
    solver_steps: int,
    repeats: int,
    device: torch.device,
) -> dict[str, Any]:
    """Seconds per clip: DDIM cached vs uncached, then DDIM vs DPM-Solver at solver_steps."""
    build, _, features, guidance = MODELS[kind]
    torch.manual_seed(0)
    denoiser = build(params).to(device).eval()
    cond = condition(kind, params, frames, device)
    samplers = {
        "ddim": make_sampler("ddim", num_inference_steps=ddim_steps),
        "ddim_short": make_sampler("ddim", num_inference_steps=solver_steps),
        "dpmsolver": make_sampler("dpmsolver", num_inference_steps=solver_steps),
    }
    outputs: dict[str, torch.Tensor] = {}

    def run(name: str, sampler: str, use_cache: bool) -> None:
        outputs[name] = sample(
            denoiser,
            samplers[sampler],
            cond,
            shape=(1, frames, features),
            guidance_scale=guidance,
            generator=torch.Generator(device).manual_seed(0),
            use_cache=use_cache,
        )

    seconds = interleaved_medians(
        {
            "cached": lambda: run("cached", "ddim", True),
            "uncached": lambda: run("uncached", "ddim", False),
            "ddim_short": lambda: run("ddim_short", "ddim_short", True),
            "dpmsolver": lambda: run("dpmsolver", "dpmsolver", True),
        },
        repeats=repeats,
        device=device,
    )
    motion_seconds = frames / FPS

    def timing(name: str) -> dict[str, float]:
        return {
            "s_per_clip": round(seconds[name], 4),
            "real_time_factor": round(motion_seconds / seconds[name], 2),
        }

    return {
        "parameters": sum(p.numel() for p in denoiser.parameters()),
        "frames": frames,
        "guidance_scale": guidance,
        "repeats": repeats,
        f"ddim{ddim_steps}_cached": timing("cached"),
        f"ddim{ddim_steps}_uncached": timing("uncached"),
        "cache_speedup": ratio(seconds["uncached"], seconds["cached"]),
        "cached_equals_uncached": torch.equal(outputs["cached"], outputs["uncached"]),
        f"ddim{solver_steps}": timing("ddim_short"),
        f"dpmsolver{solver_steps}": timing("dpmsolver"),
        "dpmsolver_over_ddim_time": ratio(seconds["dpmsolver"], seconds["ddim_short"]),
    }


def main(*, quick: bool = False) -> dict[str, Any]:
    """Results for the base-size face and body denoisers."""
    device = select_device()
    results: dict[str, Any] = {"machine": machine_info(device)}
    for kind, (_, section, _, _) in MODELS.items():
        params = model_params("base", f"parameters_train_{section}.yml", section)
        results[kind] = bench_model(
            kind,
            params,
            frames=60 if quick else 600,
            ddim_steps=5 if quick else 25,
            solver_steps=4 if quick else 10,
            repeats=1 if quick else 3,
            device=device,
        )
    return results


if __name__ == "__main__":
    print_json(main())
