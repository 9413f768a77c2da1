"""The body pipeline stage by stage, on the held-out test clips of a finished run.

Run after ``make run`` (or ``kedro run``): python benchmarks/bench_body_stages.py

Quality figures, not pass/fail and not timings. It loads what the run left through the project's
catalog (the registered VQ, guide and pose models, the test clips in ``sample_inputs``, the train
chunks in ``baseline_pool`` and the generator's stroke frames in ``evaluation_truth``) and scores,
in normalised units (the training mean pose is 0) at the valid 1 fps keyframes:

- ``vq``: keyframe error of encode → decode, and each residual level's code usage and perplexity.
- ``guide``: keyframe error of the sampled guide poses; of their mean over repetitions; with the
  audio of another clip; against the mean pose and random train keyframes.
- ``pose_true_keyframes``: the body denoiser guided by the TRUE keyframes: its keyframe error
  over the mean pose's, and the body metrics (raw units) next to GT's.
- ``pose_without_keyframes``: the body guided by the mean pose at every keyframe, so that any
  stroke response comes from the audio alone.
- ``pose_x0_error``: the body denoiser's x0 MSE on the test clips' first 150 frames (true
  keyframes, normalised units) at several noise levels, with and without its fitted Wiener gain:
  a denoiser that uses x_t errs less at low t.
- ``sampled_body``: where the run's own samples (Ours) and Random differ from GT in velocity:
  their velocity variance over GT's along GT's principal velocity axes, and FD_k on the frames at
  the body's sampling-window seams (the inpainted overlaps and the frames just after them) apart
  from the frames in between.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from _project import load_run
from _timing import PROJECT_ROOT, print_json

from audio2photoreal_pipelines.data.normalise import denormalise, motion_mean_std, normalise
from audio2photoreal_pipelines.data.windows import feature_index
from audio2photoreal_pipelines.evaluation import metrics
from audio2photoreal_pipelines.models.diffusion.schedules import make_training_scheduler, q_sample
from audio2photoreal_pipelines.models.diffusion.windowing import window_starts
from audio2photoreal_pipelines.models.generate import SamplingConfig, generate_body_from_keyframes
from audio2photoreal_pipelines.models.vqvae import code_statistics
from audio2photoreal_pipelines.units import KEYFRAME_STRIDE


def body_metrics(pred: np.ndarray, gt: np.ndarray, strokes: list[np.ndarray] | None) -> dict:
    """Body metrics of raw pred (R, S, T, F) against gt (S, T, F), with two diagnostics of FD."""
    stroke = None if strokes is None else round(metrics.stroke_response(pred, strokes), 3)
    mean_gap = pred.reshape(-1, pred.shape[-1]).mean(0) - gt.reshape(-1, gt.shape[-1]).mean(0)
    return {
        "FD_g": round(metrics.fd_g(pred, gt), 3),
        "FD_g_mean_term": round(float(mean_gap @ mean_gap), 3),  # the rest is the covariance's
        "speed_over_gt": round(metrics.mean_velocity(pred) / metrics.mean_velocity(gt), 3),
        "FD_k": round(metrics.fd_k(pred, gt), 4),
        "Div_k": round(metrics.div_k(pred), 4),
        "stroke_resp": stroke,
    }


def velocity_variance_by_axis(pred: np.ndarray, gt: np.ndarray, num_axes: int = 5) -> list:
    """Velocity variance of pred (..., T, F) over GT's (S, T, F) along GT's top velocity axes."""
    gt_velocity = np.diff(gt, axis=-2).reshape(-1, gt.shape[-1])
    axes = np.linalg.eigh(np.cov(gt_velocity, rowvar=False))[1][:, ::-1][:, :num_axes]
    pred_velocity = np.diff(pred, axis=-2).reshape(-1, pred.shape[-1])
    ratio = np.var(pred_velocity @ axes, axis=0) / np.var(gt_velocity @ axes, axis=0)
    return [round(float(r), 3) for r in ratio]


def seam_frames(num_steps: int, config: SamplingConfig, after: int = 15) -> np.ndarray:
    """(num_steps,) True on the frame-to-frame steps at the body's window seams: each later
    window's inpainted overlap and the `after` frames that follow it, and a clip's first frames."""
    window = config.body_window or config.window
    seams = np.zeros(num_steps, dtype=bool)
    seams[:after] = True
    for start in window_starts(num_steps + 1, window, config.body_overlap)[1:]:
        seams[start : start + config.body_overlap + after] = True
    return seams


def fd_k_at_seams(pred: np.ndarray, gt: np.ndarray, seams: np.ndarray) -> dict[str, float]:
    """FD_k of pred (..., T, F) against gt (S, T, F) on the seam steps and on the others."""

    def velocity(x: np.ndarray, where: np.ndarray) -> np.ndarray:
        return np.diff(x, axis=-2)[..., where, :].reshape(-1, x.shape[-1])

    return {
        name: round(metrics.frechet_distance(velocity(gt, where), velocity(pred, where)), 5)
        for name, where in (("seams", seams), ("between_seams", ~seams))
    }


def x0_error_by_noise_level(
    pose: torch.nn.Module, inputs: dict[str, np.ndarray], frames: int = 150
) -> dict[str, dict[str, float]]:
    """x0 MSE at t in (0, 20, 100, 400, 700) on the first `frames` of each test clip."""
    gt = torch.from_numpy(inputs["gt_body"][:, :frames]).float()
    length_mask = torch.from_numpy(inputs["length_mask"][:, :frames])
    keyframe_mask = length_mask[:, ::KEYFRAME_STRIDE]
    cond = {
        "audio_features": torch.from_numpy(inputs["audio_features"][:, : feature_index(frames)]),
        "length_mask": length_mask,
        "keyframes": gt[:, ::KEYFRAME_STRIDE] * keyframe_mask[..., None],
        "keyframe_mask": keyframe_mask,
    }
    scheduler = make_training_scheduler()
    generator = torch.Generator().manual_seed(0)
    wiener, out = pose.wiener, {}
    with torch.inference_mode():
        ctx = pose.encode_condition(cond, torch.zeros(gt.shape[0], dtype=torch.bool))
        for step in (0, 20, 100, 400, 700):
            t = torch.full((gt.shape[0],), step)
            x_t = q_sample(scheduler, gt, torch.randn(gt.shape, generator=generator), t)
            errors = {}
            for name, gain in (("with_gain", wiener), ("network_alone", None)):
                pose.wiener = gain
                errors[name] = round(float(((pose.denoise(x_t, t, ctx) - gt) ** 2).mean()), 4)
            out[f"t{step}"] = errors
    pose.wiener = wiener
    return out


def main(project: Path = PROJECT_ROOT) -> dict[str, Any]:
    run = load_run(
        project,
        [
            "sample_inputs",
            "data_stats",
            "baseline_pool",
            "evaluation_truth",
            "samples",
            "baseline_samples",
            "params:sample",
        ],
        ["vq", "guide", "pose"],
    )
    run["sample"] = run.pop("params:sample")
    inputs, stats = run["sample_inputs"], run["data_stats"]
    fields = SamplingConfig.model_fields
    config = SamplingConfig(**{k: v for k, v in run["sample"].as_dict().items() if k in fields})
    reps = config.num_repetitions
    mean, std = motion_mean_std(stats, "body")
    gt = inputs["gt_body"]  # (S, T, 104) normalised
    length_mask = inputs["length_mask"]
    keyframes, mask = gt[:, ::KEYFRAME_STRIDE], length_mask[:, ::KEYFRAME_STRIDE]
    truth = run["evaluation_truth"]
    strokes = None if truth.get("strokes") is None else [np.asarray(s) for s in truth["strokes"]]
    generator = torch.Generator().manual_seed(run["sample"].seed)

    rng = np.random.default_rng(0)
    pool = normalise(run["baseline_pool"]["body"], mean, std)[:, : gt.shape[1]]
    random_keyframes = pool[rng.choice(len(pool), (reps, gt.shape[0]))][:, :, ::KEYFRAME_STRIDE]
    baselines = {
        name: round(metrics.keyframe_error(poses, keyframes, mask), 4)
        for name, poses in (
            ("mean_pose", np.zeros_like(keyframes)),
            ("random_train_keyframes", random_keyframes),
        )
    }

    features = torch.from_numpy(inputs["audio_features"])
    lengths = torch.from_numpy(length_mask)
    kf_t, mask_t = torch.from_numpy(keyframes).float(), torch.from_numpy(mask)
    with torch.inference_mode():
        codes = run["vq"].encode(kf_t, mask_t)
        perplexity, usage = code_statistics(codes, run["vq"].codebook_size, mask_t)
        vq = {
            "keyframe_error": round(
                metrics.keyframe_error(run["vq"].decode(codes).numpy(), keyframes, mask), 4
            ),
            "code_usage_per_level": [round(float(u), 3) for u in usage],
            "perplexity_per_level": [round(float(p), 1) for p in perplexity],
        }

        def guide_poses(audio: torch.Tensor) -> np.ndarray:
            tokens = run["guide"].generate(
                audio,
                keyframes.shape[1],
                frame_mask=lengths,
                num_samples=reps,
                top_p=config.top_p,
                temperature=config.temperature,
                top_k=config.top_k,
                generator=generator,
            )
            poses = run["vq"].decode(tokens).numpy()  # clip-major (S·R, K, F)
            return poses.reshape(gt.shape[0], reps, *poses.shape[1:]).swapaxes(0, 1)

        sampled = guide_poses(features)
        other_audio = guide_poses(features.roll(1, dims=0))
        guide = {
            "keyframe_error": round(metrics.keyframe_error(sampled, keyframes, mask), 4),
            "keyframe_error_of_repetition_mean": round(
                metrics.keyframe_error(sampled.mean(axis=0), keyframes, mask), 4
            ),
            "keyframe_error_with_another_clips_audio": round(
                metrics.keyframe_error(other_audio, keyframes, mask), 4
            ),
            "variance_across_repetitions": round(float(sampled.var(axis=0).mean()), 4),
        }

        def body_from(poses: np.ndarray) -> np.ndarray:
            """Raw body (R, S, T, F) guided by normalised keyframes (S, K, F), reps rows each."""
            body = generate_body_from_keyframes(
                run["pose"],
                features.repeat_interleave(reps, dim=0),
                lengths.repeat_interleave(reps, dim=0),
                torch.from_numpy(poses).float().repeat_interleave(reps, dim=0),
                config,
                generator,
            ).numpy()
            return body.reshape(gt.shape[0], reps, *body.shape[1:]).swapaxes(0, 1)

        with_truth = body_from(keyframes)
        without = body_from(np.zeros_like(keyframes))
    raw_gt = denormalise(gt, mean, std)
    sampled = {"ours": run["samples"]["body"], "random": run["baseline_samples"]["Random_body"]}
    seams = seam_frames(gt.shape[1] - 1, config)
    pose_true = body_metrics(denormalise(with_truth, mean, std), raw_gt, strokes)
    pose_true["keyframe_error_over_mean_pose"] = round(
        metrics.keyframe_error(with_truth[:, :, ::KEYFRAME_STRIDE], keyframes, mask)
        / baselines["mean_pose"],
        3,
    )
    return {
        "clips": int(gt.shape[0]),
        "repetitions": reps,
        "baselines": baselines,
        "vq": vq,
        "guide": guide,
        "gt": body_metrics(raw_gt[None], raw_gt, strokes),
        "pose_true_keyframes": pose_true,
        "pose_without_keyframes": body_metrics(denormalise(without, mean, std), raw_gt, strokes),
        "pose_x0_error": x0_error_by_noise_level(run["pose"], inputs),
        "sampled_body": {
            name: {
                "velocity_variance_over_gt_top_axes": velocity_variance_by_axis(body, raw_gt),
                "fd_k": fd_k_at_seams(body, raw_gt, seams),
            }
            for name, body in sampled.items()
        },
    }


if __name__ == "__main__":
    print_json(main())
