"""Training throughput of the paper-size face and body denoisers as a fraction of the matmul peak.

Model FLOP utilisation (MFU) = FLOPs of one training step / its seconds / the peak. The FLOPs
come from `torch.utils.flop_counter.FlopCounterMode` over one forward and backward pass of the
diffusion loss (matmuls, convolutions and attention's two products; element-wise work is not
counted, as is usual for MFU). The peak is the best rate of square matmuls measured in the same
run, before and after the models (fp32 on the CPU; bf16 on CUDA, where the step runs under bf16
autocast with fused AdamW, as training does), so the ratio does not depend on the machine's
nominal figures.
A step is a whole optimiser step: zero_grad, loss, backward, AdamW.
Run: python benchmarks/bench_training_mfu.py [--batch N]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from _timing import interleaved_medians, machine_info, model_params, print_json, sync_device
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from audio2photoreal_pipelines.models.builders import build_face_denoiser, build_pose_denoiser
from audio2photoreal_pipelines.models.diffusion.losses import training_step_loss
from audio2photoreal_pipelines.models.diffusion.schedules import make_training_scheduler
from audio2photoreal_pipelines.training.device import autocast_context, select_device, set_tf32
from audio2photoreal_pipelines.units import KEYFRAME_STRIDE

FEATURE_RATE = 100 / 30  # audio feature frames per motion frame
# (builder, YAML section, motion features, lambda_vel as in conf/paper).
MODELS = {
    "face": (build_face_denoiser, "face", 256, 0.0),
    "body": (build_pose_denoiser, "pose", 104, 2.0),
}


def attention_counting_flop_counter() -> FlopCounterMode:
    """A `FlopCounterMode` that also counts SDPA's fused CPU kernel, as model FLOPs.

    torch's counter has formulas for the CUDA attention kernels only, so on the CPU it counted a
    denoiser's attention products as zero: 54 of a paper-size body step's 180 GFLOP. Forward is
    torch's count of the two products (query · key, weights · value); backward is twice that, on
    every device. torch's own backward count adds the kernel's recomputation of the weights,
    which MFU leaves out, as it leaves out any recomputation. The counter passes the tensors'
    shapes; every one of these kernels takes (query, key, value) or (grad_out, query, key, value)
    first.
    """

    def forward(query, key, value, *_, out_shape=None, **__) -> int:
        return sdpa_flop_count(query, key, value)

    def backward(grad_out, query, key, value, *_, out_shape=None, **__) -> int:
        return 2 * sdpa_flop_count(query, key, value)

    aten = torch.ops.aten
    return FlopCounterMode(
        display=False,
        custom_mapping={
            aten._scaled_dot_product_flash_attention_for_cpu: forward,
            aten._scaled_dot_product_flash_attention_for_cpu_backward: backward,
            aten._scaled_dot_product_flash_attention_backward: backward,
            aten._scaled_dot_product_efficient_attention_backward: backward,
            aten._scaled_dot_product_cudnn_attention_backward: backward,
        },
    )


def matmul_peak_flops(sizes: tuple[int, ...], *, repeats: int, device: torch.device) -> float:
    """Best FLOP/s of (n x n) @ (n x n) products over `sizes` and `repeats` (after a warm-up).

    fp32 on the CPU, bf16 on CUDA: the precision training's matmuls run in on each.
    """
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    best = 0.0
    for size in sizes:
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        a @ b
        for _ in range(repeats):
            sync_device(device)
            start = time.perf_counter()
            a @ b
            sync_device(device)
            best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best


def training_batch(
    kind: str, params: dict[str, Any], *, batch: int, frames: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """A random training batch shaped as the windows loader gives it."""
    _, _, features, _ = MODELS[kind]
    generator = torch.Generator().manual_seed(0)
    out = {
        "motion": torch.randn(batch, frames, features, generator=generator),
        "audio_features": torch.randn(
            batch, round(frames * FEATURE_RATE), params["audio_feature_dim"], generator=generator
        ),
        "length_mask": torch.ones(batch, frames, dtype=torch.bool),
    }
    if kind == "body":
        keyframes = -(-frames // KEYFRAME_STRIDE)
        out["keyframes"] = torch.randn(batch, keyframes, features, generator=generator)
        out["keyframe_mask"] = torch.ones(batch, keyframes, dtype=torch.bool)
    return {key: value.to(device) for key, value in out.items()}


def bench_model(
    kind: str,
    params: dict[str, Any],
    *,
    batch: int,
    frames: int,
    repeats: int,
    device: torch.device,
) -> dict[str, Any]:
    """Seconds and FLOPs of one optimiser step."""
    build, _, _, lambda_vel = MODELS[kind]
    torch.manual_seed(0)
    model = build(params).to(device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda" or None)
    scheduler = make_training_scheduler()
    data = training_batch(kind, params, batch=batch, frames=frames, device=device)

    def forward_backward() -> None:
        with autocast_context(device):
            loss, _ = training_step_loss(
                model,
                scheduler,
                data,
                lambda_vel=lambda_vel,
                generator=torch.Generator(device).manual_seed(0),
            )
        loss.backward()

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        forward_backward()
        optimiser.step()

    counter = attention_counting_flop_counter()
    with counter:
        forward_backward()
    flops = counter.get_total_flops()
    seconds = interleaved_medians({"step": step}, repeats=repeats, device=device)["step"]
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch": batch,
        "frames": frames,
        "repeats": repeats,
        "s_per_step": round(seconds, 3),
        "gflop_per_step": round(flops / 1e9, 1),
        "achieved_gflop_s": round(flops / seconds / 1e9, 1),
    }


def main(*, quick: bool = False, batch: int | None = None) -> dict[str, Any]:
    """Results for the paper-size denoisers (the base size when quick or conf/paper is absent).

    ``batch`` defaults to upstream's 4 windows of 600 frames.
    """
    device = select_device()
    set_tf32(device, True)
    sizes = (512,) if quick else (4096, 8192) if device.type == "cuda" else (1024, 2048, 4096)
    repeats = 2 if quick else 5
    peak_before = matmul_peak_flops(sizes, repeats=repeats, device=device)
    results: dict[str, Any] = {"machine": machine_info(device)}
    for kind, (_, section, _, _) in MODELS.items():
        file = f"parameters_train_{section}.yml"
        env = "base" if quick else "paper"
        params = model_params(env, file, section) or model_params("base", file, section)
        results[kind] = bench_model(
            kind,
            params,
            batch=2 if quick else batch or 4,
            frames=60 if quick else 600,
            repeats=1 if quick else 3,
            device=device,
        )
        results[kind]["size"] = env
    peak = max(peak_before, matmul_peak_flops(sizes, repeats=repeats, device=device))
    results["matmul_peak"] = {"sizes": list(sizes), "gflop_s": round(peak / 1e9, 1)}
    for kind in MODELS:
        results[kind]["mfu"] = round(results[kind]["achieved_gflop_s"] * 1e9 / peak, 3)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=None, help="windows per step (default 4)")
    print_json(main(batch=parser.parse_args().batch))
