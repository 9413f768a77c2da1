"""Real-time factor of sampling one 20 s clip, face and body, with 5 repetitions.

Face: diffusion over the audio. Body: the guide samples 1 fps poses, the VQ decodes them and the
body diffusion fills in 30 fps. Random weights (only speed is measured), at the sizes of
conf/<size>, with two samplers: the one conf/<size>/parameters_sample.yml sets (upstream's DDIM
500 for paper) and the project's default, DPM-Solver++ 10. Real-time factor = seconds of motion
per second of compute, for all 5 repetitions together.
Run: python benchmarks/bench_sampling_rtf.py [--size paper|base]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from _timing import CONF_DIR, machine_info, model_params, print_json, sync_device

from audio2photoreal_pipelines.models.builders import (
    build_face_denoiser,
    build_guide,
    build_pose_denoiser,
    build_vq,
)
from audio2photoreal_pipelines.models.generate import SamplingConfig, generate_body, generate_face
from audio2photoreal_pipelines.parameters import load_parameters
from audio2photoreal_pipelines.training.device import select_device
from audio2photoreal_pipelines.units import FPS

CLIP_SECONDS = 20
FEATURE_RATE = 100
REPETITIONS = 5


def sample_settings(size: str) -> dict[str, Any]:
    """The sampling block as `kedro run --env <size>` sees it."""
    return load_parameters(CONF_DIR, size)["sample"]


def build_models(size: str, device: torch.device) -> tuple[dict[str, torch.nn.Module], int]:
    """Face, pose, VQ and guide at conf/<size>'s sizes (random weights, eval); the feature width."""
    torch.manual_seed(0)

    def params(file: str, section: str) -> dict[str, Any]:
        return model_params(size, file, section) or model_params("base", file, section)

    vq = build_vq(params("parameters_train_vq.yml", "vq"))
    face = params("parameters_train_face.yml", "face")
    models = {
        "face": build_face_denoiser(face),
        "pose": build_pose_denoiser(params("parameters_train_pose.yml", "pose")),
        "vq": vq,
        "guide": build_guide(params("parameters_train_guide.yml", "guide"), vq=vq),
    }
    models = {name: model.to(device).eval() for name, model in models.items()}
    return models, face["audio_feature_dim"]


def time_clip(
    models: dict[str, torch.nn.Module],
    feature_dim: int,
    config: SamplingConfig,
    device: torch.device,
) -> dict[str, float]:
    """Seconds for the face and for the body of one clip, all repetitions."""
    frames = CLIP_SECONDS * FPS
    generator = torch.Generator(device).manual_seed(0)
    audio = torch.randn(1, CLIP_SECONDS * FEATURE_RATE + 1, feature_dim, device=device)
    length_mask = torch.ones(1, frames, dtype=torch.bool, device=device)
    seconds = {}
    with torch.inference_mode():
        for part in ("face", "body"):
            sync_device(device)
            start = time.perf_counter()
            if part == "face":
                generate_face(models["face"], audio, length_mask, config, generator)
            else:
                generate_body(
                    models["vq"],
                    models["guide"],
                    models["pose"],
                    audio,
                    length_mask,
                    config,
                    generator,
                )
            sync_device(device)
            seconds[part] = time.perf_counter() - start
    return seconds


def main(*, size: str = "paper", quick: bool = False) -> dict[str, Any]:
    """Seconds and real-time factor per sampler for one clip at conf/<size>'s model sizes."""
    device = select_device()
    models, feature_dim = build_models(size, device)
    configured = sample_settings(size)
    samplers = {
        f"{configured['sampler']}{configured['steps']}": configured,
        "dpmsolver10": {**configured, "sampler": "dpmsolver", "steps": 10},
    }
    if quick:
        samplers = {"ddim5": {**configured, "sampler": "ddim", "steps": 5}}
    fields = SamplingConfig.model_fields
    results: dict[str, Any] = {
        "machine": machine_info(device),
        "size": size,
        "clip_s": CLIP_SECONDS,
        "repetitions": REPETITIONS,
    }
    for name, settings in samplers.items():
        config = SamplingConfig(
            **{
                **{k: v for k, v in settings.items() if k in fields},
                "num_repetitions": REPETITIONS,
            }
        )
        time_clip(models, feature_dim, config, device)  # warm-up: allocator, kernel choice
        seconds = time_clip(models, feature_dim, config, device)
        total = seconds["face"] + seconds["body"]
        results[name] = {
            "face_s": round(seconds["face"], 3),
            "body_s": round(seconds["body"], 3),
            "real_time_factor": round(CLIP_SECONDS / total, 2),
        }
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="paper", choices=["paper", "base"])
    print_json(main(size=parser.parse_args().size))
