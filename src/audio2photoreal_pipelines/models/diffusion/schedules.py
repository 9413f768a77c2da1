"""Noise schedules and samplers: diffusers schedulers configured as upstream's."""

from __future__ import annotations

from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from torch import Tensor

Scheduler = DDPMScheduler | DDIMScheduler | DPMSolverMultistepScheduler

NUM_TRAIN_TIMESTEPS = 1000
# The cosine schedule and x0 prediction of docs/upstream.md §4.
_SCHEDULE = dict(beta_schedule="squaredcos_cap_v2", prediction_type="sample")


def make_training_scheduler(num_steps: int = NUM_TRAIN_TIMESTEPS) -> DDPMScheduler:
    """DDPM scheduler with upstream's cosine schedule and x0 prediction (fixed-small variance)."""
    return DDPMScheduler(
        num_train_timesteps=num_steps, variance_type="fixed_small", clip_sample=False, **_SCHEDULE
    )


def upstream_ddim_stride(num_inference_steps: int, num_train_timesteps: int) -> int:
    """Stride s of upstream's "ddimN" respacing: the s with len(range(0, T, s)) == N."""
    for stride in range(1, num_train_timesteps + 1):
        if len(range(0, num_train_timesteps, stride)) == num_inference_steps:
            return stride
    raise ValueError(
        f"ddim{num_inference_steps}: no integer stride s gives {num_inference_steps} steps out of "
        f"{num_train_timesteps} (upstream's space_timesteps rejects it too)"
    )


# Sampler name -> the diffusers scheduler class and its settings beyond the schedule; each is
# built with `from_config`, so any scheduler of diffusers can be added here by name.
SAMPLERS: dict[str, tuple[type[DDIMScheduler | DPMSolverMultistepScheduler], dict]] = {
    # Upstream's ddimN respacing: timesteps 0, s, 2s, ... (checked in make_sampler).
    "ddim": (
        DDIMScheduler,
        dict(
            timestep_spacing="leading",
            steps_offset=0,
            set_alpha_to_one=True,
            clip_sample=False,  # upstream samples with clip_denoised=False
        ),
    ),
    "dpmsolver": (DPMSolverMultistepScheduler, dict(algorithm_type="dpmsolver++")),
}


def make_sampler(
    name: str, *, num_inference_steps: int, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS
) -> DDIMScheduler | DPMSolverMultistepScheduler:
    """Inference scheduler `name` of SAMPLERS, set to `num_inference_steps` steps."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {sorted(SAMPLERS)}")
    cls, settings = SAMPLERS[name]
    scheduler = cls.from_config(
        {"num_train_timesteps": num_train_timesteps, **_SCHEDULE, **settings}
    )
    scheduler.set_timesteps(num_inference_steps)
    if name == "ddim":
        stride = upstream_ddim_stride(num_inference_steps, num_train_timesteps)
        expected = list(range(0, num_train_timesteps, stride))[::-1]
        if scheduler.timesteps.tolist() != expected:
            # diffusers steps by T // N; upstream by s. They agree exactly when s divides T.
            raise ValueError(
                f"ddim{num_inference_steps}: upstream stride {stride} does not divide "
                f"{num_train_timesteps}, so diffusers' DDIM cannot reproduce its timesteps; use N "
                f"with T % (T // N) == 0 (e.g. 25, 50, 100, 250, 500, 1000)"
            )
    return scheduler


def q_sample(scheduler: Scheduler, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """Forward process sqrt(abar_t) x0 + sqrt(1 - abar_t) noise; x0, noise (B, T, F), t (B,)."""
    return scheduler.add_noise(x0, noise, t)
